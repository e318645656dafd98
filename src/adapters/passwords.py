"""Password hashing with bcrypt.

bcrypt reads at most 72 bytes of a password. Rather than truncating silently (every
longer password sharing a 72-byte prefix would match) or pre-hashing (a format of our
own, and a fast hash in front of the slow one), passwords over 72 bytes after NFKC
normalisation are refused with InvalidInput when hashed and never match when checked.
NFKC makes the same visible password typed on different keyboards hash alike
(NIST SP 800-63B); changing the normalisation would invalidate stored hashes.
"""

from __future__ import annotations

import asyncio
import unicodedata

import bcrypt

from rag_core.account_input import MAX_PASSWORD_BYTES
from rag_core.errors import InvalidInput

DEFAULT_COST = 12
MIN_COST = 4  # bcrypt's own minimum; only tests should go this low


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
        secret = _encode(password)
        if len(secret) > MAX_PASSWORD_BYTES:
            raise InvalidInput(f"password must be at most {MAX_PASSWORD_BYTES} bytes (UTF-8)")
        hashed = await asyncio.to_thread(bcrypt.hashpw, secret, bcrypt.gensalt(self._cost))
        return hashed.decode("ascii")

    async def verify(self, password: str, password_hash: str) -> bool:
        secret = _encode(password)
        if len(secret) > MAX_PASSWORD_BYTES:
            return False
        try:
            expected = password_hash.encode("ascii")
        except UnicodeEncodeError:
            return False
        try:
            return await asyncio.to_thread(bcrypt.checkpw, secret, expected)
        except ValueError:  # a malformed stored hash
            return False


def _encode(password: str) -> bytes:
    return unicodedata.normalize("NFKC", password).encode("utf-8", "surrogatepass")
