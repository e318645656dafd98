"""BcryptHasher: salted hashes, the 72-byte limit, and no errors on bad input."""

from __future__ import annotations

import pytest

from adapters.passwords import BcryptHasher
from rag_core.errors import InvalidInput


@pytest.fixture
def hasher() -> BcryptHasher:
    return BcryptHasher(cost=4)


async def test_hash_then_verify(hasher: BcryptHasher) -> None:
    hashed = await hasher.hash("correct horse")
    assert hashed.startswith("$2b$04$")
    assert hashed != await hasher.hash("correct horse")  # salted
    assert await hasher.verify("correct horse", hashed)
    assert not await hasher.verify("correct horsE", hashed)
    assert not await hasher.verify("correct horse\x00", hashed)


async def test_visually_equal_passwords_match(hasher: BcryptHasher) -> None:
    composed, decomposed = "caf\u00e9 au lait", "cafe\u0301 au lait"
    assert await hasher.verify(decomposed, await hasher.hash(composed))


async def test_72_bytes_is_the_limit(hasher: BcryptHasher) -> None:
    at_limit = "é" * 36  # 72 bytes
    assert await hasher.verify(at_limit, await hasher.hash(at_limit))
    with pytest.raises(InvalidInput):
        await hasher.hash(at_limit + "x")
    # No truncation: a longer password sharing the first 72 bytes never matches.
    assert not await hasher.verify(at_limit + "x", await hasher.hash(at_limit))


@pytest.mark.parametrize("stored", ["", "not a hash", "$2b$04$short", "ünïcode"])
async def test_a_malformed_stored_hash_never_matches(hasher: BcryptHasher, stored: str) -> None:
    assert not await hasher.verify("correct horse", stored)


def test_the_cost_is_bounded() -> None:
    with pytest.raises(ValueError):
        BcryptHasher(cost=3)
    with pytest.raises(ValueError):
        BcryptHasher(cost=32)
