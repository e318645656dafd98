"""One shard's life on its folder: locked at open, loaded or created on first use, closed once."""

from __future__ import annotations

import shutil
from pathlib import Path

from qdrant_edge import EdgeShard

from adapters.qdrant_edge import config
from adapters.qdrant_edge.folder_lock import FolderLock
from rag_core.errors import DependencyUnavailable, IndexMismatch


class ShardHolder:
    """Holds the folder lock and, once loaded, the engine's shard.

    :meth:`loaded` and :meth:`close` call the engine: run them on the writer
    thread, so that loading, creating and closing never race each other.
    """

    def __init__(self, shard_dir: Path, collection: str, lock: FolderLock) -> None:
        self.dir = shard_dir
        self.collection = collection
        self._lock = lock
        self._shard: EdgeShard | None = None
        self._closed = False

    @classmethod
    def acquire(cls, path: Path, collection: str) -> ShardHolder:
        """Lock ``path/collection`` (IndexLocked if held); the shard itself is not loaded yet."""
        shard_dir = path / collection
        return cls(
            shard_dir, collection, FolderLock.acquire(path / f"{collection}.lock", shard_dir)
        )

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def current(self) -> EdgeShard | None:
        """The shard if loaded (no engine call)."""
        self.check_open()
        return self._shard

    def check_open(self) -> None:
        if self._closed:
            raise DependencyUnavailable("qdrant", "the index is closed")

    def loaded(self, *, create: bool = False, dense: int | None = None) -> EdgeShard:
        """The shard, loaded on first use; a missing one is created with ``dense``
        dimensions if ``create`` (prepare), else IndexMismatch."""
        self.check_open()
        if self._shard is None:
            if config.shard_exists(self.dir):
                self._shard = EdgeShard.load(str(self.dir))
            elif not create:
                raise IndexMismatch(
                    f"Qdrant Edge collection '{self.collection}' not found in {self.dir}; "
                    "prepare() creates it"
                )
            else:
                self._shard = EdgeShard.create(str(self.dir), config.edge_config(dense))
        return self._shard

    def drop(self) -> None:
        """Close the shard (if loaded) and delete its folder; the lock stays held."""
        self.check_open()
        if self._shard is not None:
            self._shard.close()
            self._shard = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def close(self) -> None:
        """Flush and close the shard and release the folder; idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._shard is not None:
                self._shard.close()
        finally:
            self._shard = None
            self._lock.release()
