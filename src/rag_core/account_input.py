"""What account input is acceptable: the email, name, password and profile rules
shared by the use case and the HTTP schemas. Every check raises InvalidInput."""

from __future__ import annotations

import unicodedata

from rag_core.errors import InvalidInput
from rag_core.storable import Unstorable, unstorable

MAX_EMAIL = 254
MAX_NAME = 100
MIN_PASSWORD = 8
# The accepted length. The hasher pre-hashes (adapters.passwords), so it is not bcrypt's
# 72-byte limit any more; raising it would change the documented sign-up bound.
MAX_PASSWORD_BYTES = 72
MAX_PROFILE_FIELD = 2_000


def normalise_email(email: str) -> str:
    """Stripped and case-folded; raises InvalidInput unless it looks like an address
    (one ``@``, a dotted domain, no spaces or control characters, 254 characters at most)."""
    address = email.strip().casefold()
    local, _, domain = address.partition("@")
    if (
        address.count("@") != 1
        or not local
        or len(local) > 64
        or len(address) > MAX_EMAIL
        or "." not in domain.strip(".")
        or any(c.isspace() or not c.isprintable() for c in address)
    ):
        raise InvalidInput("email is not a valid address")
    return address


def check_password(password: str) -> None:
    """At least 8 characters and at most 72 bytes of UTF-8, no control characters
    (Unicode category Cc: NUL, tab, newline, DEL, C1), not only whitespace.

    The hasher refuses the most common passwords too, with the same InvalidInput.
    """
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"password must have at least {MIN_PASSWORD} characters")
    if len(_utf8(password, "password")) > MAX_PASSWORD_BYTES:
        raise InvalidInput(f"password must be at most {MAX_PASSWORD_BYTES} bytes (UTF-8)")
    if any(unicodedata.category(c) == "Cc" for c in password):
        raise InvalidInput(
            "password must not contain control characters (such as NUL, tab or newline)"
        )
    if password.isspace():
        raise InvalidInput("password must not be only spaces")


def check_name(name: str) -> str:
    """The name stripped: 1 to 100 printable characters (no control characters)."""
    name = name.strip()
    if not 1 <= len(name) <= MAX_NAME or not name.isprintable():
        raise InvalidInput(f"name must have 1 to {MAX_NAME} printable characters")
    return name


def check_profile_text(value: str) -> None:
    """At most 2000 characters of storable text (no NUL, no lone surrogate)."""
    if len(value) > MAX_PROFILE_FIELD:
        raise InvalidInput(f"profile fields are limited to {MAX_PROFILE_FIELD} characters")
    problem = unstorable(value)
    if problem is Unstorable.NUL:
        raise InvalidInput("profile fields cannot contain NUL characters")
    if problem is Unstorable.LONE_SURROGATE:
        raise InvalidInput("profile field is not valid Unicode text")


def _utf8(text: str, what: str) -> bytes:
    # JSON can carry lone surrogates, which no database (nor bcrypt) can take.
    try:
        return text.encode()
    except UnicodeEncodeError:
        raise InvalidInput(f"{what} is not valid Unicode text") from None
