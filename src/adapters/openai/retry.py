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

    A call may also be given a ``budget`` (see :meth:`run`): seconds for every try and
    every wait together, after which it fails with :class:`DeadlineExceeded`.
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
        budget: float | None = None,
    ) -> T:
        """Await ``operation()`` until it succeeds, fails with an error that is not
        ``transient``, or has been tried ``attempts`` times; the last error propagates
        unchanged. ``label`` names the call in the warning logged before each retry.

        With a ``budget`` (seconds), the tries and the waits between them all end by
        then: a try still running is cancelled and DeadlineExceeded raised (never
        retried: the time is spent), and a retry whose wait would not leave time to
        try is not made (the last error propagates)."""
        if budget is not None and not budget > 0:
            raise ValueError(f"a budget must be positive seconds, not {budget}")
        loop = asyncio.get_running_loop()
        deadline = None if budget is None else loop.time() + budget
        tried = 0
        while True:
            tried += 1
            try:
                if deadline is None:
                    return await operation()
                return await within(deadline, operation, budget)
            except DeadlineExceeded:
                raise
            except Exception as exc:
                if tried >= self.attempts or not transient(exc):
                    raise
                wait = self.delay(tried, retry_after(exc))
                if deadline is not None and loop.time() + wait >= deadline:
                    raise
                log.warning(
                    "%s failed (%s); retry %d of %d in %.3fs",
                    label,
                    type(exc).__name__,
                    tried,
                    self.attempts - 1,
                    wait,
                )
                await self.sleep(wait)


class DeadlineExceeded(Exception):
    """A call's time budget ran out before it was done."""

    def __init__(self, budget: float | None) -> None:
        super().__init__(
            "the time budget ran out" if budget is None else f"no answer within {budget:g}s"
        )
        self.budget = budget


async def within(
    deadline: float, operation: Callable[[], Awaitable[T]], budget: float | None = None
) -> T:
    """``await operation()``, cancelled at ``deadline`` (the running loop's clock),
    which then raises DeadlineExceeded (``budget`` only words its message). Only this
    deadline's expiry is converted: a cancellation from outside stays a
    cancellation, and a TimeoutError the operation raises itself propagates as it is."""
    scope = asyncio.timeout_at(deadline)
    try:
        async with scope:
            return await operation()
    except TimeoutError as exc:
        if scope.expired():
            raise DeadlineExceeded(budget) from exc
        raise


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
