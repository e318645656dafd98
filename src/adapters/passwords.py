"""Password hashing with bcrypt, pre-hashed with HMAC-SHA256.

bcrypt reads at most 72 bytes of a password and stops at a NUL byte, so plain bcrypt
lets different passwords verify alike (every password sharing a 72-byte prefix, or
``"\\0" * 8`` and ``"\\0"``). New hashes are therefore bcrypt of
``base64(HMAC-SHA256(key=the bcrypt salt, message=password))`` (44 ASCII characters,
no NUL: the scheme of passlib's ``bcrypt_sha256`` v2), stored with the marker
:data:`PREHASHED` in front of the bcrypt string. Keying the HMAC with the per-hash salt
means a leaked table of unsalted SHA-256 digests is no shortcut.

Hashes without the marker are plain bcrypt, as earlier versions stored them: they still
verify (a migration path: nothing to convert), except for passwords that plain bcrypt
cannot tell apart from others (a NUL, or over 72 bytes), which never match them.

Passwords are NFKC-normalised first, so the same visible password typed on different
keyboards hashes alike (NIST SP 800-63B); changing the normalisation would invalidate
stored hashes. New passwords found in the list of the most common ones (shipped as
``common_passwords.txt``, compared case-insensitively) are refused with InvalidInput.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import unicodedata
from importlib import resources

import bcrypt

from rag_core.errors import InvalidInput

DEFAULT_COST = 12
MIN_COST = 4  # bcrypt's own minimum; only tests should go this low
PREHASHED = "$rag-sha256"  # followed by the bcrypt string, e.g. "$rag-sha256$2b$12$..."
MAX_BYTES = 4096  # what this hasher takes at all (the account rules allow far less)
_BCRYPT_LIMIT = 72
_SALT_LENGTH = 29  # "$2b$12$" and 22 characters of salt


@functools.cache
def common_passwords() -> frozenset[str]:
    """The shipped list of the most common passwords, case-folded."""
    text = resources.files(__package__).joinpath("common_passwords.txt").read_text("utf-8")
    return frozenset(
        line.strip().casefold()
        for line in text.splitlines()
        if line.strip() and not line.startswith("#")
    )


class BcryptHasher:
    """Implements :class:`rag_core.accounts.PasswordHasher`.

    ``cost`` is bcrypt's log2 work factor (4..31; 12 takes about a quarter of a second).
    The hashing runs in a worker thread so the event loop keeps serving.
    """

    def __init__(self, cost: int = DEFAULT_COST) -> None:
        if not MIN_COST <= cost <= 31:
            raise ValueError(f"bcrypt cost must be between {MIN_COST} and 31")
        self._cost = cost

    async def hash(self, password: str) -> str:
        """A new hash (pre-hashed, marked); InvalidInput for a common or oversized password."""
        secret = _encode(password)
        if len(secret) > MAX_BYTES:
            raise InvalidInput(f"password must be at most {MAX_BYTES} bytes (UTF-8)")
        if unicodedata.normalize("NFKC", password).casefold() in common_passwords():
            raise InvalidInput(
                "password is too common: it is on the list of the most used passwords"
            )
        salt = bcrypt.gensalt(self._cost)
        hashed = await asyncio.to_thread(bcrypt.hashpw, _prehash(secret, salt), salt)
        return PREHASHED + hashed.decode("ascii")

    async def verify(self, password: str, password_hash: str) -> bool:
        """Whether ``password`` is the one behind ``password_hash`` (new or plain bcrypt);
        False, never an error, for a malformed hash."""
        secret = _encode(password)
        try:
            stored = password_hash.encode("ascii")
        except UnicodeEncodeError:
            return False
        marker = PREHASHED.encode("ascii")
        if stored.startswith(marker):
            inner = stored[len(marker) :]
            if len(secret) > MAX_BYTES or len(inner) < _SALT_LENGTH:
                return False
            candidate = _prehash(secret, inner[:_SALT_LENGTH])
        else:  # plain bcrypt: blind past a NUL and after 72 bytes
            if len(secret) > _BCRYPT_LIMIT or b"\x00" in secret:
                return False
            inner, candidate = stored, secret
        try:
            return await asyncio.to_thread(bcrypt.checkpw, candidate, inner)
        except ValueError:  # a malformed stored hash
            return False


def _prehash(secret: bytes, salt: bytes) -> bytes:
    return base64.b64encode(hmac.new(salt, secret, hashlib.sha256).digest())


def _encode(password: str) -> bytes:
    return unicodedata.normalize("NFKC", password).encode("utf-8", "surrogatepass")
