"""Another process of the service, as far as the outbox goes: an
:class:`OutboxConversationStore` on a shared DATA_DIR, driven line by line.

Run as a script (``python tests/outbox_process.py DATA_DIR [DATABASE_URL]``), it opens
the outbox over a :class:`Switch` (down at first) in front of the SQL store on
DATABASE_URL, or an in-memory one, prints ``{"path": ..., "pending": ...}`` and then
answers one JSON command per line of stdin with one JSON line on stdout (see
:func:`_command`). :class:`OutboxProcess` is the test's end of it; kill it with SIGKILL
to see what a crash leaves behind.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine

from adapters.memory.conversations import InMemoryConversationStore
from adapters.outbox import OutboxConversationStore
from adapters.proxy import CONVERSATION_STORE, PortProxy
from adapters.sql.conversations import SqlConversationStore
from adapters.sql.engine import create_engine_for
from rag_core.conversations import Message, Role
from rag_core.errors import DependencyUnavailable
from rag_core.ports import ConversationStore

T = TypeVar("T")
T0 = datetime(2025, 3, 1, tzinfo=UTC)


class SwitchCalls(PortProxy[ConversationStore]):
    """A ConversationStore with a switch: while ``down`` every call raises
    DependencyUnavailable (a database outage). ``appended``: the message ids of every
    batch that reached the store, in order."""

    def __init__(self, inner: ConversationStore) -> None:
        super().__init__(inner)
        self.down = True
        self.appended: list[list[str]] = []

    async def _call(self, name: str, fn: Callable[[], Awaitable[T]]) -> T:
        if self.down:
            raise DependencyUnavailable("database", "down")
        return await fn()

    async def append(self, session_id: str, messages: Sequence[Message]) -> None:
        if self.down:
            raise DependencyUnavailable("database", "down")
        await self._inner.append(session_id, messages)
        self.appended.append([m.id for m in messages])


class Switch(SwitchCalls, port=CONVERSATION_STORE):
    """:class:`SwitchCalls` with every other ConversationStore method generated."""


def turn(session_id: str, n: int) -> list[Message]:
    """Turn ``n`` of a session: a question and its answer, with ids of their own."""
    return [
        Message(f"{session_id}-q{n}", session_id, Role.USER, f"question {n}", T0),
        Message(f"{session_id}-a{n}", session_id, Role.ASSISTANT, f"answer {n}", T0),
    ]


class OutboxProcess:
    """The test's end of a script process (see the module docstring)."""

    def __init__(self, data_dir: Path, database_url: str | None = None) -> None:
        args = [sys.executable, __file__, str(data_dir), *([database_url] if database_url else [])]
        self._process = subprocess.Popen(
            args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).parent)},
        )
        opened = self._read()
        self.path = Path(opened["path"])
        self.pending: int = opened["pending"]

    def append(self, session_id: str, n: int) -> int:
        """Queue turn ``n`` of the session (the database being down); returns pending."""
        pending: int = self.send(op="append", session=session_id, n=n)["pending"]
        return pending

    def send(self, **command: Any) -> dict[str, Any]:
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps(command) + "\n")
        self._process.stdin.flush()
        return self._read()

    def close(self) -> None:
        """Close the store and let the process end."""
        self.send(op="close")
        assert self._process.wait(timeout=30) == 0
        self._close_pipes()

    def kill(self) -> None:
        """SIGKILL: no close, no flush, nothing released but by the OS (idempotent)."""
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGKILL)
        self._process.wait(timeout=30)
        self._close_pipes()

    def _close_pipes(self) -> None:
        for pipe in (self._process.stdin, self._process.stdout):
            if pipe is not None:
                pipe.close()

    def _read(self) -> dict[str, Any]:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError(f"the outbox process ended (exit code {self._process.wait(30)})")
        answer: dict[str, Any] = json.loads(line)
        return answer


async def _serve(data_dir: Path, database_url: str | None) -> None:
    engine: Engine | None = None
    base: ConversationStore
    if database_url is None:
        base = InMemoryConversationStore()
    else:
        engine = create_engine_for(database_url)
        base = SqlConversationStore(engine, dependency="postgres")
    inner = Switch(base)
    outbox = OutboxConversationStore(inner, data_dir / "outbox.db", dependency="database")
    _answer({"path": str(outbox.path), "pending": outbox.pending()})
    while line := await asyncio.to_thread(sys.stdin.readline):
        command = json.loads(line)
        if command["op"] == "close":
            await outbox.close()
            if engine is not None:
                engine.dispose()
            _answer({})
            return
        _answer(await _command(command, outbox, inner))


async def _command(
    command: dict[str, Any], outbox: OutboxConversationStore, inner: Switch
) -> dict[str, Any]:
    """``append`` (session, n): queue a turn; ``up``/``down``: the database;
    ``adopt``; ``flush``; each answers the pending and parked counts, ``flush`` also
    what reached the store."""
    answer: dict[str, Any] = {}
    op = command["op"]
    if op == "append":
        await outbox.append(command["session"], turn(command["session"], command["n"]))
    elif op in ("up", "down"):
        inner.down = op == "down"
    elif op == "adopt":
        answer["adopted"] = await outbox.adopt()
    elif op == "flush":
        answer["flushed"] = await outbox.flush()
        answer["appended"] = inner.appended
    else:
        raise ValueError(f"unknown command {op!r}")
    return {**answer, "pending": outbox.pending(), "parked": outbox.parked()}


def _answer(answer: dict[str, Any]) -> None:
    print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    asyncio.run(_serve(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else None))
