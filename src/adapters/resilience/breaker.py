"""A circuit breaker per outside dependency, built on the ``circuitbreaker`` package
(its decorator form, the one that refuses calls while open), with what it lacks added:
see :class:`Breaker` and ``design/reliability.md``.

State lives in the process: every worker process has its own breakers and they do not
share what they saw. A breaker is not thread-safe; use it from one event loop.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Literal, TypeVar

import attrs
from circuitbreaker import STATE_HALF_OPEN, STATE_OPEN, CircuitBreaker

from rag_core.errors import DependencyUnavailable
from rag_core.health import CircuitState

T = TypeVar("T")
# While trial calls are in flight their outcome decides; callers come back soon.
_TRIAL_RETRY_AFTER = 1.0


class CircuitOpen(DependencyUnavailable):
    """A call refused by an open (or busy half-open) circuit; never counted as a failure."""

    def __init__(self, dependency: str, retry_after: float) -> None:
        super().__init__(dependency, "circuit open", retry_after=retry_after)


@attrs.frozen(slots=True)
class BreakerState:
    """A breaker's state at one moment (what ``GET /health/circuits`` shows).

    ``failure_count`` is the number of consecutive counted failures (it goes on
    counting past the threshold while trial calls fail). ``seconds_until_trial`` is
    None when closed and 0 when half-open. ``last_failure`` is the error class name of
    the last counted failure and stays after the circuit closes again, so an operator
    can see what happened; it is never a message, which could hold a secret.
    """

    name: str
    state: CircuitState
    failure_count: int
    failure_threshold: int
    recovery_timeout: float
    seconds_until_trial: float | None
    last_failure: str | None
    last_failure_at: datetime | None


class _Circuit(CircuitBreaker):  # type: ignore[misc]  # the package ships no types
    """The package's breaker with a three-way outcome and a clock of its own.

    The package resets the failure count on any exception it does not count
    (``asyncio.CancelledError`` included); here such an exception is neutral. Its
    open period runs on the module-level ``monotonic``; here on ``clock``.
    """

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int,
        recovery_timeout: float,
        counts: Callable[[BaseException], bool],
        clock: Callable[[], float],
        now: Callable[[], datetime],
        refuse: Callable[..., Awaitable[None]],
    ) -> None:
        super().__init__(
            failure_threshold=failure_threshold,
            recovery_timeout=recovery_timeout,
            expected_exception=lambda _type, exc: _counted(exc, counts),
            name=name,
            fallback_function=refuse,
        )
        self.threshold = failure_threshold
        self.recovery = recovery_timeout
        self.clock = clock
        self.now = now
        self.opened_at = clock()
        self.last_failure_name: str | None = None
        self.last_failure_at: datetime | None = None

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> Literal[False]:
        if exc is not None and not self.is_failure(exc_type, exc):
            return False  # neutral: neither a failure nor a success
        super().__exit__(exc_type, exc, tb)
        if exc is not None:
            self.last_failure_name = type(exc).__name__
            self.last_failure_at = self.now()
            if self.failure_count >= self.threshold:  # the package has just (re)opened
                self.opened_at = self.clock()
        return False

    @property
    def open_remaining(self) -> float:
        return self.opened_at + self.recovery - self.clock()

    def record(self, exc: BaseException) -> None:
        """Record an outcome seen outside a protected call, as the ``with`` form would."""
        self.__exit__(type(exc), exc, exc.__traceback__)


def _counted(exc: BaseException, counts: Callable[[BaseException], bool]) -> bool:
    # Cancellation and interpreter exits are not Exceptions; a refusal by any circuit
    # says nothing about this dependency.
    return isinstance(exc, Exception) and not isinstance(exc, CircuitOpen) and counts(exc)


class Breaker:
    """Fails fast while a dependency is failing, and lets it recover by itself.

    Closed: calls run; ``failure_threshold`` consecutive failures for which
    ``counts(exc)`` is true open the circuit. A success resets the count; any other
    exception (our own InvalidInput, NotFound, ..., and ``asyncio.CancelledError``) is
    neutral and leaves the count as it is. Open: calls are refused at once with
    :class:`CircuitOpen` (a DependencyUnavailable, ``retry_after`` = seconds until a
    trial call) and the callee is not called. After ``recovery_timeout`` seconds,
    half-open: at most ``half_open_max_calls`` trial calls run at once, others are
    refused; a trial's success closes the circuit, its counted failure re-opens it
    for another ``recovery_timeout``.

    A timeout applied from outside the call (``asyncio.timeout`` around it) cancels
    it, which is neutral: bound calls inside (the adapters' own client timeouts,
    translated into DependencyUnavailable) so that a hanging dependency counts.

    Settings the package would silently turn into its defaults (0) raise ValueError.
    ``clock`` (monotonic seconds) runs the open period and ``now`` stamps
    ``last_failure_at``; tests pass fakes and never sleep.

    Names must be unique per process among live breakers (the caller's job): the
    package registers each breaker by name in its global ``CircuitBreakerMonitor``,
    which this class never reads; report with :meth:`snapshot`.
    """

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int,
        recovery_timeout: float,
        half_open_max_calls: int = 1,
        counts: Callable[[BaseException], bool],
        clock: Callable[[], float] | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        if not name:
            raise ValueError("a breaker needs a name")
        if failure_threshold < 1:
            raise ValueError(f"failure_threshold must be at least 1, not {failure_threshold}")
        if not (recovery_timeout > 0 and math.isfinite(recovery_timeout)):
            raise ValueError(f"recovery_timeout must be positive seconds, not {recovery_timeout}")
        if half_open_max_calls < 1:
            raise ValueError(f"half_open_max_calls must be at least 1, not {half_open_max_calls}")
        self._name = name
        self._max_trials = half_open_max_calls
        self._trials = 0
        self._circuit = _Circuit(
            name,
            failure_threshold=failure_threshold,
            recovery_timeout=recovery_timeout,
            counts=counts,
            clock=clock or time.monotonic,
            now=now or (lambda: datetime.now(UTC)),
            refuse=self._refuse,
        )
        # The decorator form is the one that refuses calls while the circuit is open.
        self._protected = self._circuit.decorate(self._attempt)
        # Told of every call: (dependency, seconds, error class name or None). Set by
        # whoever collects metrics; it must not raise or block.
        self.observe: Callable[[str, float, str | None], None] | None = None

    @property
    def name(self) -> str:
        return self._name

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run ``fn()`` through the breaker; raises CircuitOpen when refused."""
        if self.observe is None:
            result: T = await self._protected(fn)
            return result
        started = time.perf_counter()
        error: str | None = None
        try:
            result = await self._protected(fn)
            return result
        except Exception as exc:
            error = type(exc).__name__
            raise
        finally:
            self.observe(self._name, time.perf_counter() - started, error)

    async def probe(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run a health probe: never refused, not held back by the half-open gate.

        Closed or half-open, its outcome is recorded like a call's (so after the
        recovery timeout a successful probe closes the circuit). While open, its
        outcome is not recorded: a probe neither shortens nor extends the open period.
        """
        if self._circuit.state == STATE_OPEN:
            return await fn()
        # The package's non-decorator form runs the call even when it would refuse it.
        result: T = await self._circuit.call_async(fn)
        return result

    def record_failure(self, exc: BaseException) -> None:
        """Count ``exc`` as if a call had raised it (a failure seen after a call ended,
        e.g. mid-stream); neutral exceptions are ignored as in :meth:`call`."""
        self._circuit.record(exc)

    def snapshot(self) -> BreakerState:
        circuit = self._circuit
        state: CircuitState = circuit.state
        if state == STATE_OPEN:
            until: float | None = round(circuit.open_remaining, 3)
        elif state == STATE_HALF_OPEN:
            until = 0.0
        else:
            until = None
        return BreakerState(
            name=self._name,
            state=state,
            failure_count=circuit.failure_count,
            failure_threshold=circuit.threshold,
            recovery_timeout=circuit.recovery,
            seconds_until_trial=until,
            last_failure=circuit.last_failure_name,
            last_failure_at=circuit.last_failure_at,
        )

    async def _attempt(self, fn: Callable[[], Awaitable[T]]) -> T:
        # The package has let the call through (closed or half-open) with no await in
        # between, so this state is the one it decided on.
        if self._circuit.state != STATE_HALF_OPEN:
            return await fn()
        if self._trials >= self._max_trials:
            retry_after = min(_TRIAL_RETRY_AFTER, self._circuit.recovery)
            raise CircuitOpen(self._name, retry_after=retry_after)
        self._trials += 1
        try:
            return await fn()
        finally:
            self._trials -= 1

    async def _refuse(self, fn: Callable[[], Awaitable[object]]) -> None:
        raise CircuitOpen(self._name, retry_after=max(self._circuit.open_remaining, 0.001))
