"""A fault-injection TCP proxy for tests, between the service and one dependency.

``FaultProxy(upstream_host, upstream_port)`` listens on 127.0.0.1 (an ephemeral port)
and forwards to the upstream, in a background thread with its own event loop, so sync
and async tests drive it alike::

    with FaultProxy("127.0.0.1", 5432) as proxy:
        url = f"postgresql://postgres@127.0.0.1:{proxy.port}/postgres"
        proxy.blackhole()   # in effect, on every open connection, when this returns
        proxy.pass_through()

Modes (see :class:`Mode`) apply to open connections too, so a pooled connection
fails the way it would in production instead of going on working. It only ever
listens on loopback and only forwards to loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import ipaddress
import socket
import struct
import threading
from types import TracebackType

LOOPBACK = "127.0.0.1"
_CHUNK = 64 * 1024
_CONTROL_TIMEOUT = 5.0


class Mode(enum.StrEnum):
    """What the proxy does with traffic.

    - ``pass``: forward both ways.
    - ``refuse``: the listening socket is closed (new clients get connection
      refused) and open connections are reset, as when the dependency's host is down.
      Leaving it listens again on the same port.
    - ``blackhole``: accept and never answer; nothing is forwarded either way and
      open connections hang. Data is held, not dropped: after ``pass`` it flows on,
      like a network partition that heals before TCP gives up.
    - ``reset``: open connections and every new one are reset (RST) at once.
    - ``latency``: forward, but every chunk from the upstream reaches the client
      ``delay`` seconds after it arrived (a request/response round trip takes that
      much longer; chunks are pipelined, not serialised).
    """

    PASS = "pass"
    REFUSE = "refuse"
    BLACKHOLE = "blackhole"
    RESET = "reset"
    LATENCY = "latency"


class FaultProxy:
    """An asyncio TCP proxy whose mode can be changed at run time (thread-safe)."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        if not _is_loopback(upstream_host):
            raise ValueError(f"the proxy only forwards to loopback, not {upstream_host!r}")
        self._upstream = (upstream_host, upstream_port)
        self._mode = Mode.PASS
        self._delay = 0.0
        self._port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._flowing: asyncio.Event | None = None
        self._links: set[_Link] = set()

    @property
    def host(self) -> str:
        return LOOPBACK

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("the proxy is not started")
        return self._port

    @property
    def address(self) -> tuple[str, int]:
        return (LOOPBACK, self.port)

    @property
    def mode(self) -> Mode:
        return self._mode

    @property
    def delay(self) -> float:
        return self._delay

    def start(self) -> FaultProxy:
        if self._loop is not None:
            raise RuntimeError("the proxy is already started")
        loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=loop.run_forever, name="fault-proxy", daemon=True)
        self._loop = loop
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._startup(), loop).result(_CONTROL_TIMEOUT)
        return self

    def stop(self) -> None:
        """Reset every connection, stop listening and end the thread (idempotent)."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(_CONTROL_TIMEOUT)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(_CONTROL_TIMEOUT)
            loop.close()
            self._loop = self._thread = None

    def pass_through(self) -> None:
        self._control(Mode.PASS)

    def refuse(self) -> None:
        self._control(Mode.REFUSE)

    def blackhole(self) -> None:
        self._control(Mode.BLACKHOLE)

    def reset(self) -> None:
        self._control(Mode.RESET)

    def latency(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("latency cannot be negative")
        self._control(Mode.LATENCY, seconds)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> FaultProxy:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.stop)

    def _control(self, mode: Mode, delay: float = 0.0) -> None:
        if self._loop is None:
            raise RuntimeError("the proxy is not started")
        if threading.current_thread() is self._thread:
            raise RuntimeError("control the proxy from outside its own thread")
        future = asyncio.run_coroutine_threadsafe(self._apply(mode, delay), self._loop)
        future.result(_CONTROL_TIMEOUT)

    # Everything below runs on the proxy's own loop.

    async def _startup(self) -> None:
        self._mode, self._delay = Mode.PASS, 0.0
        self._flowing = asyncio.Event()
        self._flowing.set()
        await self._listen()

    async def _shutdown(self) -> None:
        self._mode = Mode.REFUSE
        await self._close_listener()
        # A connection the listener accepted just before closing gets its handler a
        # few loop turns later (which then resets it, the mode being REFUSE): wait for
        # every task, so no socket outlives the loop.
        current = asyncio.current_task()
        while True:
            await asyncio.sleep(0)  # let accepts already dispatched by the selector run
            others = [task for task in asyncio.all_tasks() if task is not current]
            if not others and not self._links:
                break
            for link in list(self._links):
                link.reset()
            await asyncio.gather(*others, return_exceptions=True)
        await asyncio.sleep(0)  # let the aborted transports close their sockets

    async def _apply(self, mode: Mode, delay: float) -> None:
        self._mode, self._delay = mode, delay
        if mode is Mode.REFUSE:
            await self._close_listener()
        else:
            await self._listen()
        if mode in (Mode.REFUSE, Mode.RESET):
            await self._reset_links()
        assert self._flowing is not None
        if mode is Mode.BLACKHOLE:
            self._flowing.clear()
        else:
            self._flowing.set()

    async def _listen(self) -> None:
        if self._server is not None:
            return
        self._server = await asyncio.start_server(
            self._accept, LOOPBACK, self._port, reuse_address=True
        )
        self._port = self._server.sockets[0].getsockname()[1]

    async def _close_listener(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        # Python 3.11's Server leaks a socket it accepted but had not yet wrapped in a
        # transport when it closes: stop accepting, let those accepts finish (one loop
        # turn to run, one to build the transport), then close the listening socket.
        loop = asyncio.get_running_loop()
        for sock in server.sockets:
            loop.remove_reader(sock.fileno())
        for _ in range(3):
            await asyncio.sleep(0)
        server.close()

    async def _reset_links(self) -> None:
        links = list(self._links)
        for link in links:
            link.reset()
        await asyncio.gather(*(link.task for link in links), return_exceptions=True)
        await asyncio.sleep(0)  # let the aborted transports close their sockets

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A plain callback, not a coroutine: the handler task is ours to cancel.
        link = _Link(writer)
        link.task = asyncio.get_running_loop().create_task(self._serve(link, reader))
        self._links.add(link)
        link.task.add_done_callback(lambda _: self._links.discard(link))

    async def _serve(self, link: _Link, client: asyncio.StreamReader) -> None:
        try:
            if self._mode in (Mode.REFUSE, Mode.RESET):
                link.reset()
                return
            assert self._flowing is not None
            await self._flowing.wait()  # a black hole never connects upstream
            try:
                upstream, link.upstream = await asyncio.open_connection(*self._upstream)
            except OSError:
                link.reset()  # the dependency itself refused: so does the proxy
                return
            async with asyncio.TaskGroup() as group:
                group.create_task(self._pump(client, link.upstream, delayed=False))
                group.create_task(self._pump(upstream, link.client, delayed=True))
        except Exception:
            link.reset()  # one side failed: the other sees a reset, as through a broken path
        finally:
            link.close()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, delayed: bool
    ) -> None:
        loop = asyncio.get_running_loop()
        chunks: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue(maxsize=64)

        async def receive() -> None:
            while data := await reader.read(_CHUNK):
                await chunks.put((loop.time(), data))
            await chunks.put(None)

        async def send() -> None:
            while (item := await chunks.get()) is not None:
                received_at, data = item
                await self._hold(received_at if delayed else None)
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()

        async with asyncio.TaskGroup() as group:
            group.create_task(receive())
            group.create_task(send())

    async def _hold(self, received_at: float | None) -> None:
        """Wait while black-holed, and until ``received_at + delay`` when delayed."""
        assert self._flowing is not None
        loop = asyncio.get_running_loop()
        while True:
            await self._flowing.wait()
            wait = 0.0 if received_at is None else received_at + self._delay - loop.time()
            if wait <= 0:
                return
            await asyncio.sleep(wait)  # then check again: the mode may have changed


class _Link:
    """One client connection and, once made, its upstream connection."""

    def __init__(self, client: asyncio.StreamWriter) -> None:
        self.client = client
        self.upstream: asyncio.StreamWriter | None = None
        self.task: asyncio.Task[None]

    def reset(self) -> None:
        """Abort both sides with an RST and stop forwarding."""
        for writer in (self.client, self.upstream):
            if writer is not None:
                _abort_with_rst(writer)
        if self.task is not asyncio.current_task():
            self.task.cancel()

    def close(self) -> None:
        for writer in (self.client, self.upstream):
            if writer is not None:
                writer.close()


def _abort_with_rst(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None and sock.fileno() != -1:
        # Linger on with a zero timeout: close() then sends RST, not FIN.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
