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

from adapters.filesystem import read_documents
from adapters.memory.conversations import InMemoryConversationStore
from adapters.memory.index import InMemoryIndex
from adapters.qdrant_index import QdrantIndex
from adapters.settings import ConfigurationError, Settings
from adapters.sql.conversations import SqlConversationStore
from adapters.sql.engine import create_engine_for, prepare_schema
from adapters.system import SystemClock, UuidGenerator
from rag_core.answering import Answerer
from rag_core.chat import ChatService
from rag_core.chunking import Chunker
from rag_core.ingestion import Ingestor, IngestReport
from rag_core.lexical import LexicalEncoder
from rag_core.monitoring import HealthMonitor, ProbeSpec
from rag_core.ports import ConversationStore, VectorIndex
from rag_core.retrieval import Retriever

log = logging.getLogger(__name__)

Closer = Callable[[], Awaitable[None]]


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
    health: HealthMonitor
    admin_key: str | None
    adapters: dict[str, str]
    closers: list[Closer] = attrs.field(factory=list)

    async def ingest_paths(
        self, paths: list[Path], progress: Callable[[int, int], None] | None = None
    ) -> IngestReport:
        """Ingest files or folders; each folder is its own pruning scope."""
        total = IngestReport(0, 0, 0, 0, 0, 0, 0)
        for path in paths:
            documents = await asyncio.to_thread(read_documents, path)
            scope = f"{path.resolve().name}/" if path.is_dir() else None
            report = await self.ingestor.ingest(documents, scope=scope, progress=progress)
            total = _add(total, report)
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
        else f"qdrant local mode in {settings.data_dir / 'qdrant'}"
    )
    database = (
        "postgresql" if settings.database_url else f"sqlite in {settings.data_dir / 'rag.db'}"
    )
    openai = "openai" if settings.openai_api_key else None
    return {
        "vector_index": index,
        "conversation_store": database,
        "embedder": f"{openai} {settings.openai_embedding_model}"
        if openai
        else "none (lexical retrieval)",
        "chat_model": f"{openai} {settings.openai_chat_model}"
        if openai
        else "none (extractive answers)",
    }


async def build_container(settings: Settings) -> Container:
    """Build the production or embedded-default container from settings."""
    check_production(settings)
    plan = plan_adapters(settings)
    if not settings.production:
        for port, adapter in plan.items():
            if "local" in adapter or "sqlite" in adapter or adapter.startswith("none"):
                log.info("embedded default for %s: %s", port, adapter)
    closers: list[Closer] = []
    index = _build_index(settings)
    closers.append(index.close)
    conversations = await _build_store(settings, closers)
    return await assemble(settings, index, conversations, plan, closers, _admin_key(settings))


def _build_index(settings: Settings) -> QdrantIndex:
    collection = settings.qdrant_collection_name
    if settings.qdrant_url == ":memory:":
        return QdrantIndex.memory(collection)
    if settings.qdrant_url:
        key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
        return QdrantIndex.remote(settings.qdrant_url, key, collection, settings.qdrant_timeout)
    return QdrantIndex.local(settings.data_dir / "qdrant", collection)


async def _build_store(settings: Settings, closers: list[Closer]) -> SqlConversationStore:
    if settings.database_url:
        url = settings.database_url.get_secret_value()
        dependency = "postgres"
    else:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{settings.data_dir / 'rag.db'}"
        dependency = "sqlite"
    engine = create_engine_for(url, connect_timeout=settings.database_timeout)

    async def dispose() -> None:
        await asyncio.to_thread(engine.dispose)

    closers.append(dispose)
    await asyncio.to_thread(prepare_schema, engine)
    return SqlConversationStore(engine, dependency=dependency)


async def in_memory_container(settings: Settings | None = None) -> Container:
    """A fully in-memory container (no files, no sockets): for tests and embedding."""
    settings = settings or Settings(_env_file=None)
    return await assemble(
        settings,
        InMemoryIndex(),
        InMemoryConversationStore(),
        {"vector_index": "in-memory", "conversation_store": "in-memory"},
        [],
        settings.admin_api_key.get_secret_value() if settings.admin_api_key else None,
    )


async def assemble(
    settings: Settings,
    index: VectorIndex,
    conversations: ConversationStore,
    plan: dict[str, str],
    closers: list[Closer],
    admin_key: str | None,
) -> Container:
    """Wire the use cases around already-built adapters."""
    clock = SystemClock()
    encoder = LexicalEncoder()
    ingestor = Ingestor(index, encoder, Chunker())
    await index.prepare(None)
    retriever = Retriever(index, encoder)
    answerer = Answerer(retriever)
    chat = ChatService(answerer, conversations, clock, UuidGenerator())
    health = HealthMonitor(
        [
            ProbeSpec("vector_index", index.probe, critical=True, detail=plan["vector_index"]),
            ProbeSpec(
                "conversation_store",
                conversations.probe,
                critical=False,
                detail=plan["conversation_store"],
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
        chat=chat,
        health=health,
        admin_key=admin_key,
        adapters=plan,
        closers=closers,
    )


def _admin_key(settings: Settings) -> str | None:
    """ADMIN_API_KEY, or locally a key generated once into DATA_DIR/admin-key (0600)
    so the CLI on the same machine can hand work to the running service."""
    if settings.admin_api_key:
        return settings.admin_api_key.get_secret_value()
    if settings.production:
        return None
    path = admin_key_path(settings)
    if path.exists():
        return path.read_text().strip() or None
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


def admin_key_path(settings: Settings) -> Path:
    return settings.data_dir / "admin-key"
