"""Any port behind a :class:`~adapters.resilience.breaker.Breaker`: one decorator,
generated from the port's Protocol (see :mod:`adapters.proxy`), instead of a class
written method by method for each port.

Every ``async`` method goes through :meth:`Breaker.call`. ``probe()`` goes through
:meth:`Breaker.probe`: an open circuit never refuses it, and after the recovery timeout
a successful probe is the trial call that closes the circuit. ``close()`` and the
properties (an embedder's ``model`` and ``dimension``: configuration, read without a
call) are never guarded: resources are released whatever the circuit's state.
NotFound and InvalidInput pass through untouched and do not count (given a breaker
whose ``counts`` says so, as the composition root's does).

A streamed reply (``ChatModel.stream``): the breaker decides when iteration starts,
before the inner stream is started (an open circuit refuses it with CircuitOpen from
the first ``anext``); waiting for the first delta is the protected call: a failure
before it counts, and its arrival (or an empty reply) is the success. The rest of the
stream is consumed outside the breaker (a long reply holds no half-open trial slot),
but an error mid-stream is recorded as a failure when the breaker counts it. Closing
the stream early closes the inner one.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, TypeVar

from adapters.proxy import (
    ACCOUNT_STORE,
    CHAT_MODEL,
    CONTENT_CACHE,
    CONVERSATION_STORE,
    EMBEDDER,
    QUESTION_LOG,
    VECTOR_INDEX,
    Port,
    PortProxy,
)
from adapters.resilience.breaker import Breaker
from rag_core.accounts import AccountStore
from rag_core.insights import QuestionLog
from rag_core.ports import ChatModel, ConversationStore, Embedder, VectorIndex
from rag_core.transforms import ContentCache

T = TypeVar("T")
P = TypeVar("P")


class Guarded(PortProxy[P]):
    """The base of every guarded port: ``inner``'s calls go through ``breaker``."""

    def __init__(self, inner: P, breaker: Breaker) -> None:
        super().__init__(inner)
        self._breaker = breaker

    @property
    def breaker(self) -> Breaker:
        return self._breaker

    async def _call(self, name: str, fn: Callable[[], Awaitable[T]]) -> T:
        return await self._breaker.call(fn)

    async def _probe(self, fn: Callable[[], Awaitable[T]]) -> T:
        return await self._breaker.probe(fn)

    async def _stream(self, fn: Callable[[], AsyncGenerator[T, None]]) -> AsyncGenerator[T, None]:
        upstream = fn()

        async def first() -> tuple[T] | None:
            try:
                return (await anext(upstream),)
            except StopAsyncIteration:
                return None

        try:
            head = await self._breaker.call(first)
            if head is None:
                return
            yield head[0]
            while True:
                try:
                    item = await anext(upstream)
                except StopAsyncIteration:
                    return
                except Exception as exc:
                    self._breaker.record_failure(exc)
                    raise
                yield item
        finally:
            await upstream.aclose()


class GuardedIndex(Guarded[VectorIndex], port=VECTOR_INDEX):
    """A :class:`~rag_core.ports.VectorIndex` whose calls go through ``breaker``."""


class GuardedEmbedder(Guarded[Embedder], port=EMBEDDER):
    """An :class:`~rag_core.ports.Embedder` whose ``embed`` goes through ``breaker``."""


class GuardedChatModel(Guarded[ChatModel], port=CHAT_MODEL):
    """A :class:`~rag_core.ports.ChatModel` whose calls go through ``breaker``."""


class GuardedConversationStore(Guarded[ConversationStore], port=CONVERSATION_STORE):
    """A :class:`~rag_core.ports.ConversationStore` whose calls go through ``breaker``."""


class GuardedAccountStore(Guarded[AccountStore], port=ACCOUNT_STORE):
    """An :class:`~rag_core.accounts.AccountStore` whose calls go through ``breaker``."""


class GuardedContentCache(Guarded[ContentCache], port=CONTENT_CACHE):
    """A :class:`~rag_core.transforms.ContentCache` whose calls go through ``breaker``."""


class GuardedQuestionLog(Guarded[QuestionLog], port=QUESTION_LOG):
    """A :class:`~rag_core.insights.QuestionLog` whose calls go through ``breaker``."""


_CLASSES: dict[Port[Any], type[Any]] = {
    VECTOR_INDEX: GuardedIndex,
    EMBEDDER: GuardedEmbedder,
    CHAT_MODEL: GuardedChatModel,
    CONVERSATION_STORE: GuardedConversationStore,
    ACCOUNT_STORE: GuardedAccountStore,
    CONTENT_CACHE: GuardedContentCache,
    QUESTION_LOG: GuardedQuestionLog,
}


def guard(port: Port[P], inner: P, breaker: Breaker) -> P:
    """``inner`` behind ``breaker``, typed as the port."""
    cls = _CLASSES.get(port) or port.proxy_class(Guarded)
    return port.wrap(cls, inner, breaker)
