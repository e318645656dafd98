"""The password policy over HTTP (issue 14, item 6 and the policy): control characters,
all-whitespace and the most common passwords are refused at sign-up with the same 422
shape as the other password rules, and sign-in failures stay one identical 401."""

from __future__ import annotations

import types
from collections.abc import AsyncIterator
from typing import Any

import bcrypt
import httpx
import pytest
from fastapi import FastAPI

from adapters.memory.accounts import InMemoryAccountStore
from adapters.passwords import BcryptHasher
from adapters.system import SystemClock, UuidGenerator
from adapters.tokens import JwtAuthenticator
from entrypoints.http import errors
from entrypoints.http.routes import auth
from rag_core.accounts import AccountService, Proficiency, User

SECRET = "an HS256 secret of at least thirty-two bytes"
ADA = {"email": "ada@example.com", "name": "Ada Lovelace", "password": "correct horse"}
BAD_CREDENTIALS = {"detail": "invalid email or password"}


@pytest.fixture
def store() -> InMemoryAccountStore:
    return InMemoryAccountStore()


@pytest.fixture
async def client(store: InMemoryAccountStore) -> AsyncIterator[httpx.AsyncClient]:
    service = AccountService(
        store,
        JwtAuthenticator(SECRET, issuer="http://test"),
        BcryptHasher(cost=4),
        SystemClock(),
        UuidGenerator(),
    )
    app = FastAPI()
    errors.install(app)
    app.include_router(auth.router)
    app.state.container = types.SimpleNamespace(accounts=service)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


REFUSED = [
    ("\x00" * 8, "password must not contain control characters"),
    ("tab\tseparated", "password must not contain control characters"),
    (" " * 12, "password must not be only spaces"),
    ("password", "password is too common"),
    ("Password123", "password is too common"),
    ("QWERTYUI", "password is too common"),
]


def shape(body: Any) -> Any:
    """The JSON's structure (keys and types), not its values."""
    if isinstance(body, dict):
        return {key: shape(value) for key, value in body.items()}
    if isinstance(body, list):
        return [shape(item) for item in body]
    return type(body).__name__


async def test_sign_up_refuses_with_the_rules_shape(client: httpx.AsyncClient) -> None:
    shapes = []
    for password, message in REFUSED:
        response = await client.post("/api/auth/sign-up", json={**ADA, "password": password})
        assert response.status_code == 422, (password, response.text)
        assert message in response.text, (password, response.text)
        shapes.append(shape(response.json()))
    # One shape for every rule (the domain's InvalidInput 422).
    assert all(s == shapes[0] for s in shapes), shapes
    # The email stays free: nothing was stored.
    assert (await client.post("/api/auth/sign-up", json=ADA)).status_code == 200


async def test_a_nul_password_does_not_sign_in_with_a_shorter_one(
    client: httpx.AsyncClient, store: InMemoryAccountStore
) -> None:
    # An account made before the rules (plain bcrypt, which stops at a NUL).
    now = SystemClock().now()
    user = User("u1", "nul@example.com", "Nul", Proficiency.BEGINNER, now, now)
    await store.create_user(user, bcrypt.hashpw(b"\x00" * 8, bcrypt.gensalt(4)).decode())
    for password in ["\x00", "\x00" * 8]:
        response = await client.post(
            "/api/auth/sign-in/email", json={"email": "nul@example.com", "password": password}
        )
        assert (response.status_code, response.json()) == (401, BAD_CREDENTIALS)


async def test_sign_in_failures_stay_identical(client: httpx.AsyncClient) -> None:
    assert (await client.post("/api/auth/sign-up", json=ADA)).status_code == 200
    failures = [
        {"email": ADA["email"], "password": "wrong horse"},
        {"email": ADA["email"], "password": "password"},  # common
        {"email": ADA["email"], "password": "        "},  # all spaces
        {"email": ADA["email"], "password": "correct horse\x00"},  # control character
        {"email": "nobody@example.com", "password": "password"},
    ]
    responses = [await client.post("/api/auth/sign-in/email", json=body) for body in failures]
    assert {(r.status_code, r.text, r.headers["www-authenticate"]) for r in responses} == {
        (401, '{"detail":"invalid email or password"}', "Bearer")
    }
    ok = await client.post("/api/auth/sign-in/email", json=ADA)
    assert ok.status_code == 200
