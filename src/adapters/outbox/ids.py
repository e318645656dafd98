"""Session ids that the outbox can choose when it replays a session created locally."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

from rag_core.ports import IdGenerator

_preset: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "outbox_preset_id", default=None
)


class PresetIds:
    """An :class:`~rag_core.ports.IdGenerator` that hands out ``base``'s ids, except
    inside :meth:`preset`, where the next id is the given one.

    No longer needed by the outbox, which replays a session created locally with
    ``ConversationStore.create_session_with_id``; kept for code that still passes one
    (it is an ordinary IdGenerator outside :meth:`preset`). The preset is a context
    variable, so it applies only to the presetting task, never to a concurrent request.
    """

    def __init__(self, base: IdGenerator) -> None:
        self._base = base

    def new_id(self) -> str:
        preset = _preset.get()
        if preset is None:
            return self._base.new_id()
        _preset.set(None)  # one id per preset: a second draw is a fresh id again
        return preset

    @contextmanager
    def preset(self, session_id: str) -> Iterator[None]:
        token = _preset.set(session_id)
        try:
            yield
        finally:
            _preset.reset(token)
