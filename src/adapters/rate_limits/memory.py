"""GCRA state in this process's memory: the store of a single process (no I/O).

A key not admitted for a whole period is forgotten as new requests arrive, refused
requests store nothing, and each policy keeps at most ``max_keys`` keys (past that the
least recently admitted is forgotten), so memory stays bounded under any traffic.
No locks: call it from one event loop (``hit`` never awaits).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from adapters.rate_limits.gcra import NANOSECONDS, Rate, decide, nanoseconds, refilled


class MemoryArrivals:
    """Implements :class:`~adapters.rate_limits.gcra.Arrivals` in a dict per policy.

    ``clock`` gives monotonic seconds (tests pass a fake one).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        # Per policy: key -> theoretical arrival time, least recently admitted first.
        self._arrivals: dict[str, OrderedDict[str, int]] = {}

    def hit(self, policy: str, key: str, rate: Rate, max_keys: int) -> float:
        arrivals = self._arrivals.get(policy)
        if arrivals is None:
            arrivals = self._arrivals[policy] = OrderedDict()
        now = nanoseconds(self._clock())
        _forget_refilled(arrivals, now)
        decision = decide(arrivals.get(key), now, rate)
        if decision.store is not None:
            arrivals[key] = decision.store
            arrivals.move_to_end(key)
            if len(arrivals) > max_keys:
                arrivals.popitem(last=False)
        return decision.wait / NANOSECONDS

    def tracked_keys(self, policy: str) -> int:
        return len(self._arrivals.get(policy, ()))

    def close(self) -> None:
        """Nothing to release."""


def _forget_refilled(arrivals: OrderedDict[str, int], now: int) -> None:
    # Keys are in admission order, and an admitted key's arrival time is at most one
    # period after its admission: once the oldest kept key is live, every key kept
    # was admitted within the last period, which bounds memory by one period's
    # admissions. A refilled key left behind it is harmless (``decide`` treats it as full).
    while arrivals:
        key, arrival = next(iter(arrivals.items()))
        if not refilled(arrival, now):
            return
        del arrivals[key]
