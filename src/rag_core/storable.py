"""What text a store can hold: the one check of NUL characters and lone surrogates,
shared by the HTTP schemas, the account rules and the content caches."""

from __future__ import annotations

import enum


class Unstorable(enum.StrEnum):
    """Why no database can hold a text."""

    NUL = "NUL characters"  # PostgreSQL text cannot hold U+0000
    LONE_SURROGATE = "lone surrogates"  # not encodable as UTF-8 (JSON can carry them)


def unstorable(text: str) -> Unstorable | None:
    """Why ``text`` cannot be stored, or None when it can; a NUL character is reported
    before a lone surrogate."""
    if "\x00" in text:
        return Unstorable.NUL
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return Unstorable.LONE_SURROGATE
    return None
