"""Hostile clients against the real server (uvicorn on loopback, as `rag-backend serve`
runs it): oversized bodies and heads, slow heads and bodies, too many connections,
forged ``X-Forwarded-For`` (issue 14, items 3-5).

Raw sockets, so the test decides exactly what is sent and when. Limits are small and
timeouts short (about a second), so every case is bounded in bytes, connections and
time; memory under a 200 MB body is measured by ``bench/run.sh hostile``, not here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import select
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from adapters.settings import Settings
from entrypoints.container import in_memory_container
from entrypoints.http.app import create_app
from entrypoints.server import ConnectionLimits, DrainingServer

ADMIN = "hostile-admin-key"
LIMITS: dict[str, Any] = {
    "max_body_bytes": 64 * 1024,
    "max_ingest_body_bytes": 256 * 1024,
    "max_header_bytes": 8 * 1024,
    "request_head_timeout": 1.0,
    "request_body_timeout": 1.5,
    "max_connections": 60,
}
SLACK = 2.0  # seconds beyond a timeout within which the server must have closed


class Served:
    def __init__(self, base: str, port: int, settings: Settings) -> None:
        self.base, self.port, self.settings = base, port, settings

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def request(self, head: str, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
        with self.connect() as sock:
            sock.sendall(head.encode() + body)
            return read_response(sock, timeout=5)


@contextlib.contextmanager
def serving(**overrides: Any) -> Iterator[Served]:
    values: dict[str, Any] = {"admin_api_key": ADMIN, "rate_limit_enabled": False, **LIMITS}
    settings = Settings(_env_file=None, **{**values, **overrides})
    container = asyncio.run(in_memory_container(settings, password_cost=4))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = create_app(settings, container)
    server = DrainingServer(app, "127.0.0.1", port, limits=ConnectionLimits.of(settings))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.01)
    try:
        yield Served(f"http://127.0.0.1:{port}", port, settings)
    finally:
        server.should_exit = True
        thread.join(15)


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    with serving() as s:
        yield s


def read_response(sock: socket.socket, timeout: float) -> tuple[int, dict[str, str], bytes]:
    """One response (status, headers, body); status 0 when the server closed with none."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            if not data:
                return 0, {}, b""
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, headers, body


def closed_by_server(sock: socket.socket, timeout: float) -> bool:
    """True when the server closes the connection within ``timeout`` (any response first)."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        pass
    return True


def detail_of(body: bytes) -> str:
    detail = json.loads(body)["detail"]
    assert isinstance(detail, str) and detail
    return detail


def head(method: str, path: str, *lines: str) -> str:
    return "\r\n".join([f"{method} {path} HTTP/1.1", "Host: test", *lines, "", ""])


# --- item 3: bodies and heads are bounded before they are read ---------------------


def test_a_body_over_the_bound_is_refused_before_it_is_read(served: Served) -> None:
    """Content-Length of 200 MB: 413 at once, though not one byte of the body was sent."""
    with served.connect() as sock:
        sock.sendall(
            head(
                "POST", "/chat", "Content-Type: application/json", "Content-Length: 200000000"
            ).encode()
        )
        status, headers, body = read_response(sock, timeout=3)
        assert status == 413, body
        assert str(LIMITS["max_body_bytes"]) in detail_of(body)
        assert headers["connection"] == "close"
        assert closed_by_server(sock, timeout=3)


def test_a_streamed_body_is_counted_as_it_arrives(served: Served) -> None:
    """Chunked, no Content-Length: refused once the bound is passed (today: read in full, 422)."""
    with served.connect() as sock:
        sock.sendall(
            head(
                "POST", "/chat", "Content-Type: application/json", "Transfer-Encoding: chunked"
            ).encode()
        )
        chunk = b"x" * 16384
        framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        sent = 0
        while sent < 4 * LIMITS["max_body_bytes"]:
            if select.select([sock], [], [], 0)[0]:
                break  # the server answered while we were still sending
            sock.sendall(framed)
            sent += len(chunk)
        status, _, body = read_response(sock, timeout=3)
        assert status == 413, body
        detail_of(body)


def test_a_body_within_the_bound_is_served(served: Served) -> None:
    body = json.dumps({"query": "What is a topic?", "selected_text": "a" * 20_000}).encode()
    status, _, _ = served.request(
        head("POST", "/chat", "Content-Type: application/json", f"Content-Length: {len(body)}"),
        body,
    )
    assert status == 200


def test_ingest_checks_the_key_before_reading_the_body(served: Served) -> None:
    """No key, or a wrong one: 401 without waiting for the body (today: read, then refused)."""
    for auth in ([], ["Authorization: Bearer wrong"]):
        with served.connect() as sock:
            sock.sendall(
                head(
                    "POST",
                    "/ingest",
                    "Content-Type: application/json",
                    "Content-Length: 200000",
                    *auth,
                ).encode()
            )
            status, headers, body = read_response(sock, timeout=3)
            assert status == 401, body
            assert headers["www-authenticate"].startswith("Bearer")
            assert headers["connection"] == "close"
            detail_of(body)


def test_ingest_has_its_own_larger_bound(served: Served) -> None:
    admin = f"Authorization: Bearer {ADMIN}"
    document = {"path": "docs/big.md", "text": "# Big\n\n" + "A topic is a bus. " * 8_000}
    body = json.dumps({"documents": [document]}).encode()
    assert LIMITS["max_body_bytes"] < len(body) < LIMITS["max_ingest_body_bytes"]
    status, _, answer = served.request(
        head(
            "POST",
            "/ingest",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
            admin,
        ),
        body,
    )
    assert status == 200, answer
    with served.connect() as sock:
        too_big = LIMITS["max_ingest_body_bytes"] + 1
        sock.sendall(
            head(
                "POST",
                "/ingest",
                "Content-Type: application/json",
                f"Content-Length: {too_big}",
                admin,
            ).encode()
        )
        status, _, answer = read_response(sock, timeout=3)
        assert status == 413, answer
        assert "MAX_INGEST_BODY_BYTES" in detail_of(answer)


def test_a_head_over_the_bound_is_refused_while_it_arrives(served: Served) -> None:
    """A header that never ends: 431 once the bound is passed (today: buffered without end)."""
    with served.connect() as sock:
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: test\r\nX-Big: ")
        for _ in range(64):  # up to 256 KiB, unless answered first
            if select.select([sock], [], [], 0.01)[0]:
                break
            sock.sendall(b"a" * 4096)
        status, headers, body = read_response(sock, timeout=3)
        assert status == 431, body
        assert headers["connection"] == "close"
        detail_of(body)
        assert closed_by_server(sock, timeout=3)


def test_a_complete_head_over_the_bound_is_refused(served: Served) -> None:
    """The whole oversized head in one write is refused too, not only a never-ending one."""
    big = "X-Big: " + "a" * (LIMITS["max_header_bytes"] + 100)
    status, _, body = served.request(head("GET", "/health/live", big))
    assert status == 431, body


def test_a_head_within_the_bound_is_served(served: Served) -> None:
    status, _, _ = served.request(head("GET", "/health/live", "X-Fine: " + "a" * 4000))
    assert status == 200


# --- item 4: slow clients are timed out, connections are capped ----------------------


def test_slow_heads_are_timed_out(served: Served) -> None:
    """Silent connections and unfinished heads are closed after REQUEST_HEAD_TIMEOUT;
    a partial head is told 408. /health/live answers meanwhile."""
    silent = [served.connect() for _ in range(10)]
    partial = [served.connect() for _ in range(20)]
    for sock in partial:
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: test\r\n")
    started = time.monotonic()
    try:
        assert served.request(head("GET", "/health/live"))[0] == 200
        limit = LIMITS["request_head_timeout"] + SLACK
        for sock in partial:
            status, _, body = read_response(sock, timeout=limit)
            assert status == 408, body
            detail_of(body)
        assert all(closed_by_server(sock, timeout=limit) for sock in silent + partial)
        assert time.monotonic() - started < limit
    finally:
        for sock in silent + partial:
            sock.close()


def test_a_trickled_head_is_timed_out_from_its_start(served: Served) -> None:
    """A byte a time keeps uvicorn's keep-alive timer from ever firing; the head
    deadline counts from the connection, not from the last byte."""
    with served.connect() as sock:
        started = time.monotonic()
        line = b"GET /health/live HTTP/1.1\r\nHost: test\r\nX-Slow: "
        for byte in line:
            sock.sendall(bytes([byte]))
            time.sleep(0.02)
        with contextlib.suppress(OSError):
            while time.monotonic() - started < LIMITS["request_head_timeout"] + SLACK:
                sock.sendall(b"a")
                time.sleep(0.1)
        assert closed_by_server(sock, timeout=SLACK)
        assert time.monotonic() - started < LIMITS["request_head_timeout"] + 2 * SLACK


def test_slow_bodies_are_timed_out(served: Served) -> None:
    """A body that stops halfway: 408 and closed after REQUEST_BODY_TIMEOUT."""
    socks = [served.connect() for _ in range(20)]
    started = time.monotonic()
    try:
        for sock in socks:
            sock.sendall(
                head(
                    "POST", "/chat", "Content-Type: application/json", "Content-Length: 1000"
                ).encode()
                + b'{"query": "'
            )
        limit = LIMITS["request_body_timeout"] + SLACK
        for sock in socks:
            status, _, body = read_response(sock, timeout=limit)
            assert status == 408, body
            detail_of(body)
            assert closed_by_server(sock, timeout=limit)
        assert time.monotonic() - started < limit
    finally:
        for sock in socks:
            sock.close()


def test_a_keep_alive_connection_waiting_for_its_answer_is_not_a_slow_head(
    served: Served,
) -> None:
    """The head deadline starts with a request's first byte, so a client that waits
    longer than it between requests (keep-alive) or for a slow answer is not cut off."""
    with served.connect() as sock:
        for _ in range(2):
            sock.sendall(head("GET", "/health/live").encode())
            assert read_response(sock, timeout=3)[0] == 200
            time.sleep(LIMITS["request_head_timeout"] + 0.3)  # < KEEP_ALIVE_TIMEOUT (5 s)


def test_connections_over_the_cap_are_refused_at_once() -> None:
    with serving(max_connections=10, request_head_timeout=30.0) as served:
        held = [served.connect() for _ in range(10)]
        try:
            time.sleep(0.2)
            with served.connect() as extra:
                status, _, body = read_response(extra, timeout=3)
                assert status == 503, body
                detail_of(body)
                assert closed_by_server(extra, timeout=3)
        finally:
            for sock in held:
                sock.close()
        time.sleep(0.3)
        assert served.request(head("GET", "/health/live"))[0] == 200


def test_the_server_takes_its_limits_from_the_settings() -> None:
    settings = Settings(_env_file=None, keep_alive_timeout=7, max_connections=123)
    config = DrainingServer(
        create_app(settings), "127.0.0.1", 1, limits=ConnectionLimits.of(settings)
    ).config
    assert config.timeout_keep_alive == 7
    assert config.limit_concurrency == 124  # uvicorn counts the connection asking too
    assert config.proxy_headers is False


# --- item 5: one source of truth for the client address ------------------------------


def sign_in_statuses(served: Served, forwarded: list[str]) -> list[int]:
    body = json.dumps({"email": "a@example.com", "password": "not the password"}).encode()
    statuses = []
    for value in forwarded:
        status, _, _ = served.request(
            head(
                "POST",
                "/api/auth/sign-in/email",
                "Content-Type: application/json",
                f"Content-Length: {len(body)}",
                f"X-Forwarded-For: {value}",
            ),
            body,
        )
        statuses.append(status)
    return statuses


def test_forged_forwarded_for_from_loopback_does_not_bypass_limits() -> None:
    """TRUSTED_PROXY_HOPS=0: X-Forwarded-For is a lie even from 127.0.0.1 (uvicorn's
    proxy_headers trusted it there and every forged value was a new client)."""
    limits = {
        "rate_limit_enabled": True,
        "rate_limit_sign_in": "2/minute",
        "rate_limit_sign_in_email": "100/minute",
        "trusted_proxy_hops": 0,
    }
    with serving(**limits) as served:
        statuses = sign_in_statuses(served, [f"198.51.100.{i}" for i in range(4)])
    assert statuses == [401, 401, 429, 429]


def test_forwarded_for_counts_behind_a_trusted_proxy() -> None:
    """TRUSTED_PROXY_HOPS=1: the entry the proxy appended is the client (the app's logic)."""
    limits = {
        "rate_limit_enabled": True,
        "rate_limit_sign_in": "2/minute",
        "rate_limit_sign_in_email": "100/minute",
        "trusted_proxy_hops": 1,
    }
    with serving(**limits) as served:
        statuses = sign_in_statuses(served, [f"6.6.6.6, 198.51.100.{i}" for i in range(4)])
        assert statuses == [401] * 4
        same = sign_in_statuses(served, ["6.6.6.6, 198.51.100.9"] * 3)
        assert same == [401, 401, 429]
