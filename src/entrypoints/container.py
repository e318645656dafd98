"""The composition root: adapters -> use cases. :func:`assemble` wires the use
cases around already-built adapters (see ``bootstrap.py`` for the production
ones, :func:`in_memory_container` for a fully in-memory set). Only the
entrypoints know the concrete adapters."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import attrs

from adapters.filesystem import read_documents
from adapters.lazy_index import LazyIndex
from adapters.memory.index import InMemoryIndex
from adapters.outbox import OutboxConversationStore
from adapters.passwords import DEFAULT_COST, BcryptHasher
from adapters.proxy import (
    ACCOUNT_STORE,
    CHAT_MODEL,
    CONTENT_CACHE,
    CONVERSATION_STORE,
    EMBEDDER,
    QUESTION_LOG,
    VECTOR_INDEX,
)
from adapters.resilience import Breaker, guard
from adapters.settings import ConfigurationError, Settings
from adapters.system import SystemClock, UuidGenerator
from adapters.tokens import JwtAuthenticator
from entrypoints import reindex
from entrypoints.breakers import CIRCUIT_NAMES, Breakers, make_breakers
from entrypoints.composition import DATABASES, BuiltIndex, BuiltStores, Closer, Scope
from rag_core.accounts import AccountService
from rag_core.answering import Answerer
from rag_core.chat import ChatService
from rag_core.chunking import Chunker
from rag_core.documents import Document
from rag_core.errors import DependencyUnavailable, IndexMismatch
from rag_core.history import HistoryService
from rag_core.ingestion import Ingestor, IngestReport
from rag_core.insights import Insights
from rag_core.lexical import LexicalEncoder
from rag_core.monitoring import HealthMonitor, ProbeSpec
from rag_core.ports import ChatModel, Clock, ConversationStore, Embedder, VectorIndex
from rag_core.retrieval import Retriever
from rag_core.transforms import ContentTransformer

log = logging.getLogger(__name__)

# The source of the project's own docs that `make run` shows a newcomer: served
# only while nothing else is indexed, and removed by the first other ingest.
DEMO_SOURCE = "rag-backend:demo"
# What a model reads of each passage: its chunk and the neighbours of its section, up to
# this many characters (about 750 tokens; textbook context recall 0.825 -> 0.864).
WIDEN_CHARS = 3000


@attrs.define
class Adapters:
    """The outside-world side of a container, as the factories built it (bare:
    :func:`assemble` puts every port behind its breaker, and the conversations
    behind the outbox when the database has one)."""

    index: BuiltIndex
    stores: BuiltStores
    auth_secret: str
    admin_key: str | None
    plan: dict[str, str]
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
    outbox: OutboxConversationStore | None = None
    preparation: LazyIndex | None = None  # the index's, deferred while it is unreachable
    insights: Insights | None = None  # None: QUESTION_LOG off
    clock: Clock = attrs.field(factory=SystemClock)

    async def pages(self) -> list[str]:
        """The route of every page in the index (for the pages never cited)."""
        return sorted({chunk.route for chunk in await self.index.chunks() if chunk.route})

    async def ingest(
        self,
        documents: list[Document],
        *,
        scope: str | None = None,
        source: str | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> IngestReport:
        """Diff ``documents`` against the index (see Ingestor.ingest)."""
        report = await self.ingestor.ingest(
            documents, scope=scope, source=source, progress=progress
        )
        if source != DEMO_SOURCE and (await self.index.chunk_ids_by_document(DEMO_SOURCE)):
            demo = await self.ingestor.ingest([], source=DEMO_SOURCE)
            log.info(
                "removed the demo docs (%d documents): your own are indexed", demo.documents_removed
            )
            report = _add(report, attrs.evolve(demo, documents_removed=0))
        if report.chunks_deleted and self.after_deletes is not None:
            await self.after_deletes()
        return report

    async def ingest_paths(
        self, paths: list[Path], progress: Callable[[int, int], None] | None = None
    ) -> IngestReport:
        """Ingest files or folders; each is its own source (its absolute path), so
        re-ingesting one prunes the documents that left it, and only those."""
        total = IngestReport(0, 0, 0, 0, 0, 0, 0)
        for path in paths:
            documents = await asyncio.to_thread(read_documents, path)
            report = await self.ingest(documents, source=source_of(path), progress=progress)
            total = _add(total, report)
        return total

    async def aclose(self) -> None:
        for close in reversed(self.closers):
            try:
                await close()
            except Exception:  # closing must go on for the others
                log.exception("error while closing")


async def ingest_demo(container: Container, paths: list[Path]) -> bool:
    """Ingest ``paths`` as the demo docs, unless other docs are indexed already.
    Returns whether the demo docs are (now) indexed."""
    stored = await container.index.chunk_ids_by_document()
    demo = await container.index.chunk_ids_by_document(DEMO_SOURCE)
    if set(stored) - set(demo):
        return False
    documents: list[Document] = []
    for path in paths:
        documents.extend(await asyncio.to_thread(read_documents, path))
    await container.ingest(documents, source=DEMO_SOURCE)
    return True


def source_of(path: Path) -> str:
    """The source name of an ingested file or folder: its absolute path."""
    return str(path.resolve())


def _add(a: IngestReport, b: IngestReport) -> IngestReport:
    return IngestReport(*(x + y for x, y in zip(attrs.astuple(a), attrs.astuple(b), strict=True)))


async def in_memory_container(
    settings: Settings | None = None,
    *,
    embedder: Embedder | None = None,
    chat_model: ChatModel | None = None,
    password_cost: int = DEFAULT_COST,
    index: VectorIndex | None = None,
    clock: Clock | None = None,
) -> Container:
    """A fully in-memory container (no files, no sockets): for tests and embedding.
    The stores are DATABASE=memory's; ``index`` replaces the in-memory index (e.g. one
    that injects faults); ``clock`` drives the circuit breakers (a fake one makes
    recovery testable). Wrapped by :func:`assemble` exactly as the service is."""
    settings = settings or Settings(_env_file=None)
    admin = settings.admin_api_key
    secret = settings.better_auth_secret
    adapters = Adapters(
        index=BuiltIndex(index or InMemoryIndex()),
        stores=await DATABASES["memory"].build(Scope(settings)),
        auth_secret=secret.get_secret_value() if secret else secrets.token_urlsafe(32),
        admin_key=admin.get_secret_value() if admin else None,
        plan={"vector_index": "in-memory", "database": "in-memory"},
        embedder=embedder,
        chat_model=chat_model,
        password_cost=password_cost,
    )
    return await assemble(settings, adapters, clock=clock)


async def assemble(
    settings: Settings, adapters: Adapters, *, clock: Clock | None = None
) -> Container:
    """Wrap the bare adapters and wire the use cases around them: every call of every
    port goes through its dependency's circuit breaker; the conversations, when the
    database has an outbox, through the outbox too (outside the breaker, so that it
    sees the breaker's refusals); the index behind a LazyIndex that prepares it."""
    clock = clock or SystemClock()
    ids = UuidGenerator()
    stores = adapters.stores
    breakers = make_breakers(settings, clock, stores.dependency)
    guarded = guard(VECTOR_INDEX, adapters.index.index, breakers.vector_index)
    conversations = guard(CONVERSATION_STORE, stores.conversations, breakers.database)
    chat_store = conversations
    outbox: OutboxConversationStore | None = None
    if stores.outbox is not None:
        # The outbox waits a little longer than a SQL call, so the breaker sees the timeout first.
        outbox = OutboxConversationStore(
            conversations,
            stores.outbox,
            dependency=stores.dependency,
            session_ids=stores.session_ids,
            timeout=settings.database_timeout + 1,
        )
        adapters.closers.append(outbox.close)  # closers run in reverse: before the engine
        conversations, chat_store = outbox, outbox.chat_view()
    accounts_store = guard(ACCOUNT_STORE, stores.accounts, breakers.database)
    cache = guard(CONTENT_CACHE, stores.cache, breakers.database)
    embedder = guard(EMBEDDER, adapters.embedder, breakers.embedder) if adapters.embedder else None
    chat_model = (
        guard(CHAT_MODEL, adapters.chat_model, breakers.chat_model) if adapters.chat_model else None
    )
    encoder = LexicalEncoder()
    # Preparation (and its re-embedding) writes beneath the lazy index, never through it.
    preparer = Ingestor(guarded, encoder, Chunker(), embedder)
    index = LazyIndex(
        guarded,
        lambda: _prepare_index(settings, preparer, guarded, embedder),
        target=adapters.index.target,
    )
    if not await index.start():  # unreachable: prepared by the first call that reaches it
        _open_circuit(breakers.vector_index)
    ingestor = Ingestor(index, encoder, Chunker(), embedder)
    retriever = Retriever(index, encoder, embedder, widen_chars=WIDEN_CHARS)
    answerer = Answerer(retriever, chat_model)
    try:
        authenticator = JwtAuthenticator(adapters.auth_secret, issuer=settings.better_auth_url)
    except ValueError as exc:  # the message never holds the secret
        raise ConfigurationError(f"BETTER_AUTH_SECRET: {exc}") from None
    accounts = AccountService(
        accounts_store, authenticator, BcryptHasher(adapters.password_cost), clock, ids
    )
    transforms = ContentTransformer(
        chat_model, cache, model_name=settings.openai_chat_model if chat_model else None
    )
    insights = None
    if settings.question_log and stores.question_log is not None:
        # Votes, reports and purges fail fast behind the database breaker; answers are
        # logged in the background straight through the adapter (bounded by its own
        # timeout), so logging neither delays an answer nor trips the database circuit.
        insights = Insights(
            guard(QUESTION_LOG, stores.question_log, breakers.database),
            clock,
            reader_secret=adapters.auth_secret,
            log_identities=settings.log_identities,
            retention=timedelta(days=settings.question_log_retention_days),
            writer=stores.question_log,
            embedder=embedder,
        )
    probes = _probes(adapters, breakers, index, conversations, chat_model, outbox)
    return Container(
        settings=settings,
        index=index,
        conversations=conversations,
        ingestor=ingestor,
        retriever=retriever,
        answerer=answerer,
        chat=ChatService(answerer, chat_store, clock, ids, insights=insights),
        history=HistoryService(conversations),
        accounts=accounts,
        transforms=transforms,
        health=HealthMonitor(probes, clock),
        breakers=breakers.all(),
        admin_key=adapters.admin_key,
        adapters=adapters.plan,
        closers=adapters.closers,
        after_deletes=adapters.index.after_deletes,
        outbox=outbox,
        preparation=index,
        insights=insights,
        clock=clock,
    )


async def _prepare_index(
    settings: Settings, ingestor: Ingestor, index: VectorIndex, embedder: Embedder | None
) -> None:
    """Prepare the index for the embedder; when it was laid out for another one (or a
    re-embedding was cut short), re-embed the stored chunks instead of refusing to start."""
    dimension = embedder.dimension if embedder else None
    if reindex.backup_path(settings.data_dir).exists():
        await reindex.reembed(ingestor, index, settings.data_dir, "resuming")
        return
    try:
        await index.prepare(dimension)
    except IndexMismatch as exc:
        target = f"{embedder.model} ({dimension} dimensions)" if embedder else "lexical only"
        await reindex.reembed(ingestor, index, settings.data_dir, f"for {target}: {exc}")


def _open_circuit(breaker: Breaker) -> None:
    """Open ``breaker`` at once: its dependency could not be reached at start-up, so
    calls are refused fast (a selection is still answered) instead of each waiting for
    the timeout until enough have failed. After the recovery time the health probe,
    never refused, closes it once the dependency answers."""
    unreachable = DependencyUnavailable(breaker.name, "unreachable at start-up")
    for _ in range(breaker.snapshot().failure_threshold):
        if breaker.snapshot().state != "closed":
            break
        breaker.record_failure(unreachable)


def _probes(
    adapters: Adapters,
    breakers: Breakers,
    index: VectorIndex,
    conversations: ConversationStore,
    chat_model: ChatModel | None,
    outbox: OutboxConversationStore | None,
) -> list[ProbeSpec]:
    plan = adapters.plan
    probes = [
        ProbeSpec(
            "vector_index",
            index.probe,
            critical=True,
            detail=plan["vector_index"],
            circuit=lambda: breakers.vector_index.snapshot().state,
        ),
        ProbeSpec(
            "database",
            conversations.probe,
            critical=False,
            detail=plan["database"],
            circuit=lambda: breakers.database.snapshot().state,
        ),
    ]
    if chat_model is not None:
        # Probed when the adapter can be without spending tokens (OpenAI: GET /models
        # within its own timeout, so a hung server shows as failing), and judged by its
        # circuit too. Not through the breaker: a listing that works says nothing of
        # completions, and must not reset the count of their failures.
        probe = getattr(adapters.chat_model, "probe", None)
        probes.append(
            ProbeSpec(
                CIRCUIT_NAMES["chat_model"],
                probe,
                critical=False,
                detail=plan.get("chat_model", "chat model"),
                circuit=lambda: breakers.chat_model.snapshot().state,
            )
        )
    if outbox is not None:

        async def nothing_waiting() -> None:
            if outbox.pending() or outbox.parked():
                raise RuntimeError(
                    f"{outbox.pending()} chat turns wait for the database, {outbox.parked()} parked"
                )

        probes.append(
            ProbeSpec(
                "outbox", nothing_waiting, critical=False, detail="chat turns kept during outages"
            )
        )
    return probes
