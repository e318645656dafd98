"""Rate limiting by named policies (``30/minute``), per key, in this process.

The algorithm is GCRA (a token bucket kept as one timestamp per key): a policy of
``30/minute`` admits a burst of 30, then one more request every 2 seconds. A key
not admitted for a whole period is forgotten as new requests arrive, refused requests
store nothing, and each policy keeps at most ``max_keys`` keys (past that the least
recently admitted is forgotten, which only ever errs towards admitting), so memory
stays bounded under any traffic. No locks: ``hit`` never awaits (one event loop).
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, Self

import attrs

from adapters.settings import Settings

_UNITS = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour|day)s?\s*$", re.IGNORECASE)
# A request whose wait is below this is on time: float rounding of period / count
# must not refuse the last request of a burst.
_EPSILON = 1e-9


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


# The policies and the setting that gives each one's rate; the defaults are the settings'.
_POLICY_SETTINGS: Mapping[str, str] = {
    "chat": "rate_limit_chat",
    "transforms": "rate_limit_transforms",
    "sign-in": "rate_limit_sign_in",
    "sign-in-email": "rate_limit_sign_in_email",
}
DEFAULT_POLICIES: Mapping[str, str] = {
    name: Settings.model_fields[setting].default for name, setting in _POLICY_SETTINGS.items()
}


def policies_of(settings: Settings) -> dict[str, str]:
    """Every policy's rate as ``settings`` set it, e.g. ``{"chat": "30/minute", ...}``."""
    return {name: getattr(settings, setting) for name, setting in _POLICY_SETTINGS.items()}


@attrs.frozen(slots=True)
class RateLimitConfig:
    """The policies by name, and how to find the client's address.

    ``proxy_hops`` is the number of trusted reverse proxies in front of the service
    that append to ``X-Forwarded-For``; 0 ignores that header (a client can write
    anything in it). ``max_keys`` bounds the keys kept per policy.
    """

    policies: Mapping[str, Rate]
    proxy_hops: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    max_keys: int = attrs.field(
        default=Settings.model_fields["rate_limit_max_keys"].default,
        validator=attrs.validators.ge(1),
    )
    enabled: bool = True

    @classmethod
    def parse(cls, policies: Mapping[str, str], **options: Any) -> Self:
        """A config from rates written as text, e.g. ``{"chat": "30/minute"}``."""
        return cls({name: Rate.parse(rate) for name, rate in policies.items()}, **options)


class RateLimiter:
    """Counts requests per policy and key; see the module docstring.

    ``clock`` gives monotonic seconds (tests pass a fake one); ``on_refused(policy)``
    is called for every refusal (e.g. ``Metrics.record_rate_limited``).
    """

    def __init__(
        self,
        config: RateLimitConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_refused: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self._clock = clock
        self._on_refused = on_refused
        # Per policy: key -> theoretical arrival time, least recently admitted first.
        self._arrivals: dict[str, OrderedDict[str, float]] = {
            name: OrderedDict() for name in config.policies
        }

    def hit(self, policy: str, key: str) -> float:
        """Count one request: 0.0 if admitted, else the seconds until one would be
        (a refused request is not counted). LookupError for an unknown policy."""
        if not self.config.enabled:
            return 0.0
        rate, arrivals = self._policy(policy)
        now = self._clock()
        _forget_refilled(arrivals, now)
        arrival = max(arrivals.get(key, now), now) + rate.interval
        wait = arrival - rate.period - now
        if wait > _EPSILON:
            if self._on_refused is not None:
                self._on_refused(policy)
            return wait
        arrivals[key] = arrival
        arrivals.move_to_end(key)
        if len(arrivals) > self.config.max_keys:
            arrivals.popitem(last=False)
        return 0.0

    def tracked_keys(self, policy: str) -> int:
        """How many keys ``policy`` remembers now."""
        return len(self._policy(policy)[1])

    def _policy(self, policy: str) -> tuple[Rate, OrderedDict[str, float]]:
        try:
            return self.config.policies[policy], self._arrivals[policy]
        except KeyError:
            raise LookupError(f"no rate limit policy named {policy!r}") from None


def _forget_refilled(arrivals: OrderedDict[str, float], now: float) -> None:
    # Keys are in admission order, and an admitted key's arrival time is at most one
    # period after its admission: once the oldest kept key is live, every key kept
    # was admitted within the last period, which bounds memory by one period's
    # admissions. A refilled key left behind it is harmless (``max`` with now).
    while arrivals:
        key, arrival = next(iter(arrivals.items()))
        if arrival > now:
            return
        del arrivals[key]
