"""The error for an embedded index folder that another process holds open."""

from __future__ import annotations

from pathlib import Path

from rag_core.errors import DependencyUnavailable


class IndexLocked(DependencyUnavailable):
    """Another process (or client) holds the embedded index folder; it is single-writer."""

    def __init__(self, path: Path) -> None:
        super().__init__("qdrant", f"another process holds the local index folder {path}")
        self.path = path
