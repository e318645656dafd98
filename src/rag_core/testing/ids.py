"""Predictable ids: the ``IdGenerator`` port for tests."""

from __future__ import annotations


class SequentialIds:
    """Implements :class:`rag_core.ports.IdGenerator`: ``id-000001``, ``id-000002``, ...
    (``prefix`` and the zero-padded ``width`` of the number are settable)."""

    def __init__(self, prefix: str = "id-", width: int = 6) -> None:
        self.prefix = prefix
        self.width = width
        self.issued = 0

    def new_id(self) -> str:
        self.issued += 1
        return f"{self.prefix}{self.issued:0{self.width}d}"
