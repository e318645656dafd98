"""GCRA, the generic cell rate algorithm: a token bucket kept as one timestamp per key.

A policy of ``30/minute`` admits a burst of 30, then one request every 2 seconds. A
key's state is its *theoretical arrival time* (TAT): when its bucket will be full
again. Both stores (:mod:`~adapters.rate_limits.memory`,
:mod:`~adapters.rate_limits.sqlite`) call :func:`decide` and store what it says, so
the algorithm lives here only.

Times are integer nanoseconds: exact sums, so the last request of a burst is never
refused by float rounding, even at wall-clock magnitudes (1.7e9 s, where a float's
step is 0.2 microseconds). :func:`nanoseconds` converts a clock's float seconds.
"""

from __future__ import annotations

import re
from typing import Final, Protocol, Self

import attrs

NANOSECONDS: Final = 1_000_000_000
_UNITS = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour|day)s?\s*$", re.IGNORECASE)


def nanoseconds(seconds: float) -> int:
    """A clock reading (float seconds) as integer nanoseconds."""
    return round(seconds * NANOSECONDS)


@attrs.frozen(slots=True)
class Rate:
    """``count`` requests per ``period`` seconds (a burst of ``count``, then a steady pace)."""

    count: int = attrs.field(validator=attrs.validators.ge(1))
    period: float = attrs.field(validator=attrs.validators.gt(0))

    @classmethod
    def parse(cls, text: str) -> Self:
        """``"30/minute"``, ``"5/second"``, ``"100/hours"``, ``"1000/day"``."""
        found = _RATE.match(text)
        if found is None:
            raise ValueError(f"not a rate: {text!r} (expected e.g. '30/minute')")
        return cls(int(found[1]), _UNITS[found[2].lower()])

    @property
    def interval(self) -> float:
        """Seconds between two requests at the steady pace."""
        return self.period / self.count

    @property
    def period_ns(self) -> int:
        return nanoseconds(self.period)

    @property
    def interval_ns(self) -> int:
        """Rounded down: a whole burst fits in one period exactly, and the pace is
        faster by under a nanosecond per request."""
        return nanoseconds(self.period) // self.count


@attrs.frozen(slots=True)
class Decision:
    """What :func:`decide` says of one request, in nanoseconds.

    ``wait`` is 0 to admit it, else how much later one would be admitted. ``store``
    is the key's new arrival time to keep, or None to keep what was there: a refused
    request stores nothing (except a correction, below).
    """

    wait: int
    store: int | None


def decide(stored: int | None, now: int, rate: Rate) -> Decision:
    """One request for a key under ``rate``, at ``now`` (nanoseconds).

    ``stored`` is the key's theoretical arrival time, None when none is kept (a new
    key, or one forgotten). A stored time in the past is a full bucket. One past
    ``now + period`` can never be legitimate (an admitted arrival is at most one
    period after its admission), so the clock went back (a wall clock stepped, a
    file kept across boots): it is clamped to ``now + period`` and that is stored even
    if the request is refused, so the key counts as having just spent its burst
    rather than being locked out for the length of the jump. A key whose arrival is
    at or before now has refilled and may be forgotten (:func:`refilled`).
    """
    limit = now + rate.period_ns
    clamped = stored is not None and stored > limit
    base = now if stored is None else min(max(stored, now), limit)
    arrival = base + rate.interval_ns
    wait = arrival - limit
    if wait > 0:
        return Decision(wait, limit if clamped else None)
    return Decision(0, arrival)


def refilled(arrival: int, now: int) -> bool:
    """Whether a key whose arrival is ``arrival`` has a full bucket at ``now`` (so
    forgetting it changes nothing)."""
    return arrival <= now


class Arrivals(Protocol):
    """Where the arrival times are kept: per policy, per key, at most ``max_keys`` keys
    per policy (past that the oldest are forgotten, which only ever errs towards
    admitting). Each store reads its own clock."""

    def hit(self, policy: str, key: str, rate: Rate, max_keys: int) -> float:
        """Count one request: 0.0 if admitted, else the seconds until one would be
        (a refused request stores nothing)."""
        ...

    def tracked_keys(self, policy: str) -> int:
        """How many keys ``policy`` remembers now."""
        ...

    def close(self) -> None:
        """Release what the store holds (it may be used again after)."""
        ...
