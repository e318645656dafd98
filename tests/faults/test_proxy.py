"""The fault-injection proxy: every mode against an echo server and the real PostgreSQL."""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import psycopg2
import pytest
from sqlalchemy import make_url

from faults.proxy import FaultProxy, Mode
from postgres import base_url

WAIT = 0.2  # how long "never answers" is watched for


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server: EchoServer = self.server  # type: ignore[assignment]
        with server.lock:
            server.accepted += 1
        while data := self.request.recv(65536):
            self.request.sendall(data)


class EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Echo)
        self.accepted = 0
        self.lock = threading.Lock()

    @property
    def port(self) -> int:
        port: int = self.server_address[1]
        return port


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def proxy(echo: EchoServer) -> Iterator[FaultProxy]:
    with FaultProxy("127.0.0.1", echo.port) as started:
        yield started


def connect(proxy: FaultProxy) -> socket.socket:
    client = socket.create_connection(proxy.address, timeout=2)
    client.settimeout(2)
    return client


def round_trip(client: socket.socket, data: bytes = b"ping") -> bytes:
    client.sendall(data)
    received = b""
    while len(received) < len(data):
        chunk = client.recv(65536)
        if not chunk:
            break
        received += chunk
    return received


def assert_silent(client: socket.socket) -> None:
    client.settimeout(WAIT)
    with pytest.raises(TimeoutError):
        client.recv(65536)
    client.settimeout(2)


def assert_reset(client: socket.socket) -> None:
    with pytest.raises((ConnectionResetError, BrokenPipeError)):
        round_trip(client)


def assert_new_connections_reset(proxy: FaultProxy) -> None:
    # The RST may come before connect() has returned, or after.
    with pytest.raises((ConnectionResetError, BrokenPipeError)), connect(proxy) as client:
        round_trip(client)


def test_pass_forwards_both_ways(proxy: FaultProxy) -> None:
    assert proxy.mode is Mode.PASS
    with connect(proxy) as client:
        assert round_trip(client, b"hello") == b"hello"
        assert round_trip(client, b"x" * 200_000) == b"x" * 200_000


def test_only_loopback_is_used(echo: EchoServer) -> None:
    for host in ("10.0.0.1", "0.0.0.0", "example.com"):
        with pytest.raises(ValueError, match="loopback"):
            FaultProxy(host, echo.port)
    with FaultProxy("localhost", echo.port) as proxy, connect(proxy) as client:
        assert proxy.host == "127.0.0.1"
        assert client.getpeername() == proxy.address
        assert round_trip(client) == b"ping"


def test_refuse_closes_the_port_and_resets_open_connections(proxy: FaultProxy) -> None:
    with connect(proxy) as open_client:
        assert round_trip(open_client) == b"ping"
        proxy.refuse()
        assert_reset(open_client)
    with pytest.raises(ConnectionRefusedError):
        connect(proxy)
    proxy.pass_through()  # listens again on the same port
    with connect(proxy) as client:
        assert round_trip(client) == b"ping"


def test_blackhole_accepts_and_never_answers_nor_forwards(
    proxy: FaultProxy, echo: EchoServer
) -> None:
    proxy.blackhole()
    with connect(proxy) as client:
        client.sendall(b"anyone?")
        assert_silent(client)
    assert echo.accepted == 0


def test_blackhole_hangs_open_connections_until_it_heals(proxy: FaultProxy) -> None:
    with connect(proxy) as client:
        assert round_trip(client) == b"ping"
        proxy.blackhole()
        client.sendall(b"held")
        assert_silent(client)
        proxy.pass_through()
        assert client.recv(65536) == b"held"


def test_reset_resets_new_and_open_connections(proxy: FaultProxy) -> None:
    with connect(proxy) as open_client:
        assert round_trip(open_client) == b"ping"
        proxy.reset()
        assert_reset(open_client)
    assert_new_connections_reset(proxy)
    proxy.pass_through()
    with connect(proxy) as client:
        assert round_trip(client) == b"ping"


def test_latency_delays_replies_on_open_connections(proxy: FaultProxy) -> None:
    with connect(proxy) as client:
        assert round_trip(client) == b"ping"
        proxy.latency(WAIT)
        assert (proxy.mode, proxy.delay) == (Mode.LATENCY, WAIT)
        started = time.monotonic()
        assert round_trip(client) == b"ping"
        assert time.monotonic() - started >= WAIT
        proxy.pass_through()
        started = time.monotonic()
        assert round_trip(client) == b"ping"
        assert time.monotonic() - started < WAIT
    with pytest.raises(ValueError, match="negative"):
        proxy.latency(-1)


def test_an_upstream_that_refuses_resets_the_client(echo: EchoServer) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    with FaultProxy("127.0.0.1", closed_port) as proxy:
        assert_new_connections_reset(proxy)


def test_stop_releases_the_port_and_is_idempotent(echo: EchoServer) -> None:
    proxy = FaultProxy("127.0.0.1", echo.port).start()
    address = proxy.address
    held = connect(proxy)
    proxy.stop()
    proxy.stop()
    with held:
        assert_reset(held)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(address, timeout=2)
    with pytest.raises(RuntimeError, match="not started"):
        proxy.blackhole()


async def test_usable_from_async_tests(echo: EchoServer) -> None:
    async with FaultProxy("127.0.0.1", echo.port) as proxy:
        reader, writer = await asyncio.open_connection(*proxy.address)
        writer.write(b"ping")
        assert await reader.readexactly(4) == b"ping"
        proxy.blackhole()
        writer.write(b"held")
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(WAIT):
                await reader.read(4)
        proxy.reset()
        with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError)):
            await reader.readexactly(4)
        writer.close()
        with pytest.raises(ConnectionResetError):
            await writer.wait_closed()


@pytest.fixture
def pg_proxy() -> Iterator[FaultProxy]:
    url = make_url(base_url())
    with FaultProxy(url.host or "127.0.0.1", url.port or 5432) as started:
        yield started


def pg_connect(proxy: FaultProxy) -> psycopg2.extensions.connection:
    url = make_url(base_url())
    return psycopg2.connect(
        host=proxy.host,
        port=proxy.port,
        user=url.username,
        password=url.password,
        dbname=url.database,
        connect_timeout=1,
    )


def select_one(connection: psycopg2.extensions.connection) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        row = cursor.fetchone()
    assert row is not None
    value: int = row[0]
    return value


@pytest.mark.postgres
def test_postgres_through_the_proxy(pg_proxy: FaultProxy) -> None:
    connection = pg_connect(pg_proxy)
    try:
        assert select_one(connection) == 1
    finally:
        connection.close()


@pytest.mark.postgres
def test_postgres_refused_fails_at_once(pg_proxy: FaultProxy) -> None:
    pg_proxy.refuse()
    started = time.monotonic()
    with pytest.raises(psycopg2.OperationalError, match="refused"):
        pg_connect(pg_proxy)
    assert time.monotonic() - started < 0.5


@pytest.mark.postgres
def test_postgres_blackholed_connect_times_out(pg_proxy: FaultProxy) -> None:
    pg_proxy.blackhole()
    started = time.monotonic()
    with pytest.raises(psycopg2.OperationalError, match="timeout"):
        pg_connect(pg_proxy)
    assert time.monotonic() - started < 3  # libpq may round 1 second up to 2


@pytest.mark.postgres
def test_postgres_pooled_connection_hangs_in_a_blackhole_then_resumes(
    pg_proxy: FaultProxy,
) -> None:
    connection = pg_connect(pg_proxy)
    try:
        assert select_one(connection) == 1
        pg_proxy.blackhole()
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            query = pool.submit(select_one, connection)
            with pytest.raises(concurrent.futures.TimeoutError):
                query.result(timeout=WAIT)
            pg_proxy.pass_through()
            assert query.result(timeout=5) == 1
    finally:
        connection.close()


@pytest.mark.postgres
def test_postgres_reset_breaks_pooled_connections(pg_proxy: FaultProxy) -> None:
    connection = pg_connect(pg_proxy)
    try:
        assert select_one(connection) == 1
        pg_proxy.reset()
        with pytest.raises(psycopg2.OperationalError):
            select_one(connection)
        assert connection.closed
    finally:
        connection.close()
