"""Rate limiting by named policies (``30/minute``), per key.

The algorithm is GCRA (a token bucket kept as one timestamp per key:
:mod:`adapters.rate_limits.gcra`): a policy of ``30/minute`` admits a burst of 30,
then one more request every 2 seconds. Refused requests store nothing, refilled keys
are forgotten, and each policy keeps at most ``max_keys`` keys (past that the oldest
is forgotten, which only ever errs towards admitting), so state stays bounded.

Where that state lives is the limiter's store: this process's memory
(:class:`~adapters.rate_limits.memory.MemoryArrivals`, the default) for a single
process, or a SQLite file in DATA_DIR that every worker process of the container
shares (:class:`~adapters.rate_limits.sqlite.SqliteArrivals`, when ``WORKERS`` > 1),
so N workers together admit a policy's rate, not N times it. Replicas (separate
containers) still count apart. ``hit`` never awaits: call it from the event loop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Self

import attrs

from adapters.rate_limits.gcra import Arrivals, Rate
from adapters.rate_limits.memory import MemoryArrivals
from adapters.settings import Settings

__all__ = [
    "DEFAULT_POLICIES",
    "Rate",
    "RateLimitConfig",
    "RateLimiter",
    "policies_of",
]


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

    ``store`` keeps the state (and reads its own clock); without one, this process's
    memory on ``clock``, monotonic seconds (tests pass a fake one). ``on_refused(policy)``
    is called for every refusal (e.g. ``Metrics.record_rate_limited``).
    """

    def __init__(
        self,
        config: RateLimitConfig,
        *,
        clock: Callable[[], float] | None = None,
        store: Arrivals | None = None,
        on_refused: Callable[[str], None] | None = None,
    ) -> None:
        if store is not None and clock is not None:
            raise TypeError("a store reads its own clock: pass clock or store, not both")
        self.config = config
        if store is None:
            store = MemoryArrivals() if clock is None else MemoryArrivals(clock)
        self.store = store
        self._on_refused = on_refused

    def hit(self, policy: str, key: str) -> float:
        """Count one request: 0.0 if admitted, else the seconds until one would be
        (a refused request is not counted). LookupError for an unknown policy."""
        if not self.config.enabled:
            return 0.0
        wait = self.store.hit(policy, key, self._rate(policy), self.config.max_keys)
        if wait > 0 and self._on_refused is not None:
            self._on_refused(policy)
        return wait

    def tracked_keys(self, policy: str) -> int:
        """How many keys ``policy`` remembers now."""
        self._rate(policy)
        return self.store.tracked_keys(policy)

    def close(self) -> None:
        """Release the store's file, if it has one (it reopens when hit again)."""
        self.store.close()

    def _rate(self, policy: str) -> Rate:
        try:
            return self.config.policies[policy]
        except KeyError:
            raise LookupError(f"no rate limit policy named {policy!r}") from None
