"""Access tokens live an hour and are renewed through `get-session` (issue 13, gap 5).

The textbook's site signs out by forgetting the token in the browser: it never calls
`/api/auth/sign-out`, so a token stays valid for its whole life. An hour, renewed
through `get-session` once past half its life (a client that stores the fresh token
stays signed in), and never renewed beyond ``MAX_SESSION`` after the sign-in it
descends from, so a stolen token cannot be kept alive for ever.
"""

from __future__ import annotations

import types
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from fastapi import FastAPI

from adapters.memory.accounts import InMemoryAccountStore
from adapters.passwords import BcryptHasher
from adapters.system import SystemClock, UuidGenerator
from adapters.tokens import DEFAULT_TTL, JwtAuthenticator
from entrypoints.http import errors
from entrypoints.http.routes import auth
from rag_core.accounts import MAX_SESSION, AccountService
from rag_core.testing import FakeClock

SECRET = "an HS256 secret of at least thirty-two bytes"
ISSUER = "http://test"
ADA = {"email": "ada@example.com", "name": "Ada Lovelace", "password": "correct horse"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def service() -> AccountService:
    return AccountService(
        InMemoryAccountStore(),
        JwtAuthenticator(SECRET, issuer=ISSUER),
        BcryptHasher(cost=4),
        SystemClock(),
        UuidGenerator(),
    )


@pytest.fixture
async def client(service: AccountService) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    errors.install(app)
    app.include_router(auth.router)
    app.state.container = types.SimpleNamespace(accounts=service)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


async def user_id(client: httpx.AsyncClient) -> str:
    response = await client.post("/api/auth/sign-up", json=ADA)
    assert response.status_code == 200, response.text
    uid: str = response.json()["user"]["id"]
    return uid


def test_a_token_lives_an_hour_by_default() -> None:
    assert timedelta(hours=1) == DEFAULT_TTL
    issued = JwtAuthenticator(SECRET).issue("user-1")
    left = issued.expires_at - datetime.now(UTC)
    assert timedelta(minutes=59) < left <= timedelta(hours=1)


def test_verify_reads_when_the_token_and_its_sign_in_were_issued() -> None:
    authenticator = JwtAuthenticator(SECRET, issuer=ISSUER)
    signed_in = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    issued = authenticator.issue("user-1", authenticated_at=signed_in)
    claims = authenticator.verify(issued.value)
    assert claims.issued_at is not None
    assert claims.expires_at - claims.issued_at == DEFAULT_TTL
    assert claims.authenticated_at == signed_in
    first = authenticator.verify(authenticator.issue("user-1").value)
    assert first.authenticated_at == first.issued_at  # a sign-in starts its own session


def test_a_token_without_auth_time_dates_its_session_from_its_issue() -> None:
    """Tokens issued before renewal existed carry no ``auth_time``."""
    now = int(datetime.now(UTC).timestamp())
    old = {
        "sub": "u",
        "jti": "j",
        "iat": now,
        "exp": now + 600,
        "iss": ISSUER,
        "aud": "rag-backend",
    }
    claims = JwtAuthenticator(SECRET, issuer=ISSUER).verify(jwt.encode(old, SECRET, "HS256"))
    assert claims.authenticated_at == claims.issued_at == datetime.fromtimestamp(now, UTC)


async def test_a_young_token_comes_back_unchanged(client: httpx.AsyncClient) -> None:
    signed = (await client.post("/api/auth/sign-up", json=ADA)).json()
    token = signed["session"]["accessToken"]
    session = (await client.get("/api/auth/get-session", headers=bearer(token))).json()
    assert session["session"] == signed["session"]


async def test_a_token_past_half_its_life_is_renewed(client: httpx.AsyncClient) -> None:
    uid = await user_id(client)
    old = JwtAuthenticator(
        SECRET, issuer=ISSUER, clock=FakeClock(datetime.now(UTC) - timedelta(minutes=40))
    ).issue(uid)
    response = await client.get("/api/auth/get-session", headers=bearer(old.value))
    assert response.status_code == 200, response.text
    session = response.json()["session"]
    assert session["accessToken"] != old.value
    renewed_until = datetime.fromisoformat(session["expiresAt"])
    assert renewed_until > old.expires_at + timedelta(minutes=39)
    # The fresh token works; the old one too until it expires (other tabs may hold it).
    for token in (session["accessToken"], old.value):
        verify = (await client.get("/api/auth/verify", headers=bearer(token))).json()
        assert verify["valid"] is True and verify["user"]["id"] == uid
    # The renewal descends from the same sign-in.
    claims = JwtAuthenticator(SECRET, issuer=ISSUER).verify(session["accessToken"])
    assert claims.authenticated_at == old.expires_at - DEFAULT_TTL


async def test_no_renewal_beyond_the_longest_session(client: httpx.AsyncClient) -> None:
    uid = await user_id(client)
    authenticator = JwtAuthenticator(
        SECRET, issuer=ISSUER, clock=FakeClock(datetime.now(UTC) - timedelta(minutes=40))
    )
    long_ago = datetime.now(UTC) - MAX_SESSION - timedelta(minutes=1)
    old = authenticator.issue(uid, authenticated_at=long_ago)
    session = (await client.get("/api/auth/get-session", headers=bearer(old.value))).json()
    # Still signed in until it expires, then signing in again is the only way.
    assert session["session"]["accessToken"] == old.value
    assert session["user"]["id"] == uid


async def test_sign_up_and_sign_in_say_when_the_hour_ends(client: httpx.AsyncClient) -> None:
    signed = (await client.post("/api/auth/sign-up", json=ADA)).json()
    again = (
        await client.post(
            "/api/auth/sign-in/email", json={"email": ADA["email"], "password": ADA["password"]}
        )
    ).json()
    for body in (signed, again):
        ends = datetime.fromisoformat(body["session"]["expiresAt"])
        assert timedelta(minutes=59) < ends - datetime.now(UTC) <= timedelta(hours=1)
