"""A bounded retry policy: exponential backoff with jitter, honouring server hints."""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

import attrs

log = logging.getLogger(__name__)

T = TypeVar("T")


@attrs.frozen(slots=True)
class RetryPolicy:
    """How often and how patiently a failed call is tried again.

    ``attempts`` counts every try, the first included (1 means never retry).
    Before retry ``n`` (1, 2, ...) it waits ``base_delay * 2 ** (n - 1)`` capped at
    ``max_delay``; with ``jitter`` that wait is drawn uniformly from its upper half,
    so clients that failed together do not come back together. A server's
    ``Retry-After`` hint replaces the backoff, still capped at ``max_delay``.

    ``sleep`` and ``random`` are injectable so tests can record the waits and
    run in milliseconds. The policy is immutable and safe to share.
    """

    attempts: int = attrs.field(default=3, validator=attrs.validators.ge(1))
    base_delay: float = attrs.field(default=0.5, validator=attrs.validators.ge(0.0))
    max_delay: float = attrs.field(default=8.0, validator=attrs.validators.ge(0.0))
    jitter: bool = True
    sleep: Callable[[float], Awaitable[None]] = attrs.field(
        default=asyncio.sleep, eq=False, repr=False
    )
    random: Callable[[], float] = attrs.field(default=random.random, eq=False, repr=False)

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (from 1)."""
        if retry_after is not None:
            return min(self.max_delay, max(0.0, retry_after))
        backoff = min(self.max_delay, self.base_delay * 2.0 ** (retry - 1))
        if self.jitter:
            return backoff / 2 + self.random() * backoff / 2
        return backoff

    async def run(
        self,
        operation: Callable[[], Awaitable[T]],
        *,
        transient: Callable[[Exception], bool],
        retry_after: Callable[[Exception], float | None],
        label: str,
    ) -> T:
        """Await ``operation()`` until it succeeds, fails with an error that is not
        ``transient``, or has been tried ``attempts`` times; the last error propagates
        unchanged. ``label`` names the call in the warning logged before each retry."""
        tried = 0
        while True:
            tried += 1
            try:
                return await operation()
            except Exception as exc:
                if tried >= self.attempts or not transient(exc):
                    raise
                wait = self.delay(tried, retry_after(exc))
                log.warning(
                    "%s failed (%s); retry %d of %d in %.3fs",
                    label,
                    type(exc).__name__,
                    tried,
                    self.attempts - 1,
                    wait,
                )
                await self.sleep(wait)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """A ``Retry-After`` header as seconds from ``now``: delta-seconds or an HTTP date.

    None when absent or unreadable; a date in the past gives 0.
    """
    if value is None or not value.strip():
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # HTTP dates are GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
