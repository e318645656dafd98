"""Bearer tokens as JSON Web Tokens (HS256, PyJWT), signed with ``BETTER_AUTH_SECRET``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import jwt

from adapters.system import SystemClock
from rag_core.accounts import BAD_TOKEN, IssuedToken, TokenClaims
from rag_core.errors import Unauthenticated
from rag_core.ports import Clock

ALGORITHM = "HS256"
DEFAULT_ISSUER = "rag-backend"
DEFAULT_AUDIENCE = "rag-backend"
DEFAULT_TTL = timedelta(hours=1)
"""An hour: the site signs out by forgetting the token, so its life is how long a
token outlives the reader (renewed through get-session, see AccountService.renew)."""
MIN_SECRET_BYTES = 32  # RFC 7518 §3.2: an HS256 key at least as long as the hash
MAX_TOKEN_CHARS = 4_096
_REQUIRED = ["exp", "iat", "iss", "aud", "sub", "jti"]


class JwtAuthenticator:
    """Implements :class:`rag_core.accounts.Authenticator`.

    Tokens carry ``sub`` (the user id), ``jti`` (a fresh UUID, what sign-out
    revokes), ``iat``, ``exp`` (``ttl`` after issue), ``iss`` (``issuer``, e.g.
    ``BETTER_AUTH_URL``), ``aud`` and ``auth_time`` (when the sign-in that the token
    descends from happened: its own issue time, or the one a renewal carries over).
    Verification pins HS256 (so ``alg: none`` and every other algorithm are refused),
    checks the signature, requires the first six claims, and checks expiry, issue
    time, issuer and audience; any failure raises ``Unauthenticated`` with one
    message. A token without ``auth_time`` (issued before renewals) dates its
    sign-in from its ``iat``. ``clock`` dates the tokens it issues; expiry is checked
    against the system clock, as PyJWT does.

    Raises ``ValueError`` for a secret shorter than 32 bytes or a non-positive ``ttl``.
    """

    def __init__(
        self,
        secret: str,
        *,
        issuer: str | None = None,
        audience: str = DEFAULT_AUDIENCE,
        ttl: timedelta = DEFAULT_TTL,
        clock: Clock | None = None,
    ) -> None:
        if len(secret.encode()) < MIN_SECRET_BYTES:
            raise ValueError(
                f"the token secret must be at least {MIN_SECRET_BYTES} bytes "
                "(e.g. `openssl rand -base64 32`)"
            )
        if ttl <= timedelta(0):
            raise ValueError("the token lifetime must be positive")
        self._secret = secret
        self._issuer = issuer or DEFAULT_ISSUER
        self._audience = audience
        self._ttl = ttl
        self._clock: Clock = clock or SystemClock()

    def issue(self, subject: str, *, authenticated_at: datetime | None = None) -> IssuedToken:
        # Whole seconds, as in the token, so expires_at is exactly what verify reads.
        issued_at = self._clock.now().astimezone(UTC).replace(microsecond=0)
        expires_at = issued_at + self._ttl
        token_id = str(uuid.uuid4())
        signed_in = authenticated_at or issued_at
        claims = {
            "sub": subject,
            "jti": token_id,
            "iat": int(issued_at.timestamp()),
            "exp": int(expires_at.timestamp()),
            "iss": self._issuer,
            "aud": self._audience,
            "auth_time": int(signed_in.timestamp()),
        }
        value = jwt.encode(claims, self._secret, algorithm=ALGORITHM)
        return IssuedToken(value=value, token_id=token_id, expires_at=expires_at)

    def verify(self, token: str) -> TokenClaims:
        if not token or len(token) > MAX_TOKEN_CHARS:
            raise Unauthenticated(BAD_TOKEN)
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                audience=self._audience,
                issuer=self._issuer,
                options={"require": _REQUIRED, "strict_aud": True},
            )
        except jwt.PyJWTError:
            raise Unauthenticated(BAD_TOKEN) from None
        subject, token_id, expires = claims["sub"], claims["jti"], claims["exp"]
        issued, signed_in = claims["iat"], claims.get("auth_time", claims["iat"])
        # PyJWT accepts any string (even empty) and any number for these claims.
        if (
            not subject
            or not token_id
            or any(type(t) is not int for t in (expires, issued, signed_in))
        ):
            raise Unauthenticated(BAD_TOKEN)
        try:
            expires_at, issued_at, authenticated_at = (
                datetime.fromtimestamp(t, UTC) for t in (expires, issued, signed_in)
            )
        except (OverflowError, OSError, ValueError):
            raise Unauthenticated(BAD_TOKEN) from None
        return TokenClaims(
            subject=subject,
            token_id=token_id,
            expires_at=expires_at,
            issued_at=issued_at,
            authenticated_at=authenticated_at,
        )
