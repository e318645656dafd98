"""Running the app under uvicorn with a graceful shutdown: on SIGTERM/SIGINT the
app is marked draining at once (so /health/ready turns 503 while in-flight
requests and streams finish, within ``grace`` seconds), then the lifespan closes
everything (flushing pending writes).

Hostile clients are bounded here, where the sockets are (issue 14, items 3-5):

- a request's line and headers are at most ``max_header_bytes`` (431) and must arrive
  within ``head_timeout`` seconds of the connection, or of the request's first byte on
  a kept-alive connection (408; a connection that sent nothing is just closed);
- a request body must arrive within ``body_timeout`` seconds of its headers (408 when
  no answer has started, else the connection is closed);
- at most ``max_connections`` connections are open: one more is answered 503 and closed
  at once, and uvicorn's ``limit_concurrency`` caps requests in flight to the same;
- idle kept-alive connections close after ``keep_alive`` seconds (uvicorn's own timer).

uvicorn has no head or body deadline, and its httptools parser no head bound (the
h11 parser has one, ``h11_max_incomplete_event_size``, and costs about twice the
CPU), so :func:`bounded_protocol` adds them to uvicorn's httptools protocol.

``proxy_headers`` is off: uvicorn would otherwise take the client address from
``X-Forwarded-For`` of any peer in ``FORWARDED_ALLOW_IPS`` (loopback by default), even
with ``TRUSTED_PROXY_HOPS=0``. The app's ``client_address`` (rate_limit.py) is the one
place that reads the header, as the settings say.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import socket
from collections.abc import Callable
from types import FrameType
from typing import Any

import attrs
import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from adapters.settings import Settings

GRACE_SECONDS = 20

log = logging.getLogger(__name__)


@attrs.frozen
class ConnectionLimits:
    """What one connection may cost; the defaults are the settings' defaults."""

    max_header_bytes: int = 16 * 1024
    head_timeout: float = 10.0
    body_timeout: float = 60.0
    keep_alive: int = 5
    max_connections: int = 1000

    @classmethod
    def of(cls, settings: Settings) -> ConnectionLimits:
        return cls(
            max_header_bytes=settings.max_header_bytes,
            head_timeout=settings.request_head_timeout,
            body_timeout=settings.request_body_timeout,
            keep_alive=settings.keep_alive_timeout,
            max_connections=settings.max_connections,
        )


LINGER_SECONDS = 2.0
"""After refusing a request whose client is still sending, how long the connection
stays half-closed, reading and discarding, before it closes: closing at once, with
its bytes unread, would reset the connection and the client might never read why."""


class _Refused(Exception):
    """Raised from a parser callback to stop parsing a request that was refused."""


def bounded_protocol(limits: ConnectionLimits) -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol with the head bound, the deadlines and the
    connection cap of ``limits``."""

    class BoundedHttpToolsProtocol(HttpToolsProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._in_head = True  # waiting for (the rest of) a request line and headers
            self._head_bytes = 0  # received while in the head
            self._head_timer: asyncio.TimerHandle | None = None
            self._body_timer: asyncio.TimerHandle | None = None
            self._refused = False
            self._lingering = False

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > limits.max_connections:
                log.warning("connection refused: %d open", len(self.connections) - 1)
                self._refuse(503, "the server has too many open connections: try again shortly")
                return
            self._head_timer = self.loop.call_later(limits.head_timeout, self._head_timed_out)

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_timers()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return  # lingering: discarded
            if self._in_head:
                if self._head_timer is None:  # the first byte of a kept-alive request
                    self._head_timer = self.loop.call_later(
                        limits.head_timeout, self._head_timed_out
                    )
                self._head_bytes += len(data)
            super().data_received(data)
            if self._in_head and self._head_bytes > limits.max_header_bytes:
                self._refuse(431, _too_large_head(limits))

        def on_headers_complete(self) -> None:
            self._in_head = False
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None
            size = len(self.url) + sum(len(n) + len(v) + 4 for n, v in self.headers)
            if size > limits.max_header_bytes:
                self._refuse(431, _too_large_head(limits))
                raise _Refused
            super().on_headers_complete()
            self.cycle.transport = _Lingering(self.transport, self._close)  # type: ignore[assignment]
            self._body_timer = self.loop.call_later(limits.body_timeout, self._body_timed_out)

        def on_message_complete(self) -> None:
            if self._body_timer is not None:
                self._body_timer.cancel()
                self._body_timer = None
            self._in_head, self._head_bytes = True, 0
            super().on_message_complete()

        def send_400_response(self, msg: str) -> None:
            if not self._refused:  # a refusal stops the parser with an error of its own
                super().send_400_response(msg)

        def _head_timed_out(self) -> None:
            self._head_timer = None
            if self.cycle is not None and not self.cycle.response_complete:
                # A pipelined request's head waits while the previous answer is written.
                self._head_timer = self.loop.call_later(limits.head_timeout, self._head_timed_out)
            elif self._head_bytes == 0:
                self._refused = True
                self._close()  # nothing was asked: nothing to answer
            else:
                seconds = f"{limits.head_timeout:g}"
                self._refuse(408, f"the request headers did not arrive within {seconds} seconds")

        def _body_timed_out(self) -> None:
            self._body_timer = None
            cycle = self.cycle
            seconds = f"{limits.body_timeout:g}"
            if cycle is not None and not cycle.response_started:
                cycle.disconnected = True  # the app reads a disconnect; its answer goes nowhere
                cycle.message_event.set()
                self._refuse(408, f"the request body did not arrive within {seconds} seconds")
            else:
                self._refused = True
                self._close()

        def _refuse(self, status: int, detail: str) -> None:
            """Answer ``status`` with ``{"detail": ...}`` and close the connection."""
            self._refused = True
            self._cancel_timers()
            if self.transport.is_closing():
                return
            body = json.dumps({"detail": detail}).encode()
            content = [STATUS_LINE[status]]
            for name, value in self.server_state.default_headers:
                content.extend([name, b": ", value, b"\r\n"])
            content.extend(
                [
                    b"content-type: application/json\r\n",
                    b"content-length: " + str(len(body)).encode() + b"\r\n",
                    b"connection: close\r\n\r\n",
                    body,
                ]
            )
            self.transport.write(b"".join(content))
            self._close()

        def _close(self) -> None:
            """Close; while the client may still be sending, half-close first and
            discard what it sends for up to LINGER_SECONDS."""
            if self.transport.is_closing() or self._lingering:
                return
            if (self._in_head and self._head_bytes == 0) or not self.transport.can_write_eof():
                self.transport.close()  # between requests: nothing is on its way
                return
            self._refused = self._lingering = True
            self._cancel_timers()
            self.transport.write_eof()
            self.flow.resume_reading()
            self.loop.call_later(LINGER_SECONDS, self.transport.close)

        def _cancel_timers(self) -> None:
            for timer in (self._head_timer, self._body_timer):
                if timer is not None:
                    timer.cancel()
            self._head_timer = self._body_timer = None

    return BoundedHttpToolsProtocol


class _Lingering:
    """The transport as a request's cycle sees it: its ``close`` lingers (see
    ``_close``) when the answer came before the whole request body."""

    def __init__(self, transport: asyncio.Transport, close: Any) -> None:
        self._transport = transport
        self.close = close

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def _too_large_head(limits: ConnectionLimits) -> str:
    return f"the request line and headers are larger than {limits.max_header_bytes} bytes"


class DrainingServer(uvicorn.Server):
    def __init__(
        self,
        app: FastAPI,
        host: str,
        port: int,
        grace: int = GRACE_SECONDS,
        limits: ConnectionLimits | None = None,
        on_started: Callable[[], None] | None = None,
    ) -> None:
        limits = limits or ConnectionLimits()
        super().__init__(
            uvicorn.Config(
                app,
                host=host,
                port=port,
                log_config=None,
                timeout_graceful_shutdown=grace,
                http=bounded_protocol(limits),
                ws="none",
                proxy_headers=False,
                # uvicorn refuses when len(connections) >= the limit, the asking one counted.
                limit_concurrency=limits.max_connections + 1,
                timeout_keep_alive=limits.keep_alive,
            )
        )
        self._app = app
        self._on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        # What start-up built (settings, the app, the corpus's lexical statistics, the
        # models' clients) lives as long as the process: out of the collector's sight,
        # a full collection no longer walks it (about 100 ms each, every few seconds
        # under load, measured at 50 users; bench/README.md, P14).
        gc.freeze()
        if self._on_started is not None:  # the app has started and its sockets listen
            self._on_started()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._app.state.draining = True
        super().handle_exit(sig, frame)


def serve(
    app: FastAPI,
    host: str,
    port: int,
    limits: ConnectionLimits | None = None,
    sockets: list[socket.socket] | None = None,
    *,
    on_started: Callable[[], None] | None = None,
) -> None:
    """Serve ``app`` until SIGTERM/SIGINT, on ``host:port`` or on ``sockets`` (bound,
    listened on once the app has started: a worker's, ``entrypoints.workers``);
    ``on_started`` is called once it listens."""
    DrainingServer(app, host, port, limits=limits, on_started=on_started).run(sockets=sockets)
