"""The composition table: for each port, the setting that chooses its adapter and
the one factory per choice that builds it.

| port           | setting        | choices (default first when unset)                     |
|----------------|----------------|--------------------------------------------------------|
| `vector_index` | `VECTOR_INDEX` | `qdrant` with QDRANT_URL, else `edge`; `memory`        |
| `database`     | `DATABASE`     | `postgres` with DATABASE_URL, else `sqlite`; `memory`  |
| `embedder`     | `EMBEDDINGS`   | `openai` with a key, else `none`; `local`              |
| `chat_model`   | `CHAT_MODEL`   | `openai` with OPENAI_API_KEY, else `none`              |

A factory builds the bare adapter; :func:`compose` wraps every choice the same way
(each port behind its circuit breaker, the conversations behind the outbox when the
database is durable), for the service, the CLI and :func:`in_memory_container` alike.
Adapters are imported inside their factory: qdrant-client and openai take a second
and a third of one to import, which the embedded defaults do not need.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Generic, TypeVar

import attrs
from sqlalchemy import Engine

from adapters.settings import (
    NO_EMBEDDING_KEY,
    ChatModelChoice,
    DatabaseChoice,
    EmbedderChoice,
    Settings,
    VectorIndexChoice,
)
from adapters.sql.engine import create_engine_for, prepare_schema_within
from rag_core.accounts import AccountStore
from rag_core.errors import DependencyUnavailable
from rag_core.insights import QuestionLog
from rag_core.ports import ChatModel, ConversationStore, Embedder, IdGenerator, VectorIndex
from rag_core.transforms import ContentCache

T = TypeVar("T")
log = logging.getLogger(__name__)
Closer = Callable[[], Awaitable[None]]


@attrs.define
class Scope:
    """What a factory builds in: the settings, the closers it registers (run in
    reverse at shutdown, or at once when the build fails), and whether it builds for
    `rag-backend ingest` (no chat model, an embedder built on first use)."""

    settings: Settings
    closers: list[Closer] = attrs.field(factory=list)
    for_ingest: bool = False


@attrs.frozen
class Factory(Generic[T]):
    """One choice of a port: how it reads in `check-config` and the health details,
    whether it is an embedded (or absent) fallback that start-up announces locally,
    and how it is built."""

    describe: Callable[[Settings], str]
    build: Callable[[Scope], Awaitable[T]]
    fallback: bool = False


# vector_index


@attrs.frozen
class BuiltIndex:
    index: VectorIndex
    after_deletes: Closer | None = None  # run after an ingest that deleted chunks
    target: str | None = None  # what start-up names when the index is unreachable


async def _edge_index(scope: Scope) -> BuiltIndex:
    settings = scope.settings
    if settings.index_owner_socket is not None:  # a worker of `serve`: the owner holds it
        return _owned_index(scope, settings.index_owner_socket)
    from adapters.qdrant_edge import EdgeIndex

    edge = EdgeIndex.open(settings.data_dir / "qdrant-edge", settings.qdrant_collection_name)
    scope.closers.append(edge.close)

    async def compact() -> None:  # so deleted chunks stop counting in IDF
        await edge.compact()

    return BuiltIndex(edge, after_deletes=compact)


def _owned_index(scope: Scope, socket: Path) -> BuiltIndex:
    from adapters.index_owner import RemoteIndex

    remote = RemoteIndex(socket, timeout=scope.settings.qdrant_timeout)
    scope.closers.append(remote.close)  # the connection only: the owner closes the index
    return BuiltIndex(remote, after_deletes=remote.after_deletes, target=f"index owner at {socket}")


def _describe_edge(settings: Settings) -> str:
    where = f"qdrant edge (embedded) in {settings.data_dir / 'qdrant-edge'}"
    if settings.index_owner_socket is not None:
        return f"{where}, through its owner process at {settings.index_owner_socket}"
    return where


async def _qdrant_index(scope: Scope) -> BuiltIndex:
    from adapters.qdrant_index import QdrantIndex, address

    settings = scope.settings
    url, collection = settings.qdrant_url, settings.qdrant_collection_name
    if url is None:
        raise ValueError("VECTOR_INDEX=qdrant needs QDRANT_URL")
    if url == ":memory:":  # qdrant-client's own location for a local in-memory mode
        index = QdrantIndex.memory(collection)
        target = None
    else:
        key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
        index = QdrantIndex.remote(url, key, collection, settings.qdrant_timeout)
        target = f"qdrant at {address(url)}"
    scope.closers.append(index.close)
    return BuiltIndex(index, target=target)


def _describe_qdrant(settings: Settings) -> str:
    if settings.qdrant_url == ":memory:":
        return "qdrant in-memory"
    return f"qdrant server ({settings.qdrant_collection_name})"


async def _memory_index(scope: Scope) -> BuiltIndex:
    from adapters.memory.index import InMemoryIndex

    return BuiltIndex(InMemoryIndex())


VECTOR_INDEXES: dict[VectorIndexChoice, Factory[BuiltIndex]] = {
    "edge": Factory(_describe_edge, _edge_index, fallback=True),
    "qdrant": Factory(_describe_qdrant, _qdrant_index),
    "memory": Factory(lambda s: "in-memory", _memory_index, fallback=True),
}


# database


@attrs.frozen
class BuiltStores:
    """The database's stores, bare. ``outbox``: where chat turns wait during an
    outage (a durable database only; the file of slot 0, each process of the host
    claiming one of its own beside it); ``session_ids``: what the conversations draw
    session ids from (the outbox creates sessions with them in an outage)."""

    conversations: ConversationStore
    accounts: AccountStore
    cache: ContentCache
    dependency: str  # the database's name in errors and its circuit's
    question_log: QuestionLog | None = None  # bare: assemble guards it (or writes through)
    outbox: Path | None = None
    session_ids: IdGenerator | None = None


async def _sql_stores(scope: Scope) -> BuiltStores:
    from adapters.sql.accounts import SqlAccountStore
    from adapters.sql.content_cache import SqlContentCache
    from adapters.sql.conversations import SqlConversationStore
    from adapters.sql.question_log import SqlQuestionLog
    from adapters.system import UuidGenerator

    settings = scope.settings
    engine, dependency = database_engine(settings)
    _close_engine(scope, engine)
    await prepare_schema(engine, dependency, settings.database_timeout)
    # Each SQL call is bounded inside its breaker (a hang counts as a failure).
    timeout = settings.database_timeout
    ids = UuidGenerator()
    return BuiltStores(
        SqlConversationStore(engine, ids=ids, dependency=dependency, timeout=timeout),
        SqlAccountStore(engine, dependency=dependency, timeout=timeout),
        SqlContentCache(engine, dependency=dependency, timeout=timeout),
        dependency,
        question_log=SqlQuestionLog(engine, dependency=dependency, timeout=timeout),
        outbox=settings.data_dir / "outbox.db",
        session_ids=ids,
    )


async def prepare_schema(engine: Engine, dependency: str, seconds: float) -> None:
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


def database_engine(settings: Settings) -> tuple[Engine, str]:
    """The configured database's engine (PostgreSQL, else SQLite in DATA_DIR) and
    its dependency name for errors and breakers. Does not connect."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)  # also holds the outbox
    if settings.database_choice == "postgres" and settings.database_url:
        url, dependency = settings.database_url.get_secret_value(), "postgres"
    else:
        url, dependency = f"sqlite:///{settings.data_dir / 'rag.db'}", "sqlite"
    return create_engine_for(url, connect_timeout=settings.database_timeout), dependency


def _close_engine(scope: Scope, engine: Engine) -> None:
    async def dispose() -> None:
        await asyncio.to_thread(engine.dispose)

    scope.closers.append(dispose)


async def _memory_stores(scope: Scope) -> BuiltStores:
    from adapters.memory.accounts import InMemoryAccountStore
    from adapters.memory.content_cache import InMemoryContentCache
    from adapters.memory.conversations import InMemoryConversationStore
    from adapters.memory.question_log import InMemoryQuestionLog

    # Nothing to keep through an outage that cannot happen: no outbox.
    stores = InMemoryConversationStore(), InMemoryAccountStore(), InMemoryContentCache()
    return BuiltStores(*stores, "database", question_log=InMemoryQuestionLog())


DATABASES: dict[DatabaseChoice, Factory[BuiltStores]] = {
    "sqlite": Factory(lambda s: f"sqlite in {s.data_dir / 'rag.db'}", _sql_stores, fallback=True),
    "postgres": Factory(lambda s: "postgresql", _sql_stores),
    "memory": Factory(lambda s: "in-memory", _memory_stores, fallback=True),
}


# embedder


async def _openai_embedder(scope: Scope) -> Embedder | None:
    from adapters.openai.configured import openai_embedder

    return await openai_embedder(scope.settings, scope.closers, for_ingest=scope.for_ingest)


def _describe_openai_embedder(settings: Settings) -> str:
    if settings.embedding_key is None:
        return f"none: {NO_EMBEDDING_KEY}"
    return f"openai {settings.openai_embedding_model}"


async def _local_embedder(scope: Scope) -> Embedder | None:
    """fastembed's ONNX model in-process (the `local` extra). Its dimension is known
    without loading it; serving loads it now, so a model that cannot be loaded (or
    downloaded) stops the start-up with DependencyUnavailable instead of failing every
    query; ingest loads it on its first embedding."""
    from adapters.local_embedder import FastEmbedEmbedder

    settings = scope.settings
    local = FastEmbedEmbedder(
        settings.local_embedding_model,
        cache_dir=settings.data_dir / "models",
        model_path=settings.local_embedding_path,
    )
    scope.closers.append(local.close)
    if not scope.for_ingest:
        await local.load()
    return local


def _describe_local_embedder(settings: Settings) -> str:
    model = settings.local_embedding_model
    if settings.local_embedding_path:
        return f"local {model} from {settings.local_embedding_path}"
    return f"local {model} (cached in {settings.data_dir / 'models'})"


async def _nothing(scope: Scope) -> None:
    return None


EMBEDDERS: dict[EmbedderChoice, Factory[Embedder | None]] = {
    "openai": Factory(_describe_openai_embedder, _openai_embedder),
    "local": Factory(_describe_local_embedder, _local_embedder),
    "none": Factory(lambda s: "none (lexical retrieval)", _nothing, fallback=True),
}


# chat_model


async def _openai_chat_model(scope: Scope) -> ChatModel | None:
    if scope.for_ingest:  # ingest answers nothing
        return None
    from adapters.openai.configured import openai_chat_model

    return openai_chat_model(scope.settings, scope.closers)


CHAT_MODELS: dict[ChatModelChoice, Factory[ChatModel | None]] = {
    "openai": Factory(lambda s: f"openai {s.openai_chat_model}", _openai_chat_model),
    "none": Factory(
        lambda s: "none (extractive answers; transforms unavailable)", _nothing, fallback=True
    ),
}


@attrs.frozen
class Choices:
    """Which factory serves each port under some settings (nothing built)."""

    vector_index: Factory[BuiltIndex]
    database: Factory[BuiltStores]
    embedder: Factory[Embedder | None]
    chat_model: Factory[ChatModel | None]

    def described(self, settings: Settings) -> dict[str, str]:
        return {
            "vector_index": self.vector_index.describe(settings),
            "database": self.database.describe(settings),
            "embedder": self.embedder.describe(settings),
            "chat_model": self.chat_model.describe(settings),
        }

    def fallbacks(self, settings: Settings) -> dict[str, str]:
        """The ports served by an embedded default or by nothing (announced locally)."""
        chosen = attrs.asdict(self, recurse=False)
        described = self.described(settings)
        return {port: described[port] for port, factory in chosen.items() if factory.fallback}


def choices(settings: Settings) -> Choices:
    """The table's rows that ``settings`` select."""
    return Choices(
        vector_index=VECTOR_INDEXES[settings.vector_index_choice],
        database=DATABASES[settings.database_choice],
        embedder=EMBEDDERS[settings.embedding_backend],
        chat_model=CHAT_MODELS[settings.chat_model_choice],
    )
