"""Decorating any port generically: a proxy class generated from the port's Protocol.

A decorator of a port (a circuit breaker in front of it, a view that forwards most
calls) used to re-implement the whole Protocol method by method, so adding one
method to a port meant editing every decorator. Here the methods are generated, once
per port, from the Protocol's members, by kind:

- ``async def`` methods: through the decorator's :meth:`PortProxy._call`;
- ``probe``: through :meth:`PortProxy._probe` (a health check is not a call);
- methods returning an ``AsyncGenerator``/``AsyncIterator`` (``ChatModel.stream``):
  through :meth:`PortProxy._stream`;
- ``close``, plain methods and properties: straight to the decorated object.

A method the decorator class defines itself is kept (it overrides the generated one).
Statically, :meth:`Port.wrap` (and the typed factories built on it) returns the port's
type, so callers stay fully typed.
"""

from __future__ import annotations

import enum
import inspect
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, cast

from rag_core.accounts import AccountStore
from rag_core.insights import QuestionLog
from rag_core.ports import ChatModel, ConversationStore, Embedder, VectorIndex
from rag_core.transforms import ContentCache

T = TypeVar("T")
P = TypeVar("P")


class Kind(enum.Enum):
    CALL = "call"
    PROBE = "probe"
    STREAM = "stream"
    DIRECT = "direct"  # close() and plain methods: straight through
    PROPERTY = "property"


_STREAM_RETURNS = ("AsyncGenerator", "AsyncIterator")


def members(protocol: type[Any]) -> dict[str, Kind]:
    """The public members of ``protocol`` (and its Protocol bases), by kind."""
    found: dict[str, Kind] = {}
    for klass in reversed(protocol.__mro__):
        if klass is object or klass.__name__ in ("Protocol", "Generic"):
            continue
        for name, value in vars(klass).items():
            if name.startswith("_"):
                continue
            found[name] = _kind(name, value)
    return found


def _kind(name: str, value: object) -> Kind:
    if isinstance(value, property):
        return Kind.PROPERTY
    if name == "probe":
        return Kind.PROBE
    if name == "close":
        return Kind.DIRECT
    if inspect.iscoroutinefunction(value):
        return Kind.CALL
    returns = getattr(value, "__annotations__", {}).get("return", "")
    text = returns if isinstance(returns, str) else getattr(returns, "__name__", str(returns))
    if text.split(".")[-1].startswith(_STREAM_RETURNS):
        return Kind.STREAM
    return Kind.DIRECT


class PortProxy(Generic[P]):
    """Base of the generated proxies: forwards everything to ``inner`` unchanged.

    Subclasses change :meth:`_call`, :meth:`_probe` and :meth:`_stream` (what
    happens around every call of one kind), or define a port method themselves. A
    subclass declared with ``port=`` (``class GuardedIndex(Guarded[VectorIndex],
    port=VECTOR_INDEX)``) gets the port's other members generated; statically its
    instances then answer every attribute (as Any): :meth:`Port.wrap` and the typed
    factories built on it give the port's own type."""

    port: ClassVar[Port[Any]]

    def __init_subclass__(cls, port: Port[Any] | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if port is not None:
            cls.port = port
            for member, generated in port.generated_for(cls).items():
                setattr(cls, member, generated)

    if TYPE_CHECKING:

        def __getattr__(self, name: str) -> Any: ...

    def __init__(self, inner: P) -> None:
        self._inner = inner

    @property
    def inner(self) -> P:
        return self._inner

    async def _call(self, name: str, fn: Callable[[], Awaitable[T]]) -> T:
        return await fn()

    async def _probe(self, fn: Callable[[], Awaitable[T]]) -> T:
        return await fn()

    def _stream(self, fn: Callable[[], AsyncGenerator[T, None]]) -> AsyncGenerator[T, None]:
        return fn()


class Port(Generic[P]):
    """A port's Protocol as the generic proxies read it: ``Port[VectorIndex](VectorIndex)``."""

    def __init__(self, protocol: type[Any]) -> None:
        self.protocol = protocol
        self.name = protocol.__name__
        self.members = members(protocol)

    def generated_for(self, cls: type[Any]) -> dict[str, object]:
        """The port's members that ``cls`` (or a base below PortProxy) does not define,
        generated."""
        return {
            member: _generated(member, kind)
            for member, kind in self.members.items()
            if not _defines(cls, member)
        }

    def proxy_class(self, base: type[PortProxy[Any]], name: str | None = None) -> type[Any]:
        """A subclass of ``base`` implementing every member of the port that ``base``
        does not define itself."""
        return type(name or f"{base.__name__}{self.name}", (base,), {}, port=self)

    def wrap(self, proxy_class: type[PortProxy[Any]], *args: Any, **kwargs: Any) -> P:
        """An instance of ``proxy_class`` (from :meth:`proxy_class`) as the port's type."""
        return cast(P, proxy_class(*args, **kwargs))


def _defines(base: type[Any], member: str) -> bool:
    return any(
        member in vars(klass) for klass in base.__mro__ if klass not in (object, PortProxy, Generic)
    )


def _generated(name: str, kind: Kind) -> object:
    if kind is Kind.PROPERTY:
        return property(lambda self: getattr(self._inner, name), doc=f"The decorated {name}.")
    if kind is Kind.CALL:

        async def call(self: PortProxy[Any], *args: Any, **kwargs: Any) -> Any:
            return await self._call(name, lambda: getattr(self._inner, name)(*args, **kwargs))

        method: Callable[..., Any] = call
    elif kind is Kind.PROBE:

        async def probe(self: PortProxy[Any]) -> Any:
            return await self._probe(getattr(self._inner, name))

        method = probe
    elif kind is Kind.STREAM:

        def stream(self: PortProxy[Any], *args: Any, **kwargs: Any) -> Any:
            return self._stream(lambda: getattr(self._inner, name)(*args, **kwargs))

        method = stream
    else:

        def direct(self: PortProxy[Any], *args: Any, **kwargs: Any) -> Any:
            return getattr(self._inner, name)(*args, **kwargs)

        method = direct
    method.__name__ = method.__qualname__ = name
    return method


# The ports that are decorated (guarded, viewed), read once.
VECTOR_INDEX: Port[VectorIndex] = Port(VectorIndex)
EMBEDDER: Port[Embedder] = Port(Embedder)
CHAT_MODEL: Port[ChatModel] = Port(ChatModel)
CONVERSATION_STORE: Port[ConversationStore] = Port(ConversationStore)
ACCOUNT_STORE: Port[AccountStore] = Port(AccountStore)
CONTENT_CACHE: Port[ContentCache] = Port(ContentCache)
QUESTION_LOG: Port[QuestionLog] = Port(QuestionLog)
