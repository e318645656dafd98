"""The VectorIndex port over Qdrant: a server, Qdrant Cloud, or qdrant-client's local mode."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Mapping, Sequence
from urllib.parse import urlsplit

import grpc  # type: ignore[import-untyped]
import httpx
from qdrant_client import AsyncQdrantClient, models
from qdrant_client.common.client_exceptions import QdrantException, ResourceExhaustedResponse
from qdrant_client.http.exceptions import (
    ApiException,
    ResponseHandlingException,
    UnexpectedResponse,
)

from adapters import qdrant_layout as layout
from adapters.qdrant_layout import DENSE, LEXICAL
from rag_core.answers import Passage
from rag_core.documents import Chunk, IndexedChunk, SparseVector
from rag_core.errors import DependencyUnavailable, IndexMismatch
from rag_core.ports import SearchQuery

DEFAULT_PORT = 6333
UPSERT_BATCH = 256
SCROLL_PAGE = 1000
# 400/404/409/422 answer a request the adapter built itself, so they mean the
# collection is not laid out as expected (missing, other vectors, unindexed field).
_REJECTED = frozenset({400, 404, 409, 422})
_UNAVAILABLE = (
    ApiException,
    QdrantException,
    httpx.HTTPError,
    grpc.RpcError,
    OSError,
    TimeoutError,
)


class QdrantIndex:
    """A :class:`~rag_core.ports.VectorIndex` in one Qdrant collection.

    Layout (:mod:`adapters.qdrant_layout`, shared with the embedded EdgeIndex):
    sparse vector ``lexical`` (IDF modifier, so Qdrant scores BM25), and when
    ``prepare`` gets a dimension, dense vector ``dense`` (cosine). The point id is
    the chunk id (a canonical UUID string); the payload holds every other Chunk field.

    ``prepare`` creates the collection if missing and, on a server, any missing
    keyword payload index (``document_id``, ``section``). ``prepare(None)`` on a
    collection that has dense vectors is allowed (the embedder was removed):
    search is lexical and upserts carry no dense vector. Any other dimension
    difference, or a collection this adapter did not lay out, raises IndexMismatch.

    Errors: transport failures, timeouts and 401/403/429/5xx raise
    DependencyUnavailable; a request Qdrant rejects (400/404/409/422, or ValueError
    in local mode), or a point whose payload is not a chunk's, means the collection's
    layout is not what this adapter expects and raises IndexMismatch. Upserting a
    chunk whose id is not a canonical (lower-case, hyphenated) UUID string raises
    InvalidInput: Qdrant would store it re-spelled and re-ingestion could not diff it.
    ``timeout`` (seconds) bounds every call; ``remote`` always sets it.
    """

    def __init__(
        self, client: AsyncQdrantClient, collection: str, *, timeout: float | None = None
    ) -> None:
        self._client = client
        self._collection = collection
        self._timeout = timeout  # per call, on top of the client's own (whole seconds)
        options = client.init_options
        self._local = options.get("location") == ":memory:" or options.get("path") is not None
        self._prepared = False
        self._dense_dimension: int | None = None

    @classmethod
    def memory(cls, collection: str) -> QdrantIndex:
        """Local mode in memory (tests, demos); lost on close."""
        return cls(AsyncQdrantClient(location=":memory:"), collection)

    @classmethod
    def remote(cls, url: str, api_key: str | None, collection: str, timeout: float) -> QdrantIndex:
        """A Qdrant server over REST. A port in ``url`` wins; without one, 6333.

        Raises ValueError for a URL that is not http(s).
        """
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("the Qdrant URL must be http(s)://host[:port][/prefix]")
        client = AsyncQdrantClient(
            url=url,
            port=parts.port or DEFAULT_PORT,
            api_key=api_key,
            timeout=max(1, math.ceil(timeout)),
            # The version check runs in a thread and only warns; probe() covers liveness.
            check_compatibility=False,
        )
        return cls(client, collection, timeout=timeout)

    @property
    def client(self) -> AsyncQdrantClient:
        return self._client

    @property
    def collection(self) -> str:
        return self._collection

    async def prepare(self, dense_dimension: int | None) -> None:
        async with self._call():
            exists = await self._client.collection_exists(self._collection)
        if not exists:
            await self._create(dense_dimension)
        async with self._call():
            info = await self._client.get_collection(self._collection)
        # As JSON, the configuration reads as Qdrant Edge's does (an unnamed vector
        # shows its own fields as names, so it is foreign too).
        config = info.config.params.model_dump(mode="json")
        existing = layout.dense_dimension_of(config, self._where)
        if existing != dense_dimension and dense_dimension is not None:
            raise layout.dimension_mismatch(
                self._where, existing, dense_dimension, "drop the collection and ingest again"
            )
        if not self._local:  # local mode has no payload indexes (and warns if asked)
            for field in layout.KEYWORD_FIELDS:
                if field not in info.payload_schema:
                    async with self._call():
                        await self._client.create_payload_index(
                            self._collection, field, models.PayloadSchemaType.KEYWORD, wait=True
                        )
        self._prepared = True
        self._dense_dimension = dense_dimension

    async def upsert(self, chunks: Sequence[IndexedChunk]) -> None:
        for item in chunks:
            layout.check_id(item.chunk.id)
            if item.dense is not None:
                self._check_dense(len(item.dense))
        points = [_point(item) for item in chunks]
        for start in range(0, len(points), UPSERT_BATCH):
            async with self._call():
                await self._client.upsert(
                    self._collection, points=points[start : start + UPSERT_BATCH], wait=True
                )

    async def delete(self, chunk_ids: Sequence[str]) -> None:
        # An id that is not a UUID cannot be stored, so it is unknown: ignored.
        ids: list[models.ExtendedPointId] = [c for c in chunk_ids if layout.is_canonical_uuid(c)]
        if ids:
            async with self._call():
                await self._client.delete(
                    self._collection, points_selector=models.PointIdsList(points=ids), wait=True
                )

    async def chunk_ids_by_document(
        self, source: str | None = None
    ) -> Mapping[str, frozenset[str]]:
        grouped = layout.DocumentChunkIds()
        where = _filter(layout.source_match(source))
        async for page in self._scroll(where, with_payload=[layout.DOCUMENT_ID]):
            grouped.add(page)
        return grouped.result()

    async def search(self, query: SearchQuery) -> list[Passage]:
        if query.dense is not None:
            self._check_dense(len(query.dense))
        if query.limit < 1 or (query.dense is None and not query.sparse.indices):
            return []
        where = _filter(query.filters)
        sparse = _sparse(query.sparse)
        async with self._call():
            if query.dense is None:
                response = await self._client.query_points(
                    self._collection,
                    query=sparse,
                    using=LEXICAL,
                    query_filter=where,
                    limit=query.limit,
                    with_payload=True,
                )
            else:
                depth = query.limit * 2
                prefetch = [
                    models.Prefetch(query=list(query.dense), using=DENSE, limit=depth, filter=where)
                ]
                if query.sparse.indices:
                    prefetch.append(
                        models.Prefetch(query=sparse, using=LEXICAL, limit=depth, filter=where)
                    )
                response = await self._client.query_points(
                    self._collection,
                    prefetch=prefetch,
                    query=models.FusionQuery(fusion=models.Fusion.RRF),
                    query_filter=where,
                    limit=query.limit,
                    with_payload=True,
                )
        return [
            Passage(chunk=layout.chunk(point), score=point.score, rank=rank)
            for rank, point in enumerate(response.points, start=1)
        ]

    async def count(self) -> int:
        async with self._call():
            result = await self._client.count(self._collection, exact=True)
        return result.count

    async def chunks(self, document_ids: Sequence[str] | None = None) -> list[Chunk]:
        where = None
        if document_ids is not None:
            if not document_ids:
                return []
            match = models.MatchAny(any=list(document_ids))
            where = models.Filter(must=[models.FieldCondition(key=layout.DOCUMENT_ID, match=match)])
        pages = self._scroll(where, with_payload=True)
        return [layout.chunk(record) async for page in pages for record in page]

    async def neighbourhood(self, spans: Sequence[tuple[str, int, int]]) -> list[Chunk]:
        if not spans:
            return []
        where = models.Filter(
            should=[
                models.Filter(
                    must=[
                        models.FieldCondition(
                            key=layout.DOCUMENT_ID, match=models.MatchValue(value=document)
                        ),
                        models.FieldCondition(
                            key=layout.ORDINAL, range=models.Range(gte=first, lte=last)
                        ),
                    ]
                )
                for document, first, last in spans
            ]
        )
        pages = self._scroll(where, with_payload=True)
        return [layout.chunk(record) async for page in pages for record in page]

    async def recreate(self, dense_dimension: int | None) -> None:
        async with self._call():
            await self._client.delete_collection(self._collection)
        self._prepared = False
        await self.prepare(dense_dimension)

    async def probe(self) -> None:
        async with self._call():
            await self._client.collection_exists(self._collection)

    async def close(self) -> None:
        async with self._call():
            await self._client.close()

    async def _scroll(
        self, where: models.Filter | None, with_payload: bool | list[str]
    ) -> AsyncIterator[list[models.Record]]:
        """Every point ``where`` selects, page by page, without vectors."""
        offset: models.ExtendedPointId | None = None
        while True:
            async with self._call():
                records, offset = await self._client.scroll(
                    self._collection,
                    scroll_filter=where,
                    limit=SCROLL_PAGE,
                    offset=offset,
                    with_payload=with_payload,
                    with_vectors=False,
                )
            yield records
            if offset is None:
                return

    async def _create(self, dense_dimension: int | None) -> None:
        """Create the collection; one a concurrent creator made first is fine."""
        dense = {}
        if dense_dimension is not None:
            dense[DENSE] = models.VectorParams(
                size=dense_dimension, distance=models.Distance.COSINE
            )
        try:
            async with self._call():
                await self._client.create_collection(
                    self._collection,
                    vectors_config=dense,
                    sparse_vectors_config={
                        LEXICAL: models.SparseVectorParams(modifier=models.Modifier.IDF)
                    },
                )
        except IndexMismatch as exc:
            cause = exc.__cause__
            if not (
                (isinstance(cause, UnexpectedResponse) and cause.status_code == 409)
                or "already exists" in str(cause)
            ):
                raise

    @property
    def _where(self) -> str:
        return f"Qdrant collection '{self._collection}'"

    def _check_dense(self, dimension: int) -> None:
        if self._prepared:
            layout.check_dense(dimension, self._dense_dimension, self._where)

    @contextlib.asynccontextmanager
    async def _call(self) -> AsyncIterator[None]:
        """Bound a client call by the timeout and translate what it raises."""
        try:
            async with asyncio.timeout(self._timeout):
                yield
        except UnexpectedResponse as exc:
            if exc.status_code in _REJECTED:
                raise IndexMismatch(
                    f"Qdrant rejected a request on collection '{self._collection}' "
                    f"(HTTP {exc.status_code}): {_server_error(exc)}"
                ) from exc
            raise DependencyUnavailable(
                "qdrant", f"UnexpectedResponse {exc.status_code}", _retry_after(exc.headers)
            ) from exc
        except ResourceExhaustedResponse as exc:
            raise DependencyUnavailable(
                "qdrant", "ResourceExhaustedResponse", float(exc.retry_after_s)
            ) from exc
        except ResponseHandlingException as exc:
            raise DependencyUnavailable("qdrant", type(exc.source).__name__) from exc
        except _UNAVAILABLE as exc:
            raise DependencyUnavailable("qdrant", type(exc).__name__) from exc
        except ValueError as exc:
            # Local mode's answer to a request a server would reject with a 4xx.
            raise IndexMismatch(
                f"Qdrant rejected a request on collection '{self._collection}': {exc}"
            ) from exc


def address(url: str) -> str:
    """``host:port`` of a server URL as :meth:`QdrantIndex.remote` connects to it
    (6333 without a port); never the URL's credentials or path."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{f'[{host}]' if ':' in host else host}:{parts.port or DEFAULT_PORT}"


def _point(item: IndexedChunk) -> models.PointStruct:
    return models.PointStruct(
        id=item.chunk.id,
        vector=layout.vectors(item, _sparse),
        payload=layout.payload(item.chunk),
    )


def _sparse(vector: SparseVector) -> models.SparseVector:
    return models.SparseVector(indices=list(vector.indices), values=list(vector.values))


def _server_error(exc: UnexpectedResponse) -> str:
    """The server's own error text (never the URL or headers), shortened."""
    try:
        message = str(exc.structured()["status"]["error"])
    except (ValueError, KeyError, TypeError):
        message = exc.reason_phrase
    return message[:200]


def _retry_after(headers: httpx.Headers) -> float | None:
    try:
        return float(headers["Retry-After"])
    except (KeyError, ValueError):
        return None


def _filter(fields: Mapping[str, str]) -> models.Filter:
    """Payload fields that must match exactly."""
    return models.Filter(
        must=[
            models.FieldCondition(key=key, match=models.MatchValue(value=value))
            for key, value in fields.items()
        ]
    )
