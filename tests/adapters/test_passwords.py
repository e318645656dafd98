"""BcryptHasher: salted hashes pre-hashed with HMAC-SHA256 (no 72-byte truncation, no NUL
truncation), plain bcrypt hashes of earlier versions still verify, the common passwords
are refused, and no errors on bad input."""

from __future__ import annotations

import base64
import hashlib
import hmac
import tomllib
import unicodedata
from pathlib import Path

import bcrypt
import pytest

from adapters.passwords import PREHASHED, BcryptHasher, common_passwords
from rag_core.errors import InvalidInput

ROOT = Path(__file__).parents[2]


@pytest.fixture
def hasher() -> BcryptHasher:
    return BcryptHasher(cost=4)


def legacy_hash(password: str) -> str:
    """A hash as earlier versions stored it: plain bcrypt of the NFKC-normalised password."""
    secret = unicodedata.normalize("NFKC", password).encode()
    return bcrypt.hashpw(secret, bcrypt.gensalt(4)).decode()


async def test_hash_then_verify(hasher: BcryptHasher) -> None:
    hashed = await hasher.hash("correct horse")
    assert hashed.startswith(PREHASHED + "$2b$04$")
    assert hashed != await hasher.hash("correct horse")  # salted
    assert await hasher.verify("correct horse", hashed)
    assert not await hasher.verify("correct horsE", hashed)
    assert not await hasher.verify("correct horse\x00", hashed)


async def test_new_hashes_are_bcrypt_of_an_hmac_keyed_by_the_salt(hasher: BcryptHasher) -> None:
    hashed = await hasher.hash("correct horse")
    inner = hashed.removeprefix(PREHASHED).encode()
    salt = inner[:29]
    digest = hmac.new(salt, b"correct horse", hashlib.sha256).digest()
    assert bcrypt.checkpw(base64.b64encode(digest), inner)
    assert len(hashed) <= 255  # the stored column's width


async def test_visually_equal_passwords_match(hasher: BcryptHasher) -> None:
    composed, decomposed = "caf\u00e9 au lait", "cafe\u0301 au lait"
    assert await hasher.verify(decomposed, await hasher.hash(composed))


async def test_passwords_longer_than_72_bytes_are_not_truncated(hasher: BcryptHasher) -> None:
    at_limit = "é" * 36  # 72 bytes: all bcrypt itself would read
    longer = at_limit + "x"
    assert await hasher.verify(at_limit, await hasher.hash(at_limit))
    hashed = await hasher.hash(longer)
    assert await hasher.verify(longer, hashed)
    assert not await hasher.verify(at_limit, hashed)
    assert not await hasher.verify(at_limit + "y", hashed)
    assert not await hasher.verify(longer, await hasher.hash(at_limit))
    passphrase = "a long passphrase of many words, " * 8  # 264 bytes
    hashed = await hasher.hash(passphrase)
    assert await hasher.verify(passphrase, hashed)
    assert not await hasher.verify(passphrase[:-1] + "!", hashed)


async def test_a_nul_does_not_end_the_password(hasher: BcryptHasher) -> None:
    # bcrypt stops at a NUL byte: "\x00" * 8 and "\x00" were the same password.
    hashed = await hasher.hash("\x00" * 8)
    assert await hasher.verify("\x00" * 8, hashed)
    assert not await hasher.verify("\x00", hashed)
    assert not await hasher.verify("", hashed)
    hashed = await hasher.hash("abcdefgh\x00one")
    assert not await hasher.verify("abcdefgh\x00two", hashed)


async def test_plain_bcrypt_hashes_of_earlier_versions_still_verify(
    hasher: BcryptHasher,
) -> None:
    for stored in [legacy_hash("correct horse"), legacy_hash("caf\u00e9 au lait")]:
        assert not stored.startswith(PREHASHED)
    stored = legacy_hash("correct horse")
    assert await hasher.verify("correct horse", stored)
    assert not await hasher.verify("correct horsE", stored)
    assert await hasher.verify("cafe\u0301 au lait", legacy_hash("caf\u00e9 au lait"))
    for prefix in ["$2a$", "$2y$"]:
        assert await hasher.verify("correct horse", prefix + stored.removeprefix("$2b$"))


async def test_a_plain_bcrypt_hash_is_never_matched_by_a_truncated_password(
    hasher: BcryptHasher,
) -> None:
    # Earlier hashes cannot tell passwords apart after a NUL or past 72 bytes: such
    # passwords never match them (new hashes never had this ambiguity).
    stored = legacy_hash("\x00" * 8)
    assert not await hasher.verify("\x00", stored)
    assert not await hasher.verify("\x00" * 8, stored)
    at_limit = "é" * 36
    stored = legacy_hash(at_limit)
    assert await hasher.verify(at_limit, stored)
    assert not await hasher.verify(at_limit + "x", stored)


@pytest.mark.parametrize(
    "stored",
    ["", "not a hash", "$2b$04$short", "ünïcode", PREHASHED, PREHASHED + "$2b$04$short", "$2b"],
)
async def test_a_malformed_stored_hash_never_matches(hasher: BcryptHasher, stored: str) -> None:
    assert not await hasher.verify("correct horse", stored)


@pytest.mark.parametrize(
    "password", ["password", "12345678", "qwertyui", "Password1", "PASSWORD123", "iloveyou"]
)
async def test_the_most_common_passwords_are_refused(hasher: BcryptHasher, password: str) -> None:
    with pytest.raises(InvalidInput, match=r"^password is too common"):
        await hasher.hash(password)


async def test_an_uncommon_password_is_not_refused(hasher: BcryptHasher) -> None:
    assert await hasher.verify("violet tram at dusk", await hasher.hash("violet tram at dusk"))


async def test_a_common_password_still_verifies_against_an_existing_hash(
    hasher: BcryptHasher,
) -> None:
    # The list refuses new passwords; accounts that have one can still sign in.
    assert await hasher.verify("password1", legacy_hash("password1"))


def test_the_common_list_ships_with_the_package() -> None:
    common = common_passwords()
    assert 300 <= len(common) <= 2_000
    assert {"password", "12345678", "qwertyui", "iloveyou", "1q2w3e4r"} <= common
    assert all(word == word.casefold() and word.strip() == word and word for word in common)
    assert "correct horse battery" not in common  # the tests' own password
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]
    assert "common_passwords.txt" in package_data["adapters"]
    assert (ROOT / "src" / "adapters" / "common_passwords.txt").is_file()


def test_the_cost_is_bounded() -> None:
    with pytest.raises(ValueError):
        BcryptHasher(cost=3)
    with pytest.raises(ValueError):
        BcryptHasher(cost=32)
