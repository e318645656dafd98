"""The ContentCache contract, run against every adapter.

A subclass provides the ``cache`` fixture: an empty cache.
"""

from __future__ import annotations

import asyncio

import pytest

from rag_core.errors import InvalidInput
from rag_core.transforms import ContentCache, cache_key

KEY = cache_key("translate", "ur", "model", "A topic is a named bus.")
OTHER = cache_key("translate", "ur", "model", "A node is a process.")
URDU = "ٹاپک ایک named bus ہے۔ `ros2 topic list` 🤖"


class ContentCacheContract:
    @pytest.fixture
    def cache(self) -> ContentCache:
        raise NotImplementedError("a contract subclass provides cache")

    async def test_unknown_key_is_none(self, cache: ContentCache) -> None:
        assert await cache.get(KEY) is None

    async def test_put_then_get(self, cache: ContentCache) -> None:
        await cache.put(KEY, URDU)
        assert await cache.get(KEY) == URDU
        assert await cache.get(OTHER) is None

    async def test_values_round_trip_exactly(self, cache: ContentCache) -> None:
        values = ["", "  leading and trailing\n", "```py\nx = 1\n```\n" * 2_000, "\u200f‏ RTL"]
        keys = [cache_key("k", "t", "m", str(n)) for n in range(len(values))]
        for key, value in zip(keys, values, strict=True):
            await cache.put(key, value)
        assert [await cache.get(key) for key in keys] == values

    async def test_first_value_stays(self, cache: ContentCache) -> None:
        await cache.put(KEY, "first")
        await cache.put(KEY, "second")
        assert await cache.get(KEY) == "first"

    async def test_concurrent_writers_of_one_key_do_not_fail(self, cache: ContentCache) -> None:
        values = [f"value {n}" for n in range(12)]
        await asyncio.gather(*(cache.put(KEY, value) for value in values))
        assert await cache.get(KEY) in values

    async def test_concurrent_writers_of_many_keys(self, cache: ContentCache) -> None:
        keys = [cache_key("k", "t", "m", str(n)) for n in range(12)]
        await asyncio.gather(*(cache.put(key, key[:8]) for key in keys))
        assert [await cache.get(key) for key in keys] == [key[:8] for key in keys]

    async def test_a_value_holding_nul_is_not_stored(self, cache: ContentCache) -> None:
        await cache.put(KEY, "before\x00after")
        assert await cache.get(KEY) is None

    @pytest.mark.parametrize("key", ["", "k" * 65, "ключ", "line\nbreak", "nul\x00"])
    async def test_a_bad_key_is_invalid_input(self, cache: ContentCache, key: str) -> None:
        with pytest.raises(InvalidInput):
            await cache.get(key)
        with pytest.raises(InvalidInput):
            await cache.put(key, "value")

    async def test_a_64_character_key_is_accepted(self, cache: ContentCache) -> None:
        await cache.put("k" * 64, "value")
        assert await cache.get("k" * 64) == "value"

    async def test_probe(self, cache: ContentCache) -> None:
        await cache.probe()
