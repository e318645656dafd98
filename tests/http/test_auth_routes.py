"""The `/api/auth` routes and the bearer dependencies, in a small app of their own."""

from __future__ import annotations

import types
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from adapters.memory.accounts import InMemoryAccountStore
from adapters.passwords import BcryptHasher
from adapters.system import SystemClock, UuidGenerator
from adapters.tokens import JwtAuthenticator
from entrypoints.http import errors
from entrypoints.http.routes import auth
from rag_core.accounts import AccountService
from rag_core.errors import DependencyUnavailable
from rag_core.testing import FakeClock

SECRET = "an HS256 secret of at least thirty-two bytes"
ISSUER = "http://test"
ADA = {"email": "Ada@Example.com", "name": "Ada Lovelace", "password": "correct horse"}
USER_FIELDS = {
    "id",
    "email",
    "name",
    "proficiency",
    "emailVerified",
    "createdAt",
    "updatedAt",
    # The profile, which the site's profile page reads from the user object.
    "technical_background",
    "hardware_access",
    "learning_goals",
    "preferred_language",
}


def make_app(accounts: Any) -> FastAPI:
    app = FastAPI()
    errors.install(app)
    app.include_router(auth.router)

    @app.get("/whoami")
    async def whoami(principal: auth.OptionalPrincipalDep) -> dict[str, str | None]:
        return {"user_id": principal.user_id if principal else None}

    app.state.container = types.SimpleNamespace(accounts=accounts)
    return app


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
    transport = httpx.ASGITransport(app=make_app(service))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def sign_up(client: httpx.AsyncClient, **changes: str) -> dict[str, Any]:
    response = await client.post("/api/auth/sign-up", json={**ADA, **changes})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_the_frontends_call_sequence(client: httpx.AsyncClient) -> None:
    body = await sign_up(client, proficiency="intermediate")
    assert set(body["user"]) == USER_FIELDS
    assert body["user"]["email"] == "ada@example.com"
    assert body["user"]["proficiency"] == "intermediate"
    assert body["user"]["emailVerified"] is False
    session = body["session"]
    assert session["tokenType"] == "Bearer"
    assert datetime.fromisoformat(session["expiresAt"]) > datetime.now(UTC) + timedelta(minutes=59)
    headers = bearer(session["accessToken"])

    current = (await client.get("/api/auth/get-session", headers=headers)).json()
    assert current == body

    assert (await client.get("/api/auth/profile", headers=headers)).json() == {"profile": None}
    update = {
        "technical_background": "Python and a little C++",
        "hardware_access": "Jetson Orin Nano",
        "learning_goals": "Build a walking robot",
        "software_background": "ignored: not a field we keep",
    }
    updated = await client.post("/api/auth/profile/update", json=update, headers=headers)
    assert updated.json() == {"success": True}
    profile = (await client.get("/api/auth/profile", headers=headers)).json()["profile"]
    assert profile["technical_background"] == update["technical_background"]
    assert profile["hardware_access"] == update["hardware_access"]
    assert profile["learning_goals"] == update["learning_goals"]
    assert profile["proficiency"] == "intermediate"

    verified = (await client.get("/api/auth/verify", headers=headers)).json()
    saved = {k: update[k] for k in ("technical_background", "hardware_access", "learning_goals")}
    assert verified == {"valid": True, "user": {**body["user"], **saved}}

    out = await client.post("/api/auth/sign-out", headers=headers)
    assert out.json() == {"success": True}
    after = await client.get("/api/auth/get-session", headers=headers)
    assert after.json() == {"user": None, "session": None}
    assert (await client.get("/api/auth/verify", headers=headers)).json() == {
        "valid": False,
        "user": None,
    }
    assert (await client.get("/api/auth/profile", headers=headers)).status_code == 401


async def test_sign_in_returns_a_fresh_session(client: httpx.AsyncClient) -> None:
    up = await sign_up(client)
    response = await client.post(
        "/api/auth/sign-in/email",
        json={"email": "  ADA@example.COM", "password": ADA["password"], "rememberMe": True},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["user"] == up["user"]
    assert body["session"]["accessToken"] != up["session"]["accessToken"]
    assert response.headers["cache-control"] == "no-store"


async def test_a_taken_email_is_a_409_whatever_its_case(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    again = await client.post("/api/auth/sign-up", json={**ADA, "email": " ada@EXAMPLE.com "})
    assert again.status_code == 409
    assert again.json()["detail"]


async def test_wrong_password_and_unknown_email_look_the_same(client: httpx.AsyncClient) -> None:
    await sign_up(client)
    wrong = await client.post(
        "/api/auth/sign-in/email", json={"email": ADA["email"], "password": "wrong horse"}
    )
    unknown = await client.post(
        "/api/auth/sign-in/email",
        json={"email": "nobody@example.com", "password": ADA["password"]},
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == {"detail": "invalid email or password"}
    assert wrong.headers["www-authenticate"] == unknown.headers["www-authenticate"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/auth/sign-up", {}),
        ("/api/auth/sign-up", {**ADA, "email": "not-an-email"}),
        ("/api/auth/sign-up", {**ADA, "email": "a" * 250 + "@example.com"}),
        ("/api/auth/sign-up", {**ADA, "name": ""}),
        ("/api/auth/sign-up", {**ADA, "name": "   "}),
        ("/api/auth/sign-up", {**ADA, "name": "n" * 101}),
        ("/api/auth/sign-up", {**ADA, "password": "short"}),
        ("/api/auth/sign-up", {**ADA, "password": "p" * 73}),
        ("/api/auth/sign-up", {**ADA, "password": "é" * 37}),  # 74 bytes
        ("/api/auth/sign-up", {**ADA, "proficiency": "expert"}),
        ("/api/auth/sign-up", {**ADA, "email": ["ada@example.com"]}),
        ("/api/auth/sign-in/email", {"email": "ada@example.com"}),
        ("/api/auth/sign-in/email", {"email": "ada@example.com", "password": ""}),
        ("/api/auth/sign-in/email", {"email": "ada@example.com", "password": "p" * 73}),
    ],
)
async def test_bad_bodies_are_422s_with_a_reason(
    client: httpx.AsyncClient, path: str, body: dict[str, Any]
) -> None:
    response = await client.post(path, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {"learning_goals": "x" * 2001},
        {"hardware_access": 42},
        {"proficiency": "guru"},
        {"technical_background": "nul \x00 byte"},
    ],
)
async def test_bad_profile_updates_are_422s(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    headers = bearer((await sign_up(client))["session"]["accessToken"])
    response = await client.post("/api/auth/profile/update", json=body, headers=headers)
    assert response.status_code == 422, response.text


async def test_profile_updates_keep_the_fields_left_out(client: httpx.AsyncClient) -> None:
    headers = bearer((await sign_up(client))["session"]["accessToken"])
    await client.post("/api/auth/profile/update", json={"learning_goals": "SLAM"}, headers=headers)
    await client.post(
        "/api/auth/profile/update",
        json={"hardware_access": "none", "proficiency": "pro"},
        headers=headers,
    )
    profile = (await client.get("/api/auth/profile", headers=headers)).json()["profile"]
    assert profile["learning_goals"] == "SLAM" and profile["hardware_access"] == "none"
    assert profile["proficiency"] == "pro"
    session = (await client.get("/api/auth/get-session", headers=headers)).json()
    assert session["user"]["proficiency"] == "pro"


async def test_anonymous_requests(client: httpx.AsyncClient) -> None:
    assert (await client.get("/whoami")).json() == {"user_id": None}
    assert (await client.get("/api/auth/get-session")).json() == {"user": None, "session": None}
    assert (await client.get("/api/auth/verify")).json() == {"valid": False, "user": None}
    assert (await client.post("/api/auth/sign-out")).json() == {"success": True}
    for response in (
        await client.get("/api/auth/profile"),
        await client.post("/api/auth/profile/update", json={}),
    ):
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"


async def test_a_signed_in_caller_is_known(client: httpx.AsyncClient) -> None:
    body = await sign_up(client)
    who = await client.get("/whoami", headers=bearer(body["session"]["accessToken"]))
    assert who.json() == {"user_id": body["user"]["id"]}


GARBAGE = [
    b"Bearer null",
    b"Bearer a.b.c",
    b"Bearer " + b"x" * 10_000,
    b"Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
    b"Basic YWRhOnBhc3M=",
    b"garbage",
    b"Bearer \xff\xfe\xfd",
]
# No credential at all: anonymous where that is allowed (issue 14, item 9).
EMPTY = [b"Bearer ", b"Bearer", b""]


@pytest.mark.parametrize("authorization", GARBAGE + EMPTY)
async def test_garbage_tokens_never_cause_a_500(
    client: httpx.AsyncClient, authorization: bytes
) -> None:
    headers = {b"Authorization": authorization}
    who = await client.get("/whoami", headers=headers)
    if authorization in EMPTY:
        assert who.json() == {"user_id": None}
    else:
        assert who.status_code == 401
        assert who.headers["www-authenticate"].startswith("Bearer")
    assert (await client.get("/api/auth/profile", headers=headers)).status_code == 401
    session = await client.get("/api/auth/get-session", headers=headers)
    assert session.json() == {"user": None, "session": None}
    verify = await client.get("/api/auth/verify", headers=headers)
    assert verify.json() == {"valid": False, "user": None}
    assert (await client.post("/api/auth/sign-out", headers=headers)).status_code == 200


async def test_expired_and_revoked_tokens_are_401_for_chat(client: httpx.AsyncClient) -> None:
    body = await sign_up(client)
    stale = JwtAuthenticator(
        SECRET,
        issuer=ISSUER,
        ttl=timedelta(minutes=1),
        clock=FakeClock(datetime.now(UTC) - timedelta(hours=1)),
    )
    expired = stale.issue(body["user"]["id"]).value
    assert (await client.get("/whoami", headers=bearer(expired))).status_code == 401

    token = body["session"]["accessToken"]
    await client.post("/api/auth/sign-out", headers=bearer(token))
    response = await client.get("/whoami", headers=bearer(token))
    assert response.status_code == 401
    assert response.json() == {"detail": "invalid or expired token"}
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'


class DownStore(InMemoryAccountStore):
    async def find_credentials(self, email: str) -> Any:
        raise DependencyUnavailable("postgres", "OperationalError")

    async def is_revoked(self, token_id: str) -> bool:
        raise DependencyUnavailable("postgres", "OperationalError")


async def test_a_database_outage_is_a_503_not_a_sign_out() -> None:
    authenticator = JwtAuthenticator(SECRET, issuer=ISSUER)
    service = AccountService(
        DownStore(), authenticator, BcryptHasher(cost=4), SystemClock(), UuidGenerator()
    )
    transport = httpx.ASGITransport(app=make_app(service))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        sign_in = await client.post(
            "/api/auth/sign-in/email", json={"email": "a@example.com", "password": "x" * 8}
        )
        assert sign_in.status_code == 503 and "retry-after" in sign_in.headers
        token = authenticator.issue("user-1").value
        session = await client.get("/api/auth/get-session", headers=bearer(token))
        assert session.status_code == 503
        assert (await client.get("/whoami", headers=bearer(token))).status_code == 503


class SwitchableStore(InMemoryAccountStore):
    """Up until ``down`` is set; then every read the principal needs fails."""

    down = False

    async def is_revoked(self, token_id: str) -> bool:
        if self.down:
            raise DependencyUnavailable("postgres", "OperationalError")
        return await super().is_revoked(token_id)

    async def get_profile(self, user_id: str) -> Any:
        if self.down:
            raise DependencyUnavailable("postgres", "OperationalError")
        return await super().get_profile(user_id)


async def test_get_session_outlives_a_database_outage_without_the_profile() -> None:
    store = SwitchableStore()
    service = AccountService(
        store,
        JwtAuthenticator(SECRET, issuer=ISSUER),
        BcryptHasher(cost=4),
        SystemClock(),
        UuidGenerator(),
    )
    transport = httpx.ASGITransport(app=make_app(service))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        signed = (await client.post("/api/auth/sign-up", json=ADA)).json()
        headers = bearer(signed["session"]["accessToken"])
        profile = {"technical_background": "Python", "learning_goals": "walk"}
        await client.post("/api/auth/profile/update", json=profile, headers=headers)
        before = (await client.get("/api/auth/get-session", headers=headers)).json()
        assert before["user"]["technical_background"] == "Python"
        store.down = True
        # Verified moments ago: still signed in (the site drops the token on any
        # failure), the profile unknown for now rather than a 503.
        during = await client.get("/api/auth/get-session", headers=headers)
        assert during.status_code == 200, during.text
        user = during.json()["user"]
        assert user["email"] == "ada@example.com"
        assert user["technical_background"] is None and user["learning_goals"] is None
