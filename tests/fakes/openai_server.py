"""An OpenAI-compatible fake server: real HTTP on loopback, in a background thread.

    with FakeOpenAI(dimension=32) as fake:
        client = build_openai_client("sk-test", fake.base_url)
        ...
        assert fake.requests["embeddings"] == 3

Endpoints: ``POST /v1/embeddings`` (hash-derived unit vectors, float or base64),
``POST /v1/chat/completions`` (JSON, or SSE chunks in OpenAI's exact format ending
with ``data: [DONE]``, usage last when ``stream_options.include_usage``),
``GET /v1/models`` and ``/v1/models/{id}``.

Replies: ``script(*replies)`` queues replies; otherwise ``reply`` (a function of
the request's messages, as dicts) answers, by default :func:`cite_first_passage`.
Knobs (attributes, change them any time): ``first_byte_latency`` (chat, before the
status line), ``token_delay`` (between streamed chunks), ``embedding_latency``,
``max_input_chars`` (longer embedding inputs get OpenAI's 400), ``api_key`` (when
set, other keys get 401). Faults: ``fail_next`` answers the next requests with an
error status (and Retry-After), ``drop_next_stream`` cuts a stream after some
tokens. Observations: ``requests`` and ``max_concurrent`` per endpoint
(``embeddings``, ``chat``, ``models``), ``inputs`` embedded, ``bodies`` received,
``streams`` (tokens sent, completed, whether the client disconnected).

As its own process (for benchmarks), from the ``tests`` folder:
``python -m fakes.openai_server --port 8001 --first-byte-latency 0.3 --token-delay 0.02``.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from types import TracebackType
from typing import Any

from fakes.openai_content import cite_first_passage
from fakes.openai_handler import Handler
from fakes.openai_records import Fault, StreamRecord

Reply = Callable[[list[dict[str, Any]]], str]


@dataclass
class FakeOpenAI:
    """The fake server (see the module docstring). Thread-safe: tests change knobs and
    read counters from the event loop while handler threads serve requests."""

    dimension: int = 64
    host: str = "127.0.0.1"
    port: int = 0
    api_key: str | None = None
    first_byte_latency: float = 0.0
    token_delay: float = 0.0
    embedding_latency: float = 0.0
    max_input_chars: int = 8192
    reply: Reply = cite_first_passage
    models: list[str] = field(default_factory=lambda: ["gpt-4o-mini", "text-embedding-3-small"])

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.requests: Counter[str] = Counter()
        self.max_concurrent: Counter[str] = Counter()
        self.in_flight: Counter[str] = Counter()
        self.inputs = 0
        self.bodies: list[tuple[str, dict[str, Any]]] = []
        self.streams: list[StreamRecord] = []
        self.scripted: deque[str] = deque()
        self.faults: deque[Fault] = deque()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> FakeOpenAI:
        server = _Server((self.host, self.port), Handler)
        server.fake = self
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()  # wakes handlers sleeping in a latency
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    # -- scripting -----------------------------------------------------------------

    def script(self, *replies: str) -> None:
        """Answer the next chat requests with these replies, in order."""
        with self.lock:
            self.scripted.extend(replies)

    def fail_next(
        self,
        status: int,
        times: int = 1,
        *,
        retry_after: str | None = None,
        message: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        endpoint: str | None = None,
    ) -> None:
        """Answer the next ``times`` requests (to ``endpoint``, or any) with ``status``,
        an OpenAI error body (``message``, ``code``) and the given headers.
        ``message`` may contain ``{api_key}``: the key the request carried."""
        fault = Fault(status, endpoint, retry_after, message, code, dict(headers or {}))
        with self.lock:
            self.faults.extend([fault] * times)

    def drop_next_stream(self, after_tokens: int, times: int = 1) -> None:
        """Cut the next streams after ``after_tokens`` content chunks, without [DONE]."""
        with self.lock:
            for _ in range(times):
                self.faults.append(Fault(None, "chat", after_tokens=after_tokens))

    def wait_until(self, condition: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Poll ``condition`` until true or ``timeout`` (blocks the calling thread)."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a handler sleeping in a latency must not block shutdown
    request_queue_size = 128
    fake: FakeOpenAI

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that went away mid-response is an expected event, not a failure;
        # anything else is a bug in the fake, printed to stderr.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a fake OpenAI-compatible API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--dimension", type=int, default=1536)
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--first-byte-latency", type=float, default=0.0)
    parser.add_argument("--token-delay", type=float, default=0.0)
    parser.add_argument("--embedding-latency", type=float, default=0.0)
    args = parser.parse_args(argv)
    fake = FakeOpenAI(
        dimension=args.dimension,
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        first_byte_latency=args.first_byte_latency,
        token_delay=args.token_delay,
        embedding_latency=args.embedding_latency,
    )
    signal.signal(signal.SIGTERM, lambda signum, frame: fake.stopping.set())
    with fake:
        print(f"fake OpenAI serving on {fake.base_url}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            fake.stopping.wait()


if __name__ == "__main__":
    main()
