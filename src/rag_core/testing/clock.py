"""A clock that moves only when told: the ``Clock`` port for tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

START = datetime(2025, 1, 1, tzinfo=UTC)


class FakeClock:
    """Implements :class:`rag_core.ports.Clock`, and is itself a monotonic callable
    (``clock()``), as the breakers and rate limiters take one.

    It holds ``seconds``, a monotonic reading; wall time is ``epoch + seconds``.
    ``advance`` moves both. With ``step`` (seconds), every reading (``now()``,
    ``monotonic()`` or a call) first advances the clock by it, so successive writes
    each get their own time.
    """

    def __init__(self, epoch: datetime = START, *, seconds: float = 0.0, step: float = 0.0) -> None:
        if epoch.tzinfo is None:
            raise ValueError("FakeClock needs a timezone-aware epoch")
        self.epoch = epoch
        self.seconds = seconds
        self.step = step

    def now(self) -> datetime:
        self.seconds += self.step
        return self.epoch + timedelta(seconds=self.seconds)

    def monotonic(self) -> float:
        self.seconds += self.step
        return self.seconds

    def __call__(self) -> float:
        return self.monotonic()

    def advance(self, seconds: float) -> None:
        self.seconds += seconds
