"""The one check of storable text (rag_core.storable) and the content caches built on
it: both skip a value no database can hold, a lone surrogate as well as a NUL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine

from adapters.memory.content_cache import InMemoryContentCache
from adapters.sql.content_cache import SqlContentCache
from adapters.sql.engine import prepare_schema
from rag_core.storable import Unstorable, unstorable
from rag_core.transforms import ContentCache


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("plain «θ» 🤖", None),
        ("", None),
        ("a\x00b", Unstorable.NUL),
        ("lone \udc80", Unstorable.LONE_SURROGATE),
        ("\ud800 and \x00", Unstorable.NUL),
    ],
)
def test_unstorable_names_the_problem(text: str, problem: Unstorable | None) -> None:
    assert unstorable(text) is problem


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
@pytest.mark.parametrize("value", ["before\x00after", "lone \ud800 surrogate"])
async def test_caches_skip_a_value_no_database_can_hold(
    kind: str, value: str, tmp_path: Path
) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'cache.db'}")
    prepare_schema(engine)
    cache: ContentCache = InMemoryContentCache() if kind == "memory" else SqlContentCache(engine)
    await cache.put("k1", value)
    assert await cache.get("k1") is None
    await cache.put("k1", "stored")
    assert await cache.get("k1") == "stored"
    engine.dispose()
