"""Building the production (or embedded-default) container from settings: the
outside systems are opened here, then :func:`entrypoints.container.assemble`
wires the use cases around them."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import SecretStr
from sqlalchemy import Engine

from adapters.outbox import OutboxConversationStore, PresetIds
from adapters.proxy import ACCOUNT_STORE, CONTENT_CACHE, CONVERSATION_STORE
from adapters.resilience import guard
from adapters.settings import ConfigurationError, Settings
from adapters.sql.accounts import SqlAccountStore
from adapters.sql.content_cache import SqlContentCache
from adapters.sql.conversations import SqlConversationStore
from adapters.sql.engine import create_engine_for, prepare_schema_within
from adapters.sql.question_log import SqlQuestionLog
from adapters.system import SystemClock, UuidGenerator
from entrypoints.breakers import make_breakers
from entrypoints.container import Adapters, Closer, Container, assemble
from rag_core.errors import DependencyUnavailable
from rag_core.ports import ChatModel, Clock, Embedder, VectorIndex

if TYPE_CHECKING:
    from openai import AsyncOpenAI

    from adapters.openai import OpenAIEmbedder

log = logging.getLogger(__name__)


# Inside the health monitor's deadline (2 s): a hung model server fails the probe with
# the adapter's own DeadlineExceeded, which /health shows.
MODEL_PROBE_TIMEOUT = 1.5
NO_EMBEDDING_KEY = "EMBEDDINGS=openai needs EMBEDDING_API_KEY or OPENAI_API_KEY"


def check_production(settings: Settings) -> None:
    """Production refuses embedded fallbacks: one error naming every missing variable."""
    if settings.production:
        missing = settings.missing_for_production()
        if missing:
            raise ConfigurationError(
                "production mode (APP_ENV=production or SPACE_ID set) needs: " + ", ".join(missing)
            )
    if settings.embeddings == "openai" and settings.embedding_key is None:
        raise ConfigurationError(NO_EMBEDDING_KEY)
    if "*" in settings.cors_origins:
        raise ConfigurationError(
            "CORS_ALLOWED_ORIGINS=* cannot be combined with credentials; list the origins"
        )


def plan_adapters(settings: Settings) -> dict[str, str]:
    """Which adapter serves each port, without building anything (for `check-config`)."""
    index = (
        "qdrant in-memory"
        if settings.qdrant_url == ":memory:"
        else f"qdrant server ({settings.qdrant_collection_name})"
        if settings.qdrant_url
        else f"qdrant edge (embedded) in {settings.data_dir / 'qdrant-edge'}"
    )
    database = (
        "postgresql" if settings.database_url else f"sqlite in {settings.data_dir / 'rag.db'}"
    )
    return {
        "vector_index": index,
        "database": database,
        "embedder": _embedder_plan(settings),
        "chat_model": f"openai {settings.openai_chat_model}"
        if settings.openai_api_key
        else "none (extractive answers; transforms unavailable)",
    }


def _embedder_plan(settings: Settings) -> str:
    backend = settings.embedding_backend
    if backend == "openai":
        if settings.embedding_key is None:
            return f"none: {NO_EMBEDDING_KEY}"
        return f"openai {settings.openai_embedding_model}"
    if backend == "local":
        model = settings.local_embedding_model
        if settings.local_embedding_path:
            return f"local {model} from {settings.local_embedding_path}"
        return f"local {model} (cached in {settings.data_dir / 'models'})"
    return "none (lexical retrieval)"


async def build_container(
    settings: Settings, *, clock: Clock | None = None, for_ingest: bool = False
) -> Container:
    """Build the production or embedded-default container from settings
    (``clock`` drives the circuit breakers; tests pass a fake one). ``for_ingest``:
    no chat model, and the embedder is built on its first embedding."""
    clock = clock or SystemClock()
    check_production(settings)
    plan = plan_adapters(settings)
    if not settings.production:
        for port, adapter in plan.items():
            if "embedded" in adapter or "sqlite" in adapter or adapter.startswith("none"):
                log.info("embedded default for %s: %s", port, adapter)
    closers: list[Closer] = []
    try:
        index, after_deletes = _build_index(settings)
        closers.append(index.close)
        engine, dependency = database_engine(settings)

        async def dispose() -> None:
            await asyncio.to_thread(engine.dispose)

        closers.append(dispose)
        await _prepare_schema(engine, dependency, settings.database_timeout)
        embedder, chat_model = await _build_models(settings, closers, for_ingest=for_ingest)
        breakers = make_breakers(settings, clock, dependency)
        session_ids = PresetIds(UuidGenerator())
        # Each SQL call is bounded inside its breaker (a hang counts as a failure);
        # the outbox waits a little longer, so the breaker sees the timeout first.
        call_timeout = settings.database_timeout
        sql = SqlConversationStore(
            engine, ids=session_ids, dependency=dependency, timeout=call_timeout
        )
        outbox = OutboxConversationStore(
            guard(CONVERSATION_STORE, sql, breakers.database),
            settings.data_dir / "outbox.db",
            dependency=dependency,
            session_ids=session_ids,
            timeout=call_timeout + 1,
        )
        closers.append(outbox.close)  # closers run in reverse: the outbox closes before the engine
        adapters = Adapters(
            index=index,
            conversations=outbox,
            chat_conversations=outbox.chat_view(),
            outbox=outbox,
            breakers=breakers,
            accounts=guard(
                ACCOUNT_STORE,
                SqlAccountStore(engine, dependency=dependency, timeout=call_timeout),
                breakers.database,
            ),
            cache=guard(
                CONTENT_CACHE,
                SqlContentCache(engine, dependency=dependency, timeout=call_timeout),
                breakers.database,
            ),
            auth_secret=_secret(settings, settings.better_auth_secret, "auth-secret"),
            admin_key=_secret(settings, settings.admin_api_key, "admin-key") or None,
            plan=plan,
            database=dependency,
            after_deletes=after_deletes,
            embedder=embedder,
            chat_model=chat_model,
            closers=closers,
            question_log=SqlQuestionLog(engine, dependency=dependency, timeout=call_timeout),
            index_target=_index_target(settings),
        )
        return await assemble(settings, adapters, clock=clock)
    except BaseException:
        for close in reversed(closers):
            await close()
        raise


async def _prepare_schema(engine: Engine, dependency: str, seconds: float) -> None:
    """Prepare the schema now if the database answers within ``seconds``; if not,
    start anyway: answers do not need the database (signed-in turns wait in the
    outbox), and the first SQL call that gets through prepares it."""
    try:
        await prepare_schema_within(engine, dependency, seconds)
    except DependencyUnavailable as exc:
        log.warning(
            "%s unavailable at start-up (%s): starting degraded; "
            "the schema is prepared on the first call that reaches it",
            dependency,
            exc.reason,
        )


def _build_index(settings: Settings) -> tuple[VectorIndex, Closer | None]:
    """The index, and what to run after an ingest that deleted chunks (the
    embedded engine compacts then, so deleted chunks stop counting in IDF).

    The adapters are imported here, not at the top: qdrant-client (with grpc)
    takes about a second to import, which the embedded default does not need."""
    collection = settings.qdrant_collection_name
    if settings.qdrant_url:
        from adapters.qdrant_index import QdrantIndex

        if settings.qdrant_url == ":memory:":
            return QdrantIndex.memory(collection), None
        key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
        remote = QdrantIndex.remote(settings.qdrant_url, key, collection, settings.qdrant_timeout)
        return remote, None
    from adapters.qdrant_edge import EdgeIndex

    edge = EdgeIndex.open(settings.data_dir / "qdrant-edge", collection)

    async def compact() -> None:
        await edge.compact()

    return edge, compact


def _index_target(settings: Settings) -> str | None:
    """The Qdrant server as start-up names it when unreachable: host and port only."""
    if not settings.qdrant_url or settings.qdrant_url == ":memory:":
        return None
    from adapters.qdrant_index import address

    return f"qdrant at {address(settings.qdrant_url)}"


# Vector lengths of OpenAI's embedding models, so start-up needs no request.
KNOWN_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}


def embedding_dimension(model: str, configured: int | None) -> tuple[int | None, bool]:
    """The vector length to expect (None: ask the model) and whether to request it.

    A length configured for a known OpenAI model other than its own is requested
    (``dimensions``): text-embedding-3 models shorten their vectors, older ones
    refuse, which the first call reports. For other models the configured length
    only says what the model returns.
    """
    native = KNOWN_DIMENSIONS.get(model)
    if configured is None:
        return native, False
    return configured, native is not None and configured != native


async def _build_models(
    settings: Settings, closers: list[Closer], *, for_ingest: bool = False
) -> tuple[Embedder | None, ChatModel | None]:
    """The embedder EMBEDDINGS selects, and the chat model when OPENAI_API_KEY is set
    (none for ingest)."""
    backend = settings.embedding_backend
    embedder: Embedder | None = None
    if backend == "local":
        embedder = await _local_embedder(settings, closers, for_ingest=for_ingest)
    elif backend == "openai":
        embedder = await _openai_embedder(settings, closers, for_ingest=for_ingest)
    if for_ingest or settings.openai_api_key is None:
        return embedder, None
    from adapters.openai import OpenAIChatModel, RetryPolicy

    client = _openai_client(settings, settings.openai_api_key, settings.openai_base_url, closers)
    retry = RetryPolicy(attempts=settings.openai_retries)
    return embedder, OpenAIChatModel(
        client,
        settings.openai_chat_model,
        retry=retry,
        first_token_timeout=settings.openai_first_token_timeout,
        answer_timeout=settings.openai_answer_timeout,
        probe_timeout=MODEL_PROBE_TIMEOUT,
    )


def _openai_client(
    settings: Settings, key: SecretStr, base_url: str | None, closers: list[Closer]
) -> AsyncOpenAI:
    """One client (one connection pool) per port: short embedding calls never queue
    behind long streams. The openai package is imported in here, when a model is
    built: it takes a third of a second."""
    from adapters.openai import build_openai_client

    built = build_openai_client(
        key.get_secret_value(),
        base_url,
        connect_timeout=settings.openai_connect_timeout,
        read_timeout=settings.openai_timeout,
    )
    closers.append(built.close)
    return built


async def _openai_embedder(
    settings: Settings, closers: list[Closer], *, for_ingest: bool
) -> Embedder:
    key = settings.embedding_key
    if key is None:  # check_production refused this already
        raise ConfigurationError(NO_EMBEDDING_KEY)
    model = settings.openai_embedding_model
    dimension, shorten = embedding_dimension(model, settings.openai_embedding_dimension)

    def embedder() -> OpenAIEmbedder:
        from adapters.openai import OpenAIEmbedder, RetryPolicy

        retry = RetryPolicy(attempts=settings.openai_retries)
        client = _openai_client(settings, key, settings.embedding_url, closers)
        return OpenAIEmbedder(
            client,
            model,
            retry=retry,
            dimension=dimension,
            shorten=shorten,
            timeout=settings.openai_embedding_timeout,
            probe_timeout=MODEL_PROBE_TIMEOUT,
        )

    if for_ingest and dimension is not None:
        # An unchanged re-ingest needs no embedding.
        return LazyEmbedder(model, dimension, embedder)
    built = embedder()
    if dimension is None:
        await built.discover_dimension()
    return built


async def _local_embedder(
    settings: Settings, closers: list[Closer], *, for_ingest: bool
) -> Embedder:
    """fastembed's ONNX model in-process (the `local` extra). Its dimension is known
    without loading it; serving loads it now, so a model that cannot be loaded (or
    downloaded) stops the start-up with DependencyUnavailable instead of failing every
    query; ingest loads it on its first embedding."""
    from adapters.local_embedder import FastEmbedEmbedder

    local = FastEmbedEmbedder(
        settings.local_embedding_model,
        cache_dir=settings.data_dir / "models",
        model_path=settings.local_embedding_path,
    )
    closers.append(local.close)
    if not for_ingest:
        await local.load()
    return local


class LazyEmbedder:
    """The Embedder port, built by ``build`` on the first embedding (``model`` and
    ``dimension`` are known before): an unchanged re-ingest then never imports or
    connects anything (bench/README.md, P8)."""

    def __init__(self, model: str, dimension: int, build: Callable[[], Embedder]) -> None:
        self._model = model
        self._dimension = dimension
        self._build = build
        self._built: Embedder | None = None

    @property
    def model(self) -> str:
        return self._model

    @property
    def dimension(self) -> int:
        return self._dimension

    async def embed(self, texts: Sequence[str]) -> list[tuple[float, ...]]:
        if self._built is None:
            self._built = self._build()
        return await self._built.embed(texts)


def database_engine(settings: Settings) -> tuple[Engine, str]:
    """The configured database's engine (PostgreSQL, else SQLite in DATA_DIR) and
    its dependency name for errors and breakers. Does not connect."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)  # also holds the outbox
    if settings.database_url:
        url, dependency = settings.database_url.get_secret_value(), "postgres"
    else:
        url, dependency = f"sqlite:///{settings.data_dir / 'rag.db'}", "sqlite"
    return create_engine_for(url, connect_timeout=settings.database_timeout), dependency


def _secret(settings: Settings, configured: SecretStr | None, filename: str) -> str:
    """A configured secret, or locally one generated once into DATA_DIR (mode 0600),
    so it survives restarts and the CLI on the same machine can read it. In
    production there is no local fallback (an empty string)."""
    if configured is not None:
        return configured.get_secret_value()
    if settings.production:
        return ""
    path = settings.data_dir / filename
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    generated = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(generated)
    return generated


def admin_key_path(settings: Settings) -> Path:
    return settings.data_dir / "admin-key"
