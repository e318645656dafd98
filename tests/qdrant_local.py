"""qdrant-client's local mode on a folder, for tests only.

The service never opens one (its embedded index is Qdrant Edge, ``adapters.qdrant_edge``),
but the VectorIndex contract also runs :class:`~adapters.qdrant_index.QdrantIndex`
on a persisted local-mode client, so that mode's translation of a held folder lives
here rather than in the adapter.
"""

from __future__ import annotations

from pathlib import Path

from qdrant_client import AsyncQdrantClient
from qdrant_client.local.async_qdrant_local import AsyncQdrantLocal

from adapters.index_lock import IndexLocked
from adapters.qdrant_index import QdrantIndex
from rag_core.errors import DependencyUnavailable


def open_local(path: Path, collection: str) -> QdrantIndex:
    """Local mode persisted in ``path``; raises IndexLocked if another client holds it."""
    try:
        client = AsyncQdrantClient(path=str(path))
    except RuntimeError as exc:
        if "already accessed by another instance" not in str(exc):
            raise
        _close_half_open(exc)
        raise IndexLocked(path) from exc
    except OSError as exc:
        raise DependencyUnavailable("qdrant", type(exc).__name__) from exc
    return QdrantIndex(client, collection)


def _close_half_open(exc: RuntimeError) -> None:
    """Close what qdrant-client left open when it found the folder locked.

    It opens the lock file and every collection's SQLite file before trying the
    lock, and raises without closing them; left to the garbage collector they
    would leak descriptors and emit ResourceWarning (an error in this suite). The
    half-built client is only reachable as ``self`` in the traceback's frames.
    """
    traceback = exc.__traceback__
    while traceback is not None:
        candidate = traceback.tb_frame.f_locals.get("self")
        if isinstance(candidate, AsyncQdrantLocal):
            for collection in candidate.collections.values():
                collection.close()
            if candidate._flock_file is not None:
                candidate._flock_file.close()
        traceback = traceback.tb_next
