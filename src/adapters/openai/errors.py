"""Which OpenAI errors are worth retrying, and what they become in the core's error family."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import TypeVar

import openai

from adapters.openai.retry import DeadlineExceeded, RetryPolicy, parse_retry_after
from rag_core.errors import DependencyUnavailable, InvalidInput, RagError

DEPENDENCY = "openai"
DEADLINE = "DeadlineExceeded"  # the reason of a call whose time budget ran out
log = logging.getLogger(__name__)
T = TypeVar("T")

# 408 is the server timing the request out: a timeout like any other.
_TRANSIENT_STATUS = frozenset({408, 429})
_REFUSED_STATUS = frozenset({400, 413, 422})  # the request itself is unusable
# Keys and bearer tokens a server might echo back (OpenAI echoes a masked key on 401).
_SECRET_LIKE = re.compile(r"(sk-|Bearer\s+)[\w\-*.]{4,}", re.IGNORECASE)
_MESSAGE_LIMIT = 300


def is_transient(exc: Exception) -> bool:
    """Connection errors, timeouts, 408, 429 (but not an exhausted quota) and 5xx;
    never other 4xx."""
    if isinstance(exc, openai.APIConnectionError):  # APITimeoutError included
        return True
    if isinstance(exc, openai.APIStatusError):
        if _code(exc) == "insufficient_quota":  # a 429 that waiting does not cure
            return False
        return exc.status_code in _TRANSIENT_STATUS or exc.status_code >= 500
    return False


def retry_after(exc: Exception) -> float | None:
    """The server's hint in seconds (``retry-after-ms`` or ``Retry-After``), if any."""
    if not isinstance(exc, openai.APIStatusError):
        return None
    headers = exc.response.headers
    milliseconds = parse_retry_after(headers.get("retry-after-ms"))
    if milliseconds is not None:
        return milliseconds / 1000
    return parse_retry_after(headers.get("retry-after"))


def translate(exc: openai.OpenAIError, secret: str) -> RagError:
    """The core's error for an OpenAI error, with no key or URL in its message.

    A request the server refuses (400/413/422) is InvalidInput carrying the
    server's own explanation (scrubbed of ``secret`` and anything key-like);
    everything else is DependencyUnavailable naming the error class, with the
    server's retry hint when it gave one. 401/403/404 say the service is
    misconfigured (key, permissions, model name): unusable until fixed.
    """
    if isinstance(exc, openai.APIStatusError) and exc.status_code in _REFUSED_STATUS:
        reason = _server_message(exc, secret)
        return InvalidInput(
            f"the model server refused the request (HTTP {exc.status_code}): {reason}"
        )
    return DependencyUnavailable(DEPENDENCY, _reason(exc), retry_after(exc))


async def call(
    policy: RetryPolicy,
    operation: Callable[[], Awaitable[T]],
    *,
    label: str,
    secret: str,
    budget: float | None = None,
) -> T:
    """Run ``operation`` under ``policy``, all tries within ``budget`` seconds (when
    given); an OpenAI error left over is translated, and a spent budget is
    DependencyUnavailable("openai", "DeadlineExceeded"). Both are raised inside the
    caller's circuit breaker, which counts them."""
    try:
        return await policy.run(
            operation, transient=is_transient, retry_after=retry_after, label=label, budget=budget
        )
    except openai.OpenAIError as exc:
        raise translate(exc, secret) from exc
    except DeadlineExceeded as exc:
        raise timed_out(label, exc) from exc


def timed_out(label: str, exc: DeadlineExceeded) -> DependencyUnavailable:
    """What a spent budget becomes; logged once, plainly (the circuit counts it)."""
    log.warning("%s: %s", label, exc)
    return DependencyUnavailable(DEPENDENCY, DEADLINE)


def _reason(exc: openai.OpenAIError) -> str:
    """The error's class name; but a "timeout" whose root cause is no timeout (the
    SDK's aiohttp transport reports a refused connection as ConnectTimeout) is
    named APIConnectionError, so that a wrong URL does not read as a slow server."""
    if isinstance(exc, openai.APITimeoutError):
        root: BaseException = exc
        while root.__cause__ is not None:
            root = root.__cause__
        if not isinstance(root, TimeoutError) and "Timeout" not in type(root).__name__:
            return openai.APIConnectionError.__name__
    return type(exc).__name__


def _code(exc: openai.APIStatusError) -> object:
    return exc.body.get("code") if isinstance(exc.body, dict) else None


def _server_message(exc: openai.APIStatusError, secret: str) -> str:
    body = exc.body
    message = body.get("message") if isinstance(body, dict) else None
    text = message if isinstance(message, str) and message else type(exc).__name__
    if secret:
        text = text.replace(secret, "***")
    text = _SECRET_LIKE.sub(lambda match: f"{match.group(1)}***", text)
    return text[:_MESSAGE_LIMIT]
