"""JwtAuthenticator: issued tokens verify, forged or stale ones never do."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from adapters.memory.accounts import InMemoryAccountStore
from adapters.passwords import BcryptHasher
from adapters.system import SystemClock, UuidGenerator
from adapters.tokens import DEFAULT_AUDIENCE, DEFAULT_ISSUER, JwtAuthenticator
from rag_core.accounts import AccountService
from rag_core.errors import Unauthenticated
from rag_core.testing import FakeClock

SECRET = "s" * 32 + "-test-secret"
ISSUER = "https://rag.example"


@pytest.fixture
def auth() -> JwtAuthenticator:
    return JwtAuthenticator(SECRET, issuer=ISSUER)


def claims(**changes: Any) -> dict[str, Any]:
    now = int(datetime.now(UTC).timestamp())
    values: dict[str, Any] = {
        "sub": "user-1",
        "jti": "token-1",
        "iat": now,
        "exp": now + 600,
        "iss": ISSUER,
        "aud": DEFAULT_AUDIENCE,
    }
    values.update(changes)
    return {k: v for k, v in values.items() if v is not None}


def signed(payload: dict[str, Any], secret: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(payload, secret, algorithm=algorithm)


def b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_an_issued_token_verifies(auth: JwtAuthenticator) -> None:
    issued = auth.issue("user-1")
    verified = auth.verify(issued.value)
    assert verified.subject == "user-1"
    assert verified.token_id == issued.token_id
    assert verified.expires_at == issued.expires_at
    assert issued.expires_at.tzinfo is not None


def test_tokens_carry_every_claim_pinned_to_hs256(auth: JwtAuthenticator) -> None:
    issued = auth.issue("user-1")
    assert jwt.get_unverified_header(issued.value)["alg"] == "HS256"
    payload = jwt.decode(issued.value, options={"verify_signature": False})
    assert set(payload) == {"sub", "jti", "iat", "exp", "iss", "aud", "auth_time"}
    assert payload["iss"] == ISSUER and payload["aud"] == DEFAULT_AUDIENCE
    assert payload["exp"] - payload["iat"] == 3600
    assert payload["auth_time"] == payload["iat"]
    assert auth.issue("user-1").token_id != issued.token_id


def test_the_default_issuer() -> None:
    issued = JwtAuthenticator(SECRET).issue("user-1")
    assert jwt.decode(issued.value, options={"verify_signature": False})["iss"] == DEFAULT_ISSUER


def test_a_token_made_with_our_own_encoding_verifies(auth: JwtAuthenticator) -> None:
    # Guards the forgery tests below: they fail for the forgery, not the harness.
    assert auth.verify(signed(claims())).subject == "user-1"


def test_another_secret_is_refused(auth: JwtAuthenticator) -> None:
    with pytest.raises(Unauthenticated):
        auth.verify(signed(claims(), secret="another secret of thirty-two bytes!"))
    other = JwtAuthenticator("o" * 40, issuer=ISSUER)
    with pytest.raises(Unauthenticated):
        auth.verify(other.issue("user-1").value)


def test_alg_none_is_refused(auth: JwtAuthenticator) -> None:
    for header in ({"alg": "none", "typ": "JWT"}, {"alg": "None"}, {"alg": "NONE"}):
        unsigned = f"{b64(header)}.{b64(claims())}."
        with pytest.raises(Unauthenticated):
            auth.verify(unsigned)


@pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
def test_other_algorithms_are_refused_even_with_the_secret(algorithm: str) -> None:
    secret = "k" * 64  # long enough for HS512, so PyJWT signs without a warning
    auth = JwtAuthenticator(secret, issuer=ISSUER)
    assert auth.verify(signed(claims(), secret=secret)).subject == "user-1"
    with pytest.raises(Unauthenticated):
        auth.verify(signed(claims(), secret=secret, algorithm=algorithm))


def test_an_expired_token_is_refused() -> None:
    stale = JwtAuthenticator(
        SECRET, ttl=timedelta(hours=1), clock=FakeClock(datetime.now(UTC) - timedelta(hours=2))
    )
    token = stale.issue("user-1").value
    with pytest.raises(Unauthenticated):
        JwtAuthenticator(SECRET).verify(token)
    with pytest.raises(Unauthenticated):
        stale.verify(token)


def test_a_token_issued_in_the_future_is_refused(auth: JwtAuthenticator) -> None:
    later = int(datetime.now(UTC).timestamp()) + 3600
    with pytest.raises(Unauthenticated):
        auth.verify(signed(claims(iat=later, exp=later + 600)))


def test_a_tampered_payload_or_signature_is_refused(auth: JwtAuthenticator) -> None:
    header, payload, signature = auth.issue("user-1").value.split(".")
    forged = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged["sub"] = "admin"
    with pytest.raises(Unauthenticated):
        auth.verify(f"{header}.{b64(forged)}.{signature}")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    with pytest.raises(Unauthenticated):
        auth.verify(f"{header}.{payload}.{flipped}")


@pytest.mark.parametrize("missing", ["exp", "iat", "iss", "aud", "sub", "jti"])
def test_every_claim_is_required(auth: JwtAuthenticator, missing: str) -> None:
    with pytest.raises(Unauthenticated):
        auth.verify(signed(claims(**{missing: None})))


@pytest.mark.parametrize(
    "changes",
    [
        {"aud": "another-service"},
        {"aud": [DEFAULT_AUDIENCE, "another-service"]},
        {"iss": "https://evil.example"},
        {"sub": ""},
        {"jti": ""},
        {"sub": 42},
        {"exp": 10**20},
        {"exp": float(2**40)},
        {"exp": "tomorrow"},
    ],
)
def test_wrong_or_malformed_claims_are_refused(
    auth: JwtAuthenticator, changes: dict[str, Any]
) -> None:
    with pytest.raises(Unauthenticated):
        auth.verify(signed(claims(**changes)))


def test_another_issuer_setting_refuses_our_tokens(auth: JwtAuthenticator) -> None:
    with pytest.raises(Unauthenticated):
        JwtAuthenticator(SECRET, issuer="https://other.example").verify(auth.issue("u").value)


@pytest.mark.parametrize(
    "garbage",
    ["", "abc", "a.b.c", "a.b", "....", "ünï.cö.de", "Bearer x", "x" * 5000, "\x00.\x00.\x00"],
)
def test_garbage_is_unauthenticated(auth: JwtAuthenticator, garbage: str) -> None:
    with pytest.raises(Unauthenticated):
        auth.verify(garbage)


def test_construction_refuses_weak_settings() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        JwtAuthenticator("too short")
    with pytest.raises(ValueError, match="positive"):
        JwtAuthenticator(SECRET, ttl=timedelta(0))


async def test_a_token_stops_working_after_sign_out() -> None:
    service = AccountService(
        InMemoryAccountStore(),
        JwtAuthenticator(SECRET, issuer=ISSUER),
        BcryptHasher(cost=4),
        SystemClock(),
        UuidGenerator(),
    )
    signed_up = await service.sign_up("ada@example.com", "Ada", "correct horse")
    principal = await service.authenticate(signed_up.token.value)
    await service.sign_out(principal)
    with pytest.raises(Unauthenticated):
        await service.authenticate(signed_up.token.value)
    again = await service.sign_in("ada@example.com", "correct horse")
    assert (await service.authenticate(again.token.value)).user_id == principal.user_id
