"""An in-memory ContentCache: the same contract as the SQL adapter, for tests and
for projects that embed the core. Lost when the process ends."""

from __future__ import annotations

from rag_core.storable import unstorable
from rag_core.transforms import check_cache_key


class InMemoryContentCache:
    """Implements :class:`rag_core.transforms.ContentCache` as
    :class:`adapters.sql.content_cache.SqlContentCache` does: the first value stored
    under a key stays, a bad key raises InvalidInput, a value no database can hold (a
    NUL character or a lone surrogate) is not stored. Unbounded; never raises DependencyUnavailable.
    """

    def __init__(self) -> None:
        self._values: dict[str, str] = {}

    async def get(self, key: str) -> str | None:
        check_cache_key(key)
        return self._values.get(key)

    async def put(self, key: str, value: str) -> None:
        check_cache_key(key)
        if unstorable(value) is None:
            self._values.setdefault(key, value)

    async def probe(self) -> None:
        return None

    def __len__(self) -> int:
        return len(self._values)
