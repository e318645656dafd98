"""The circuit breaker: closed -> open -> half-open -> closed, on a fake clock."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest

from adapters.resilience import Breaker, BreakerState, CircuitOpen
from rag_core.errors import DependencyUnavailable, IndexMismatch, InvalidInput, NotFound
from rag_core.testing import FakeClock

T0 = datetime(2025, 1, 1, tzinfo=UTC)
THRESHOLD = 3
RECOVERY = 30.0


def unavailable(exc: BaseException) -> bool:
    return isinstance(exc, DependencyUnavailable)


class Callee:
    """An outside call that fails or succeeds as scripted and counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def failing(self, error: Exception | None = None) -> Callable[[], Awaitable[str]]:
        async def call() -> str:
            self.calls += 1
            raise error or DependencyUnavailable("qdrant", "ConnectError")

        return call

    async def ok(self) -> str:
        self.calls += 1
        return "ok"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0, seconds=1000.0)


@pytest.fixture
def callee() -> Callee:
    return Callee()


def make_breaker(clock: FakeClock, **overrides: object) -> Breaker:
    settings: dict[str, object] = {
        "failure_threshold": THRESHOLD,
        "recovery_timeout": RECOVERY,
        "counts": unavailable,
        "clock": clock,
        "now": clock.now,
    }
    settings.update(overrides)
    return Breaker("qdrant", **settings)  # type: ignore[arg-type]


@pytest.fixture
def breaker(clock: FakeClock) -> Breaker:
    return make_breaker(clock)


async def trip(breaker: Breaker, callee: Callee, times: int = THRESHOLD) -> None:
    for _ in range(times):
        with pytest.raises(DependencyUnavailable, match="ConnectError"):
            await breaker.call(callee.failing())


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("failure_threshold", 0),
        ("failure_threshold", -1),
        ("recovery_timeout", 0),
        ("recovery_timeout", -5.0),
        ("recovery_timeout", math.nan),
        ("recovery_timeout", math.inf),
        ("half_open_max_calls", 0),
    ],
)
def test_settings_the_package_would_turn_into_defaults_are_refused(
    clock: FakeClock, setting: str, value: float
) -> None:
    with pytest.raises(ValueError, match=setting):
        make_breaker(clock, **{setting: value})


def test_a_name_is_required(clock: FakeClock) -> None:
    with pytest.raises(ValueError, match="name"):
        Breaker("", failure_threshold=1, recovery_timeout=1, counts=unavailable, clock=clock)


async def test_starts_closed_and_passes_results_through(breaker: Breaker, callee: Callee) -> None:
    assert await breaker.call(callee.ok) == "ok"
    assert breaker.snapshot() == BreakerState(
        name="qdrant",
        state="closed",
        failure_count=0,
        failure_threshold=THRESHOLD,
        recovery_timeout=RECOVERY,
        seconds_until_trial=None,
        last_failure=None,
        last_failure_at=None,
    )


async def test_counted_failures_open_it_and_open_refuses_fast(
    breaker: Breaker, callee: Callee, clock: FakeClock
) -> None:
    await trip(breaker, callee, THRESHOLD - 1)
    assert breaker.snapshot().state == "closed"
    await trip(breaker, callee, 1)
    assert callee.calls == THRESHOLD

    clock.advance(10)
    with pytest.raises(CircuitOpen) as refused:
        await breaker.call(callee.ok)
    assert callee.calls == THRESHOLD  # the callee was not called
    assert isinstance(refused.value, DependencyUnavailable)
    assert refused.value.dependency == "qdrant"
    assert refused.value.reason == "circuit open"
    assert refused.value.retry_after == pytest.approx(RECOVERY - 10)

    snapshot = breaker.snapshot()
    assert snapshot.state == "open"
    assert snapshot.failure_count == THRESHOLD
    assert snapshot.seconds_until_trial == pytest.approx(RECOVERY - 10)
    assert snapshot.last_failure == "DependencyUnavailable"
    assert snapshot.last_failure_at == T0 + timedelta(seconds=1000)


async def test_a_success_resets_the_count(breaker: Breaker, callee: Callee) -> None:
    await trip(breaker, callee, THRESHOLD - 1)
    await breaker.call(callee.ok)
    assert breaker.snapshot().failure_count == 0
    await trip(breaker, callee, THRESHOLD - 1)
    assert breaker.snapshot().state == "closed"


@pytest.mark.parametrize("error", [InvalidInput("bad"), NotFound("gone"), IndexMismatch("dim")])
async def test_errors_that_do_not_count_pass_through_and_keep_the_count(
    breaker: Breaker, callee: Callee, error: Exception
) -> None:
    await trip(breaker, callee, THRESHOLD - 1)
    with pytest.raises(type(error)) as raised:
        await breaker.call(callee.failing(error))
    assert raised.value is error
    assert breaker.snapshot().failure_count == THRESHOLD - 1
    assert breaker.snapshot().last_failure == "DependencyUnavailable"
    await trip(breaker, callee, 1)
    assert breaker.snapshot().state == "open"


async def test_cancellation_neither_counts_nor_resets(breaker: Breaker, callee: Callee) -> None:
    await trip(breaker, callee, THRESHOLD - 1)
    started = asyncio.Event()

    async def hangs() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(breaker.call(hangs))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.001):
            await breaker.call(hangs)

    assert breaker.snapshot().failure_count == THRESHOLD - 1
    await trip(breaker, callee, 1)
    assert breaker.snapshot().state == "open"


async def test_cancellation_and_refusals_never_count_even_if_the_predicate_says_so(
    clock: FakeClock, callee: Callee
) -> None:
    breaker = make_breaker(clock, counts=lambda exc: True)
    other = make_breaker(clock, failure_threshold=1)
    await trip(other, callee, 1)

    async def cancelled() -> None:
        raise asyncio.CancelledError

    for _ in range(THRESHOLD):
        with pytest.raises(asyncio.CancelledError):
            await breaker.call(cancelled)
        with pytest.raises(CircuitOpen):
            await breaker.call(lambda: other.call(callee.ok))  # another circuit's refusal
    assert breaker.snapshot().failure_count == 0


async def test_after_the_recovery_timeout_it_is_half_open(
    breaker: Breaker, callee: Callee, clock: FakeClock
) -> None:
    await trip(breaker, callee)
    clock.advance(RECOVERY - 0.5)
    assert breaker.snapshot().state == "open"
    clock.advance(0.5)
    snapshot = breaker.snapshot()
    assert snapshot.state == "half_open"
    assert snapshot.seconds_until_trial == 0.0


@pytest.mark.parametrize("max_trials", [1, 2])
async def test_half_open_admits_exactly_max_concurrent_trials(
    clock: FakeClock, callee: Callee, max_trials: int
) -> None:
    breaker = make_breaker(clock, half_open_max_calls=max_trials)
    await trip(breaker, callee)
    clock.advance(RECOVERY)
    release = asyncio.Event()
    admitted = 0

    async def trial() -> str:
        nonlocal admitted
        admitted += 1
        await release.wait()
        return "recovered"

    trials = [asyncio.create_task(breaker.call(trial)) for _ in range(max_trials)]
    await asyncio.sleep(0)
    assert admitted == max_trials
    for _ in range(3):
        with pytest.raises(CircuitOpen) as refused:
            await breaker.call(callee.ok)
        assert refused.value.retry_after is not None
        assert 0 < refused.value.retry_after <= 1
    assert callee.calls == THRESHOLD
    assert breaker.snapshot().state == "half_open"

    release.set()
    assert await asyncio.gather(*trials) == ["recovered"] * max_trials
    assert breaker.snapshot().state == "closed"
    assert breaker.snapshot().failure_count == 0
    assert await breaker.call(callee.ok) == "ok"


async def test_a_failed_trial_reopens_for_another_recovery_timeout(
    breaker: Breaker, callee: Callee, clock: FakeClock
) -> None:
    await trip(breaker, callee)
    clock.advance(RECOVERY + 5)
    await trip(breaker, callee, 1)
    snapshot = breaker.snapshot()
    assert snapshot.state == "open"
    assert snapshot.seconds_until_trial == pytest.approx(RECOVERY)
    assert snapshot.failure_count == THRESHOLD + 1
    with pytest.raises(CircuitOpen):
        await breaker.call(callee.ok)


async def test_a_trial_that_ends_neutrally_frees_its_slot(
    breaker: Breaker, callee: Callee, clock: FakeClock
) -> None:
    await trip(breaker, callee)
    clock.advance(RECOVERY)
    with pytest.raises(NotFound):
        await breaker.call(callee.failing(NotFound("gone")))
    assert breaker.snapshot().state == "half_open"
    assert await breaker.call(callee.ok) == "ok"
    assert breaker.snapshot().state == "closed"


async def test_the_last_failure_is_kept_after_recovery(
    breaker: Breaker, callee: Callee, clock: FakeClock
) -> None:
    await trip(breaker, callee)
    failed_at = clock.now()
    clock.advance(RECOVERY)
    await breaker.call(callee.ok)
    snapshot = breaker.snapshot()
    assert snapshot.state == "closed"
    assert (snapshot.last_failure, snapshot.last_failure_at) == ("DependencyUnavailable", failed_at)


async def test_probe_is_not_refused_and_not_recorded_while_open(
    breaker: Breaker, callee: Callee, clock: FakeClock
) -> None:
    await trip(breaker, callee)
    clock.advance(RECOVERY / 2)
    assert await breaker.probe(callee.ok) == "ok"
    with pytest.raises(DependencyUnavailable):
        await breaker.probe(callee.failing())
    snapshot = breaker.snapshot()
    assert snapshot.state == "open"
    assert snapshot.seconds_until_trial == pytest.approx(RECOVERY / 2)
    assert snapshot.failure_count == THRESHOLD


async def test_a_probe_after_the_recovery_timeout_is_a_trial(
    breaker: Breaker, callee: Callee, clock: FakeClock
) -> None:
    await trip(breaker, callee)
    clock.advance(RECOVERY)
    with pytest.raises(DependencyUnavailable):
        await breaker.probe(callee.failing())
    assert breaker.snapshot().state == "open"
    clock.advance(RECOVERY)

    release = asyncio.Event()

    async def busy_trial() -> None:
        await release.wait()

    trial = asyncio.create_task(breaker.call(busy_trial))
    await asyncio.sleep(0)
    assert await breaker.probe(callee.ok) == "ok"  # not held back by the busy gate
    assert breaker.snapshot().state == "closed"
    release.set()
    await trial


async def test_probe_failures_count_while_closed(breaker: Breaker, callee: Callee) -> None:
    for _ in range(THRESHOLD):
        with pytest.raises(DependencyUnavailable):
            await breaker.probe(callee.failing())
    assert breaker.snapshot().state == "open"


async def test_record_failure_counts_only_what_calls_would_count(breaker: Breaker) -> None:
    breaker.record_failure(InvalidInput("bad"))
    breaker.record_failure(asyncio.CancelledError())
    assert breaker.snapshot().failure_count == 0
    for _ in range(THRESHOLD):
        breaker.record_failure(DependencyUnavailable("openai", "ReadError"))
    assert breaker.snapshot().state == "open"


async def test_breakers_with_the_same_name_are_independent(
    clock: FakeClock, callee: Callee
) -> None:
    first, second = make_breaker(clock), make_breaker(clock)
    await trip(first, callee)
    assert first.snapshot().state == "open"
    assert second.snapshot().state == "closed"
    assert await second.call(callee.ok) == "ok"


async def test_the_default_clock_recovers_by_itself(callee: Callee) -> None:
    breaker = Breaker("postgres", failure_threshold=1, recovery_timeout=0.005, counts=unavailable)
    await trip(breaker, callee, 1)
    with pytest.raises(CircuitOpen):
        await breaker.call(callee.ok)
    await asyncio.sleep(0.01)
    assert await breaker.call(callee.ok) == "ok"
    snapshot = breaker.snapshot()
    assert snapshot.state == "closed"
    assert snapshot.last_failure_at is not None
    assert snapshot.last_failure_at.tzinfo is UTC
