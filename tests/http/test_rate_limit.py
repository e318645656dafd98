"""Rate limits: the GCRA limiter on a fake clock (over both stores: memory and the
file the workers share), client addresses behind proxies,
and the FastAPI dependencies answering 429 with Retry-After."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Protocol

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Request
from pydantic import BaseModel

from adapters.rate_limits.gcra import Arrivals
from adapters.rate_limits.memory import MemoryArrivals
from adapters.rate_limits.sqlite import SqliteArrivals
from entrypoints.http.rate_limit import (
    client_address,
    install,
    limit,
    limit_by_address,
    limit_sign_in,
)
from entrypoints.http.rate_limiter import DEFAULT_POLICIES, Rate, RateLimitConfig, RateLimiter
from entrypoints.http.responses import TOO_MANY_REQUESTS
from entrypoints.http.routes.auth import OptionalPrincipalDep
from rag_core.errors import Unauthenticated
from rag_core.testing import FakeClock

POLICIES = {"chat": "3/minute", "sign-in": "2/minute", "sign-in-email": "2/minute"}


def limiter(clock: FakeClock, **options: object) -> RateLimiter:
    return RateLimiter(RateLimitConfig.parse(POLICIES, **options), clock=clock)


class MakeLimiter(Protocol):
    def __call__(
        self,
        policies: Mapping[str, str] = ...,
        *,
        on_refused: Callable[[str], None] | None = None,
        **options: object,
    ) -> RateLimiter: ...


@pytest.fixture(params=["memory", "sqlite"])
def make_limiter(
    request: pytest.FixtureRequest, clock: FakeClock, tmp_path: Path
) -> Iterator[MakeLimiter]:
    """Limiters on ``clock`` over each store: the GCRA tests hold for both."""
    made: list[RateLimiter] = []

    def make(
        policies: Mapping[str, str] = POLICIES,
        *,
        on_refused: Callable[[str], None] | None = None,
        **options: object,
    ) -> RateLimiter:
        store: Arrivals
        if request.param == "memory":
            store = MemoryArrivals(clock)
        else:
            store = SqliteArrivals(tmp_path / f"limits-{len(made)}.db", clock=clock)
        config = RateLimitConfig.parse(policies, **options)
        made.append(RateLimiter(config, store=store, on_refused=on_refused))
        return made[-1]

    yield make
    for rl in made:
        rl.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(seconds=1000.0)


# --- rates and the limiter -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("30/minute", Rate(30, 60.0)),
        (" 5 / second ", Rate(5, 1.0)),
        ("100/hours", Rate(100, 3600.0)),
        ("1000/Day", Rate(1000, 86400.0)),
    ],
)
def test_rates_parse_from_text(text: str, rate: Rate) -> None:
    assert Rate.parse(text) == rate


@pytest.mark.parametrize("text", ["", "30", "30/fortnight", "-1/minute", "0/minute", "x/minute"])
def test_bad_rates_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        Rate.parse(text)


def test_the_default_policies_parse() -> None:
    config = RateLimitConfig.parse(DEFAULT_POLICIES)
    assert config.policies["chat"] == Rate(30, 60.0)
    assert set(config.policies) == {"chat", "transforms", "sign-in", "sign-in-email"}


def test_a_burst_is_admitted_then_one_request_per_interval(
    make_limiter: MakeLimiter, clock: FakeClock
) -> None:
    rl = make_limiter()
    assert [rl.hit("chat", "a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert rl.hit("chat", "a") == pytest.approx(20.0)
    clock.advance(19.5)
    assert rl.hit("chat", "a") == pytest.approx(0.5)
    clock.advance(0.5)
    assert rl.hit("chat", "a") == 0.0
    assert rl.hit("chat", "a") == pytest.approx(20.0)


def test_refused_requests_are_not_counted(make_limiter: MakeLimiter, clock: FakeClock) -> None:
    rl = make_limiter()
    for _ in range(3):
        rl.hit("chat", "a")
    for _ in range(50):
        assert rl.hit("chat", "a") > 0
    clock.advance(20)
    assert rl.hit("chat", "a") == 0.0


def test_keys_and_policies_count_separately(make_limiter: MakeLimiter) -> None:
    rl = make_limiter()
    for _ in range(3):
        rl.hit("chat", "a")
    assert rl.hit("chat", "a") > 0
    assert rl.hit("chat", "b") == 0.0
    assert rl.hit("sign-in", "a") == 0.0


@pytest.mark.parametrize("rate", ["7/second", "5/second", "7/hour", "9/second"])
def test_a_rate_that_does_not_divide_evenly_admits_its_whole_burst(
    make_limiter: MakeLimiter, clock: FakeClock, rate: str
) -> None:
    # At a wall clock's magnitude a float's step is 0.2 us: summed float intervals
    # refused the last request of these bursts (the stores count in nanoseconds).
    clock.advance(1.7e9)
    rl = make_limiter({"odd": rate})
    assert all(rl.hit("odd", "k") == 0.0 for _ in range(Rate.parse(rate).count))
    assert rl.hit("odd", "k") > 0


def test_refilled_keys_are_forgotten(make_limiter: MakeLimiter, clock: FakeClock) -> None:
    rl = make_limiter()
    for i in range(100):
        rl.hit("chat", f"client-{i}")
    assert rl.tracked_keys("chat") == 100
    clock.advance(60)
    rl.hit("chat", "newcomer")
    assert rl.tracked_keys("chat") == 1


def test_memory_is_capped_per_policy(make_limiter: MakeLimiter, clock: FakeClock) -> None:
    rl = make_limiter(max_keys=10)
    for i in range(1000):
        rl.hit("chat", f"client-{i}")
        clock.advance(0.001)
    assert rl.tracked_keys("chat") == 10


def test_disabled_limits_admit_everything(make_limiter: MakeLimiter) -> None:
    rl = make_limiter(enabled=False)
    assert all(rl.hit("chat", "a") == 0.0 for _ in range(100))


def test_an_unknown_policy_is_a_programming_error(make_limiter: MakeLimiter) -> None:
    with pytest.raises(LookupError, match="chta"):
        make_limiter().hit("chta", "a")


def test_refusals_are_reported(make_limiter: MakeLimiter) -> None:
    refused: list[str] = []
    rl = make_limiter({"chat": "1/minute"}, on_refused=refused.append)
    rl.hit("chat", "a")
    rl.hit("chat", "a")
    assert refused == ["chat"]


# --- client addresses --------------------------------------------------------------


def request_from(peer: str | None, *forwarded: str) -> Request:
    headers = [(b"x-forwarded-for", value.encode()) for value in forwarded]
    scope = {"type": "http", "headers": headers, "client": (peer, 4000) if peer else None}
    return Request(scope)


@pytest.mark.parametrize(
    ("peer", "forwarded", "hops", "expected"),
    [
        ("10.0.0.9", ["1.2.3.4"], 0, "10.0.0.9"),  # not behind a proxy: the header is a lie
        ("10.0.0.9", ["6.6.6.6, 1.2.3.4"], 1, "1.2.3.4"),  # the entry our proxy appended
        ("10.0.0.9", ["6.6.6.6, 1.2.3.4, 10.0.0.1"], 2, "1.2.3.4"),
        ("10.0.0.9", ["6.6.6.6", "1.2.3.4"], 1, "1.2.3.4"),  # several header lines
        ("10.0.0.9", ["1.2.3.4"], 3, "1.2.3.4"),  # shorter than the hops: the leftmost
        ("10.0.0.9", [], 1, "10.0.0.9"),
        ("10.0.0.9", ["not-an-address"], 1, "10.0.0.9"),
        ("2001:db8:1:2:3:4:5:6", [], 0, "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.7", [], 0, "192.0.2.7"),
        (None, [], 0, "unknown"),
    ],
)
def test_client_addresses(peer: str | None, forwarded: list[str], hops: int, expected: str) -> None:
    assert client_address(request_from(peer, *forwarded), hops) == expected


# --- the dependencies over HTTP ----------------------------------------------------


class FakeAccounts:
    """Tokens ``token-<user>`` belong to ``<user>``; anything else is invalid."""

    def __init__(self) -> None:
        self.calls = 0

    async def authenticate(self, token: str) -> SimpleNamespace:
        self.calls += 1
        if not token.startswith("token-"):
            raise Unauthenticated("invalid or expired token")
        return SimpleNamespace(user_id=token.removeprefix("token-"))


class SignIn(BaseModel):
    email: str
    password: str


def build_app(rl: RateLimiter | None) -> FastAPI:
    app = FastAPI()
    app.state.container = SimpleNamespace(accounts=FakeAccounts())
    if rl is not None:
        install(app, rl)

    @app.post("/chat", dependencies=[Depends(limit("chat"))])
    async def chat() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/chat-as", dependencies=[Depends(limit("chat"))])
    async def chat_as(principal: OptionalPrincipalDep) -> dict[str, str | None]:
        return {"user": principal.user_id if principal else None}

    @app.post("/by-address", dependencies=[Depends(limit_by_address("chat"))])
    async def by_address() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/sign-in", dependencies=[Depends(limit_sign_in)])
    async def sign_in(body: SignIn) -> dict[str, bool]:
        return {"ok": True}

    return app


def client_for(app: FastAPI, address: str = "203.0.113.5") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://test")


@pytest.fixture
async def client(clock: FakeClock) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(build_app(limiter(clock))) as c:
        yield c


async def test_over_the_limit_is_a_429_with_retry_after(client: httpx.AsyncClient) -> None:
    for _ in range(3):
        assert (await client.post("/chat")).status_code == 200
    refused = await client.post("/chat")
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "20"
    assert refused.json() == {"detail": "too many requests: try again in 20 seconds"}


async def test_retry_after_is_whole_seconds_rounded_up(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    for _ in range(3):
        await client.post("/chat")
    clock.advance(19.9)
    refused = await client.post("/chat")
    assert refused.headers["retry-after"] == "1"
    clock.advance(0.1)
    assert (await client.post("/chat")).status_code == 200


async def test_signed_in_users_count_apart_from_their_address(
    client: httpx.AsyncClient,
) -> None:
    for _ in range(3):
        await client.post("/chat")
    assert (await client.post("/chat")).status_code == 429
    alice = {"Authorization": "Bearer token-alice"}
    bob = {"Authorization": "Bearer token-bob"}
    assert [(await client.post("/chat", headers=alice)).status_code for _ in range(4)] == [
        200,
        200,
        200,
        429,
    ]
    assert (await client.post("/chat", headers=bob)).status_code == 200


async def test_a_bad_token_is_a_401_not_an_anonymous_request(client: httpx.AsyncClient) -> None:
    response = await client.post("/chat", headers={"Authorization": "Bearer forged"})
    assert response.status_code == 401


async def test_the_route_and_the_limit_share_one_authentication() -> None:
    app = build_app(limiter(FakeClock(seconds=1000.0)))
    async with client_for(app) as c:
        response = await c.post("/chat-as", headers={"Authorization": "Bearer token-alice"})
    assert response.json() == {"user": "alice"}
    assert app.state.container.accounts.calls == 1


async def test_a_policy_declared_twice_counts_once() -> None:
    app = build_app(limiter(FakeClock(seconds=1000.0)))
    router = APIRouter(dependencies=[Depends(limit("chat"))])

    @router.post("/twice", dependencies=[Depends(limit("chat"))], responses=TOO_MANY_REQUESTS)
    async def twice() -> dict[str, bool]:
        return {"ok": True}

    app.include_router(router)
    async with client_for(app) as c:
        statuses = [(await c.post("/twice")).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    documented = app.openapi()["paths"]["/twice"]["post"]["responses"]["429"]
    assert "Retry-After" in documented["headers"]


async def test_address_limits_ignore_the_token(client: httpx.AsyncClient) -> None:
    alice = {"Authorization": "Bearer token-alice"}
    for _ in range(3):
        await client.post("/by-address", headers=alice)
    assert (await client.post("/by-address")).status_code == 429


async def test_addresses_count_apart() -> None:
    app = build_app(limiter(FakeClock(seconds=1000.0)))
    async with client_for(app, "198.51.100.1") as one, client_for(app, "198.51.100.2") as two:
        for _ in range(3):
            await one.post("/chat")
        assert (await one.post("/chat")).status_code == 429
        assert (await two.post("/chat")).status_code == 200


async def test_forwarded_addresses_count_only_behind_a_trusted_proxy() -> None:
    proxy = "10.0.0.1"
    for hops, expected in [(0, [200, 200, 429]), (1, [200, 200, 200])]:
        rl = RateLimiter(RateLimitConfig.parse({"chat": "2/minute"}, proxy_hops=hops))
        async with client_for(build_app(rl), proxy) as c:
            statuses = [
                (await c.post("/chat", headers={"X-Forwarded-For": f"192.0.2.{i}"})).status_code
                for i in range(3)
            ]
        assert statuses == expected


async def test_sign_in_is_limited_per_address(client: httpx.AsyncClient) -> None:
    statuses = [
        (
            await client.post("/sign-in", json={"email": f"u{i}@example.com", "password": "x"})
        ).status_code
        for i in range(3)
    ]
    assert statuses == [200, 200, 429]


async def test_sign_in_is_limited_per_account_email_across_addresses(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    app = build_app(limiter(FakeClock(seconds=1000.0)))
    spellings = ["Victim@Example.com", "  victim@example.COM ", "VICTIM@EXAMPLE.COM"]
    statuses = []
    for i, email in enumerate(spellings):
        async with client_for(app, f"198.51.100.{i}") as c:
            response = await c.post("/sign-in", json={"email": email, "password": "guess"})
            statuses.append(response.status_code)
    assert statuses == [200, 200, 429]
    assert "victim" not in caplog.text.casefold()
    async with client_for(app, "198.51.100.9") as c:
        other = await c.post("/sign-in", json={"email": "other@example.com", "password": "x"})
        assert other.status_code == 200


async def test_a_sign_in_without_an_email_counts_per_address_only(
    client: httpx.AsyncClient,
) -> None:
    # Bad bodies count too (against the address): guessing costs the same either way.
    assert (await client.post("/sign-in", json={"password": "x"})).status_code == 422
    assert (await client.post("/sign-in", content=b"not json")).status_code == 422
    assert (
        await client.post("/sign-in", json={"email": "a@b.c", "password": "x"})
    ).status_code == 429


async def test_without_a_limiter_nothing_is_limited() -> None:
    async with client_for(build_app(None)) as c:
        assert all([(await c.post("/chat")).status_code == 200 for _ in range(10)])
