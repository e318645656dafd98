"""A closed-loop load generator: ``--concurrency`` users, each sending its next request
as soon as the previous one is answered, for ``--duration`` seconds (after
``--warmup`` seconds that are not recorded), or until ``--max-requests``.

Run it as its own process (the scenarios in bench/run.py do)::

    python -m bench.loadgen --url http://127.0.0.1:8080/health --concurrency 64 --duration 10

and it prints one JSON summary on stdout: requests, errors (by kind), throughput,
latency p50/p95/p99/max in ms, overhead (latency - ``--injected`` upstream seconds),
and with ``--stream`` the time to first byte and to the first ``delta`` event (and
its overhead over ``--injected-first-token``). Answers' ``mode`` values are counted
(a chat answer that fell back to ``extractive`` did not wait for the model).
``throughput_rps`` counts the requests both started and answered in the window: with a
latency L of the order of the window it reads about (1 - L / window) of the closed loop's
rate; ``completions_rps`` counts every answer that arrived in the window, whenever it was
sent (N / L in steady state: the figure to hold against the ideal N / L).

Engines: ``httpx`` (default; one AsyncClient, with one keep-alive connection, per user) and
``raw`` (a minimal HTTP/1.1 keep-alive client on asyncio streams, Content-Length
bodies only): several times cheaper per request, for endpoints so fast that httpx
itself would be the bottleneck (``/health``).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import resource
import ssl
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

_MODE_MARK = b'"mode":'


@dataclass(slots=True)
class Sample:
    started: float
    ended: float
    status: int
    error: str | None = None
    ttfb: float | None = None
    first_delta: float | None = None
    mode: str | None = None

    @property
    def latency(self) -> float:
        return self.ended - self.started


def pct(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    if len(values) == 1:
        return values[0]
    k = (len(values) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def summary_ms(values: list[float], minus: float = 0.0) -> dict[str, float]:
    ordered = sorted((v - minus) * 1000 for v in values)
    if not ordered:
        return {}
    return {
        "p50": round(pct(ordered, 50), 2),
        "p95": round(pct(ordered, 95), 2),
        "p99": round(pct(ordered, 99), 2),
        "max": round(ordered[-1], 2),
        "mean": round(sum(ordered) / len(ordered), 2),
    }


def _mode_of(body: bytes) -> str | None:
    at = body.rfind(_MODE_MARK)
    if at < 0:
        return None
    rest = body[at + len(_MODE_MARK) :].lstrip()
    if rest.startswith(b'"'):
        end = rest.find(b'"', 1)
        return rest[1:end].decode(errors="replace") if end > 0 else None
    return None


class Bodies:
    """The request bodies, in rotation (one JSON document per line in a file, or one)."""

    def __init__(self, body: str | None, bodies_file: str | None) -> None:
        items: list[bytes] = []
        if bodies_file:
            with open(bodies_file, encoding="utf-8") as handle:
                items = [line.strip().encode() for line in handle if line.strip()]
        elif body is not None:
            items = [body.encode()]
        self._cycle: Iterator[bytes | None] = (
            itertools.cycle(items) if items else itertools.repeat(None)
        )

    def next(self) -> bytes | None:
        return next(self._cycle)


class Run:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.samples: list[Sample] = []
        self.bodies = Bodies(args.body, args.bodies_file)
        self.headers = dict(h.split(":", 1) for h in args.header)
        self.headers = {k.strip(): v.strip() for k, v in self.headers.items()}
        self.sent = 0
        self.t0 = 0.0
        self.cpu0 = 0.0
        self.measure_from = 0.0
        self.stop_at = 0.0
        self.completed = 0  # answered (no error) inside the window, whenever started

    def may_send(self) -> bool:
        if time.perf_counter() >= self.stop_at:
            return False
        if self.args.max_requests and self.sent >= self.args.max_requests:
            return False
        self.sent += 1
        return True

    def record(self, sample: Sample) -> None:
        if sample.error is None and self.measure_from <= sample.ended <= self.stop_at:
            self.completed += 1
        if sample.started >= self.measure_from:
            self.samples.append(sample)

    async def main(self) -> dict[str, Any]:
        args = self.args
        usage = resource.getrusage(resource.RUSAGE_SELF)
        self.cpu0 = usage.ru_utime + usage.ru_stime
        self.t0 = time.perf_counter()
        self.measure_from = self.t0 + args.warmup
        self.stop_at = self.measure_from + args.duration
        if args.engine == "raw":
            users = [self.raw_user() for _ in range(args.concurrency)]
            await asyncio.gather(*users)
        else:
            # One client (one connection) per user: httpcore's pool scans every
            # connection on each request (O(n) per request, O(n^2) per round), which
            # at 64+ connections makes a shared client the bottleneck. One TLS
            # context for all: building one costs ~50 ms.
            tls = ssl.create_default_context()
            limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
            timeout = httpx.Timeout(args.timeout, connect=min(args.timeout, 30.0))
            clients = [
                httpx.AsyncClient(limits=limits, timeout=timeout, verify=tls, trust_env=False)
                for _ in range(args.concurrency)
            ]
            try:
                await asyncio.gather(*(self.httpx_user(c) for c in clients))
            finally:
                await asyncio.gather(*(c.aclose() for c in clients))
        ended = time.perf_counter()
        result = self.report(ended)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        result["loadgen_cpu_percent"] = round(
            100 * (usage.ru_utime + usage.ru_stime - self.cpu0) / max(ended - self.t0, 1e-9), 1
        )
        return result

    async def httpx_user(self, client: httpx.AsyncClient) -> None:
        args = self.args
        headers = {"content-type": "application/json", **self.headers}
        while self.may_send():
            body = self.bodies.next()
            started = time.perf_counter()
            sample = Sample(started, started, 0)
            try:
                if args.stream:
                    await self._stream(client, body, headers, sample)
                else:
                    response = await client.request(
                        args.method, args.url, content=body, headers=headers
                    )
                    sample.status = response.status_code
                    sample.mode = _mode_of(response.content[-400:])
                    if response.status_code >= 400:
                        sample.error = f"status {response.status_code}"
            except (httpx.HTTPError, OSError) as exc:
                sample.error = type(exc).__name__
            sample.ended = time.perf_counter()
            self.record(sample)
            if sample.error and sample.status == 0:
                await asyncio.sleep(0.01)  # a refused connection must not spin

    async def _stream(
        self, client: httpx.AsyncClient, body: bytes | None, headers: dict[str, str], sample: Sample
    ) -> None:
        started = sample.started
        tail = b""
        saw_done = saw_error = False
        async with client.stream(
            self.args.method, self.args.url, content=body, headers=headers
        ) as r:
            sample.status = r.status_code
            async for chunk in r.aiter_raw():
                now = time.perf_counter()
                if sample.ttfb is None:
                    sample.ttfb = now - started
                window = tail + chunk
                if sample.first_delta is None and b"event: delta" in window:
                    sample.first_delta = now - started
                if b"event: done" in window:
                    saw_done = True
                if b"event: error" in window:
                    saw_error = True
                if _MODE_MARK in window:
                    sample.mode = _mode_of(window) or sample.mode
                tail = window[-512:]
        if r.status_code >= 400:
            sample.error = f"status {r.status_code}"
        elif saw_error:
            sample.error = "error event"
        elif not saw_done:
            sample.error = "stream incomplete"

    async def raw_user(self) -> None:
        """One keep-alive connection; reconnects after an error."""
        args = self.args
        parts = urlsplit(args.url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        extra = "".join(f"{k}: {v}\r\n" for k, v in self.headers.items())
        while self.may_send():
            body = self.bodies.next()
            head = f"{args.method} {target} HTTP/1.1\r\nHost: {host}:{port}\r\n{extra}"
            if body is not None:
                head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            request = head.encode() + b"\r\n" + (body or b"")
            started = time.perf_counter()
            sample = Sample(started, started, 0)
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(host, port)
                assert reader is not None
                writer.write(request)
                async with asyncio.timeout(args.timeout):
                    status_line = await reader.readuntil(b"\r\n")
                    sample.status = int(status_line.split(b" ", 2)[1])
                    headers = await reader.readuntil(b"\r\n\r\n")
                    length = 0
                    close = False
                    for line in headers.split(b"\r\n"):
                        name, _, value = line.partition(b":")
                        lname = name.strip().lower()
                        if lname == b"content-length":
                            length = int(value)
                        elif lname == b"transfer-encoding":
                            raise ValueError("chunked bodies are not supported by the raw engine")
                        elif lname == b"connection" and value.strip().lower() == b"close":
                            close = True
                    content = await reader.readexactly(length) if length else b""
                sample.mode = _mode_of(content[-400:])
                if sample.status >= 400:
                    sample.error = f"status {sample.status}"
                if close:
                    writer.close()
                    reader = writer = None
            except (
                OSError,
                asyncio.IncompleteReadError,
                asyncio.LimitOverrunError,
                TimeoutError,
                ValueError,
            ) as exc:
                sample.error = type(exc).__name__
                if writer is not None:
                    writer.close()
                reader = writer = None
            sample.ended = time.perf_counter()
            self.record(sample)
            if sample.error and sample.status == 0:
                await asyncio.sleep(0.01)
        if writer is not None:
            writer.close()

    def report(self, ended: float) -> dict[str, Any]:
        args = self.args
        samples = self.samples
        window_end = min(self.stop_at, ended)
        window = max(window_end - self.measure_from, 1e-9)
        ok = [s for s in samples if s.error is None]
        done_in_window = sum(1 for s in ok if s.ended <= window_end)
        errors = Counter(s.error for s in samples if s.error)
        result: dict[str, Any] = {
            "url": args.url,
            "method": args.method,
            "engine": args.engine,
            "concurrency": args.concurrency,
            "duration_s": round(window, 2),
            "requests": len(samples),
            "ok": len(ok),
            "errors": sum(errors.values()),
            "error_kinds": dict(errors),
            "throughput_rps": round(done_in_window / window, 1),
            "completions_rps": round(self.completed / window, 1),
            "latency_ms": summary_ms([s.latency for s in ok]),
            "modes": dict(Counter(s.mode for s in ok if s.mode)),
        }
        if args.injected:
            result["injected_ms"] = round(args.injected * 1000, 1)
            result["overhead_ms"] = summary_ms([s.latency for s in ok], minus=args.injected)
        if args.stream:
            result["ttfb_ms"] = summary_ms([s.ttfb for s in ok if s.ttfb is not None])
            deltas = [s.first_delta for s in ok if s.first_delta is not None]
            result["first_delta_ms"] = summary_ms(deltas)
            if args.injected_first_token:
                result["injected_first_token_ms"] = round(args.injected_first_token * 1000, 1)
                result["first_delta_overhead_ms"] = summary_ms(
                    deltas, minus=args.injected_first_token
                )
        return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--url", required=True)
    p.add_argument("--method", default="GET")
    p.add_argument("--body", help="JSON request body")
    p.add_argument("--bodies-file", help="JSON bodies, one a line, sent in rotation")
    p.add_argument("--header", action="append", default=[], help="'Name: value' (repeatable)")
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--duration", type=float, default=10.0, help="recorded seconds")
    p.add_argument("--warmup", type=float, default=1.0, help="unrecorded seconds first")
    p.add_argument("--max-requests", type=int, default=0, help="0: no bound but the duration")
    p.add_argument("--timeout", type=float, default=30.0, help="per request, seconds")
    p.add_argument("--engine", choices=["httpx", "raw"], default="httpx")
    p.add_argument("--stream", action="store_true", help="read Server-Sent Events")
    p.add_argument("--injected", type=float, default=0.0, help="upstream seconds per request")
    p.add_argument(
        "--injected-first-token", type=float, default=0.0, help="upstream seconds to first token"
    )
    args = p.parse_args(argv)
    if not 1 <= args.concurrency <= 2000:
        p.error("--concurrency must be 1..2000")
    if not 0 < args.duration <= 600:
        p.error("--duration must be in (0, 600]")
    if args.stream and args.engine == "raw":
        p.error("--stream needs the httpx engine")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    result = asyncio.run(Run(args).main())
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
