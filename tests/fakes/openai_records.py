"""What FakeOpenAI is told to do wrong, and what it saw of each stream."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Fault:
    """An injected failure: an error ``status``, or (status None) a stream cut after
    ``after_tokens`` content chunks, for requests to ``endpoint`` (None: any)."""

    status: int | None
    endpoint: str | None = None
    retry_after: str | None = None
    message: str | None = None
    code: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    after_tokens: int = 0


@dataclass
class StreamRecord:
    """One streamed reply as the server saw it."""

    total_tokens: int
    sent: int = 0
    completed: bool = False
    disconnected: bool = False
