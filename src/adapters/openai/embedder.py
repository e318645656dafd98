"""The Embedder port over an OpenAI-compatible ``/embeddings`` endpoint."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Sequence

import openai

from adapters.openai.client import probe_server
from adapters.openai.errors import DEPENDENCY, call
from adapters.openai.retry import RetryPolicy
from adapters.openai.wire import index_of, malformed, post_json, vector_of
from rag_core.errors import DependencyUnavailable

Vector = tuple[float, ...]
DIMENSION_PROBE = "dimension probe"
TIMEOUT_CHARS = 8000  # the text one ``timeout`` is for (about a query's embedding at most)


class DimensionUnknown(RuntimeError):
    """``dimension`` was read before it was configured or discovered (a wiring mistake)."""


class OpenAIEmbedder:
    """Implements :class:`rag_core.ports.Embedder` with ``POST /embeddings``.

    Contract: one vector per text, in order. Texts go many per request: at most
    ``batch_size`` texts and ``max_batch_chars`` characters each (the default keeps
    a request under OpenAI's 300,000-token limit even at one token per character),
    with at most ``max_concurrency`` requests in flight per ``embed`` call (the
    ingestor bounds its own concurrent calls; queries are single requests). Texts longer than ``max_chars`` are cut to that length first
    (the default keeps a text under the 8,191-token input limit of OpenAI's models
    at one token per character), and an empty text is sent as one space, which
    every server accepts. Vectors are requested as
    base64 float32 (what the official SDK asks for by default, and 6 times
    cheaper to read than JSON floats); a server that answers with lists of
    floats works too.

    Dimension: with ``shorten``, ``dimension`` is sent as the request's
    ``dimensions`` (text-embedding-3 models return vectors that long: a smaller
    index and a faster search). Otherwise ``dimension`` is the configured one, or
    else learned from the first
    response; reading it before either raises DimensionUnknown. ``await
    discover_dimension()`` learns it up front (one request embedding a probe text),
    which a composition root needs to prepare the index. Vectors of another length
    than the known dimension raise DependencyUnavailable: the configured model is
    not the one the index expects.

    Errors and timing: each request is retried per ``retry`` (connection errors,
    timeouts, 408/429/5xx, honouring Retry-After), and bounded by the client's
    timeouts and, when ``timeout`` is set, by a deadline across its tries of
    ``timeout`` seconds per started 8,000 characters it carries (a query gets
    ``timeout``; a spent deadline is DependencyUnavailable("openai",
    "DeadlineExceeded")); what is left raises DependencyUnavailable("openai", <error class>),
    and a request the server refuses (400/413/422) raises InvalidInput. When one
    batch fails, the batches still in flight are cancelled. Messages never
    contain the API key or the URL.
    """

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        model: str,
        *,
        retry: RetryPolicy,
        dimension: int | None = None,
        shorten: bool = False,
        batch_size: int = 128,
        max_concurrency: int = 4,
        max_chars: int = 8000,
        max_batch_chars: int = 300_000,
        timeout: float | None = None,
        probe_timeout: float | None = None,
    ) -> None:
        if min(batch_size, max_concurrency, max_chars, max_batch_chars) < 1:
            raise ValueError(
                "batch_size, max_concurrency, max_chars and max_batch_chars must be at least 1"
            )
        for name, value in (("timeout", timeout), ("probe_timeout", probe_timeout)):
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be positive seconds, not {value}")
        if dimension is not None and dimension < 1:
            raise ValueError("dimension must be at least 1")
        if shorten and dimension is None:
            raise ValueError("shorten needs a dimension")
        self._client = client
        self._model = model
        self._retry = retry
        self._dimension = dimension
        self._shorten = shorten
        self._batch_size = batch_size
        self._max_chars = max_chars
        self._max_batch_chars = max_batch_chars
        self._max_concurrency = max_concurrency
        self._timeout = timeout
        self._probe_timeout = probe_timeout

    @property
    def model(self) -> str:
        return self._model

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            raise DimensionUnknown(
                f"the dimension of embedding model {self._model!r} is not known yet: "
                "configure it or await discover_dimension() first"
            )
        return self._dimension

    async def discover_dimension(self) -> int:
        """The dimension, embedding one probe text if it is not known yet."""
        if self._dimension is None:
            await self.embed([DIMENSION_PROBE])
        return self.dimension

    async def probe(self) -> None:
        """One ``GET /models`` without retries; raises DependencyUnavailable if it fails."""
        await probe_server(self._client, budget=self._probe_timeout)

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        batches = self._batches([text[: self._max_chars] or " " for text in texts])
        if len(batches) <= 1:
            return await self._embed_batch(batches[0]) if batches else []
        # The bound is per call: concurrent callers (queries from many users) must
        # not queue behind one process-wide semaphore.
        slots = asyncio.Semaphore(self._max_concurrency)
        tasks = [asyncio.create_task(self._embed_batch(batch, slots)) for batch in batches]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in tasks:
                error = task.exception() if task.done() else None
                if error is not None:
                    raise error
            return [vector for task in tasks for vector in task.result()]
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _batches(self, texts: list[str]) -> list[list[str]]:
        batches: list[list[str]] = []
        size = 0
        for text in texts:
            if not batches or (
                len(batches[-1]) == self._batch_size or size + len(text) > self._max_batch_chars
            ):
                batches.append([])
                size = 0
            batches[-1].append(text)
            size += len(text)
        return batches

    async def _embed_batch(
        self, batch: list[str], slots: asyncio.Semaphore | None = None
    ) -> list[Vector]:
        async with slots or contextlib.nullcontext():
            body: dict[str, object] = {
                "model": self._model,
                "input": batch,
                "encoding_format": "base64",
            }
            if self._shorten:
                body["dimensions"] = self._dimension
            answer = await call(
                self._retry,
                lambda: post_json(self._client, "/embeddings", body),
                label="openai embeddings",
                secret=self._client.api_key,
                budget=self._budget(batch),
            )
        data = answer.get("data")
        if not isinstance(data, list):
            raise malformed("an embeddings answer without 'data'")
        items = sorted(data, key=index_of)
        if [index_of(item) for item in items] != list(range(len(batch))):
            raise DependencyUnavailable(
                DEPENDENCY, f"{len(items)} embeddings returned for {len(batch)} inputs"
            )
        vectors = [vector_of(item) for item in items]
        for vector in vectors:
            self._check_dimension(len(vector))
        return vectors

    def _budget(self, batch: list[str]) -> float | None:
        """``timeout`` per started ``TIMEOUT_CHARS`` characters of the batch: a query
        gets the timeout itself, a large batch at ingest proportionally more."""
        if self._timeout is None:
            return None
        chars = sum(len(text) for text in batch)
        return self._timeout * max(1, math.ceil(chars / TIMEOUT_CHARS))

    def _check_dimension(self, length: int) -> None:
        if self._dimension is None:
            self._dimension = length
        elif length != self._dimension:
            raise DependencyUnavailable(
                DEPENDENCY,
                f"model {self._model!r} returned {length}-dimensional vectors, "
                f"{self._dimension} expected",
            )
