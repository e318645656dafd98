"""The composition root: Settings -> adapters -> use cases. Only this module
(and the app and CLI that call it) knows the concrete adapters."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path

import attrs
from pydantic import SecretStr
from sqlalchemy import Engine

from adapters.filesystem import read_documents
from adapters.memory.accounts import InMemoryAccountStore
from adapters.memory.content_cache import InMemoryContentCache
from adapters.memory.conversations import InMemoryConversationStore
from adapters.memory.index import InMemoryIndex
from adapters.openai import OpenAIChatModel, OpenAIEmbedder, RetryPolicy, build_openai_client
from adapters.passwords import DEFAULT_COST, BcryptHasher
from adapters.resilience import (
    Breaker,
    GuardedChatModel,
    GuardedConversationStore,
    GuardedEmbedder,
    GuardedIndex,
)
from adapters.settings import ConfigurationError, Settings
from adapters.sql.accounts import SqlAccountStore
from adapters.sql.content_cache import SqlContentCache
from adapters.sql.conversations import SqlConversationStore
from adapters.sql.engine import create_engine_for, prepare_schema
from adapters.system import SystemClock, UuidGenerator
from adapters.tokens import JwtAuthenticator
from rag_core.accounts import AccountService, AccountStore
from rag_core.answering import Answerer
from rag_core.chat import ChatService
from rag_core.chunking import Chunker
from rag_core.documents import Document
from rag_core.errors import DependencyUnavailable
from rag_core.history import HistoryService
from rag_core.ingestion import Ingestor, IngestReport
from rag_core.lexical import LexicalEncoder
from rag_core.monitoring import HealthMonitor, ProbeSpec
from rag_core.ports import ChatModel, ConversationStore, Embedder, VectorIndex
from rag_core.retrieval import Retriever
from rag_core.transforms import ContentCache, ContentTransformer

log = logging.getLogger(__name__)

Closer = Callable[[], Awaitable[None]]


@attrs.define
class Adapters:
    """The outside-world side of a container, before the use cases are wired."""

    index: VectorIndex
    conversations: ConversationStore
    accounts: AccountStore
    cache: ContentCache
    auth_secret: str
    admin_key: str | None
    plan: dict[str, str]
    database: str = "database"
    after_deletes: Closer | None = None
    embedder: Embedder | None = None
    chat_model: ChatModel | None = None
    password_cost: int = DEFAULT_COST
    closers: list[Closer] = attrs.field(factory=list)


@attrs.define
class Container:
    """Everything the entrypoints use, built once per process."""

    settings: Settings
    index: VectorIndex
    conversations: ConversationStore
    ingestor: Ingestor
    retriever: Retriever
    answerer: Answerer
    chat: ChatService
    history: HistoryService
    accounts: AccountService
    transforms: ContentTransformer
    health: HealthMonitor
    breakers: tuple[Breaker, ...]
    admin_key: str | None
    adapters: dict[str, str]
    closers: list[Closer] = attrs.field(factory=list)
    after_deletes: Closer | None = None

    async def ingest(
        self,
        documents: list[Document],
        *,
        scope: str | None,
        progress: Callable[[int, int], None] | None = None,
    ) -> IngestReport:
        """Diff ``documents`` against the index (see Ingestor.ingest)."""
        report = await self.ingestor.ingest(documents, scope=scope, progress=progress)
        if report.chunks_deleted and self.after_deletes is not None:
            await self.after_deletes()
        return report

    async def ingest_paths(
        self, paths: list[Path], progress: Callable[[int, int], None] | None = None
    ) -> IngestReport:
        """Ingest files or folders; each folder is its own pruning scope."""
        total = IngestReport(0, 0, 0, 0, 0, 0, 0)
        for path in paths:
            documents = await asyncio.to_thread(read_documents, path)
            scope = f"{path.resolve().name}/" if path.is_dir() else None
            total = _add(total, await self.ingest(documents, scope=scope, progress=progress))
        return total

    async def aclose(self) -> None:
        for close in reversed(self.closers):
            try:
                await close()
            except Exception:  # closing must go on for the others
                log.exception("error while closing")


def _add(a: IngestReport, b: IngestReport) -> IngestReport:
    return IngestReport(*(x + y for x, y in zip(attrs.astuple(a), attrs.astuple(b), strict=True)))


def check_production(settings: Settings) -> None:
    """Production refuses embedded fallbacks: one error naming every missing variable."""
    if settings.production:
        missing = settings.missing_for_production()
        if missing:
            raise ConfigurationError(
                "production mode (APP_ENV=production or SPACE_ID set) needs: " + ", ".join(missing)
            )
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
    openai = "openai" if settings.openai_api_key else None
    return {
        "vector_index": index,
        "database": database,
        "embedder": f"{openai} {settings.openai_embedding_model}"
        if openai
        else "none (lexical retrieval)",
        "chat_model": f"{openai} {settings.openai_chat_model}"
        if openai
        else "none (extractive answers; transforms unavailable)",
    }


async def build_container(settings: Settings) -> Container:
    """Build the production or embedded-default container from settings."""
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
        engine, dependency = _build_engine(settings)

        async def dispose() -> None:
            await asyncio.to_thread(engine.dispose)

        closers.append(dispose)
        await asyncio.to_thread(prepare_schema, engine, dependency=dependency)
        embedder, chat_model = await _build_models(settings, closers)
        adapters = Adapters(
            index=index,
            conversations=SqlConversationStore(engine, dependency=dependency),
            accounts=SqlAccountStore(engine, dependency=dependency),
            cache=SqlContentCache(engine, dependency=dependency),
            auth_secret=_secret(settings, settings.better_auth_secret, "auth-secret"),
            admin_key=_secret(settings, settings.admin_api_key, "admin-key") or None,
            plan=plan,
            database=dependency,
            after_deletes=after_deletes,
            embedder=embedder,
            chat_model=chat_model,
            closers=closers,
        )
        return await assemble(settings, adapters)
    except BaseException:
        for close in reversed(closers):
            await close()
        raise


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


# Vector lengths of OpenAI's embedding models, so start-up needs no request.
KNOWN_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}


async def _build_models(
    settings: Settings, closers: list[Closer]
) -> tuple[Embedder | None, ChatModel | None]:
    if settings.openai_api_key is None:
        return None, None
    client = build_openai_client(
        settings.openai_api_key.get_secret_value(),
        settings.openai_base_url,
        connect_timeout=settings.openai_connect_timeout,
        read_timeout=settings.openai_timeout,
    )
    closers.append(client.close)
    retry = RetryPolicy(attempts=settings.openai_retries)
    model = settings.openai_embedding_model
    dimension = settings.openai_embedding_dimension or KNOWN_DIMENSIONS.get(model)
    embedder = OpenAIEmbedder(client, model, retry=retry, dimension=dimension)
    if dimension is None:
        await embedder.discover_dimension()
    return embedder, OpenAIChatModel(client, settings.openai_chat_model, retry=retry)


def _build_engine(settings: Settings) -> tuple[Engine, str]:
    if settings.database_url:
        url, dependency = settings.database_url.get_secret_value(), "postgres"
    else:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        url, dependency = f"sqlite:///{settings.data_dir / 'rag.db'}", "sqlite"
    return create_engine_for(url, connect_timeout=settings.database_timeout), dependency


async def in_memory_container(
    settings: Settings | None = None,
    *,
    embedder: Embedder | None = None,
    chat_model: ChatModel | None = None,
    password_cost: int = DEFAULT_COST,
) -> Container:
    """A fully in-memory container (no files, no sockets): for tests and embedding."""
    settings = settings or Settings(_env_file=None)
    admin = settings.admin_api_key
    secret = settings.better_auth_secret
    adapters = Adapters(
        index=InMemoryIndex(),
        conversations=InMemoryConversationStore(),
        accounts=InMemoryAccountStore(),
        cache=InMemoryContentCache(),
        auth_secret=secret.get_secret_value() if secret else secrets.token_urlsafe(32),
        admin_key=admin.get_secret_value() if admin else None,
        plan={"vector_index": "in-memory", "database": "in-memory"},
        embedder=embedder,
        chat_model=chat_model,
        password_cost=password_cost,
    )
    return await assemble(settings, adapters)


async def assemble(settings: Settings, adapters: Adapters) -> Container:
    """Wire the use cases around already-built adapters."""
    clock, ids = SystemClock(), UuidGenerator()

    def breaker(name: str, threshold: int, recovery: float) -> Breaker:
        return Breaker(
            name,
            failure_threshold=threshold,
            recovery_timeout=recovery,
            half_open_max_calls=settings.breaker_half_open_calls,
            counts=_counts,
            clock=clock.monotonic,
            now=clock.now,
        )

    openai = breaker("openai", settings.openai_breaker_threshold, settings.openai_breaker_recovery)
    qdrant = breaker("qdrant", settings.qdrant_breaker_threshold, settings.qdrant_breaker_recovery)
    database = breaker(
        adapters.database, settings.database_breaker_threshold, settings.database_breaker_recovery
    )
    index = GuardedIndex(adapters.index, qdrant)
    conversations = GuardedConversationStore(adapters.conversations, database)
    embedder = GuardedEmbedder(adapters.embedder, openai) if adapters.embedder else None
    chat_model = GuardedChatModel(adapters.chat_model, openai) if adapters.chat_model else None
    encoder = LexicalEncoder()
    ingestor = Ingestor(index, encoder, Chunker(), embedder)
    await index.prepare(embedder.dimension if embedder else None)
    retriever = Retriever(index, encoder, embedder)
    answerer = Answerer(retriever, chat_model)
    try:
        authenticator = JwtAuthenticator(adapters.auth_secret, issuer=settings.better_auth_url)
    except ValueError as exc:  # the message never holds the secret
        raise ConfigurationError(f"BETTER_AUTH_SECRET: {exc}") from None
    accounts = AccountService(
        adapters.accounts, authenticator, BcryptHasher(adapters.password_cost), clock, ids
    )
    transforms = ContentTransformer(
        chat_model, adapters.cache, model_name=settings.openai_chat_model if chat_model else None
    )
    health = HealthMonitor(
        [
            ProbeSpec(
                "vector_index", index.probe, critical=True, detail=adapters.plan["vector_index"]
            ),
            ProbeSpec(
                "database", conversations.probe, critical=False, detail=adapters.plan["database"]
            ),
        ],
        clock,
    )
    return Container(
        settings=settings,
        index=index,
        conversations=conversations,
        ingestor=ingestor,
        retriever=retriever,
        answerer=answerer,
        chat=ChatService(answerer, conversations, clock, ids),
        history=HistoryService(conversations),
        accounts=accounts,
        transforms=transforms,
        health=health,
        breakers=(openai, qdrant, database),
        admin_key=adapters.admin_key,
        adapters=adapters.plan,
        closers=adapters.closers,
        after_deletes=adapters.after_deletes,
    )


def _counts(exc: BaseException) -> bool:
    """What a circuit counts as a failure: an unavailable dependency (connection
    errors, timeouts, 5xx, and 429 after the adapter's retries), never our own
    bad input."""
    return isinstance(exc, DependencyUnavailable)


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
