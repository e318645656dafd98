"""Hostile clients against the real service (issue 14, items 3-5): huge bodies and
heads, slow heads and bodies, forged X-Forwarded-For. Raw sockets on loopback.

- bodies: 200 MB to /chat (with Content-Length, and chunked), 4 x 100 MB to /ingest
  without a key at once, a 100 MB header: status, seconds, bytes the client got to
  send before the answer, and the service's resident memory growth (sampled every 20 ms);
  /health/live latency meanwhile.
- slow: ``--connections`` connections, half holding an unfinished head, half a
  half-sent body; seconds until the service has closed each, what it answered, its
  open file count before, at the peak and after.
- forwarded: ``--sign-ins`` sign-ins from 127.0.0.1, each with another forged
  X-Forwarded-For (TRUSTED_PROXY_HOPS=0, the default 5/minute sign-in limit): how
  many got 429.

Run against another checkout with ``PYTHONPATH=<checkout>/src`` (e.g. the figures of
main before the fix).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import selectors
import socket
import threading
import time
from typing import Any

import httpx

from bench.common import WORK, free_port, fresh_dir, log, rss_mb, running_service, service_env

MB = 1024 * 1024


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--body-mb", type=int, default=200)
    p.add_argument("--ingest-mb", type=int, default=100)
    p.add_argument("--header-mb", type=int, default=100)
    p.add_argument("--connections", type=int, default=1000)
    p.add_argument("--wait", type=float, default=90.0, help="most seconds to wait for closes")
    p.add_argument("--sign-ins", type=int, default=10)


class RssPeak:
    """The service's peak VmRSS while the block runs, sampled every 20 ms."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.before = rss_mb(pid).get("VmRSS", 0.0)
        self.peak = self.before
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_mb(self.pid).get("VmRSS", 0.0))

    def __enter__(self) -> RssPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(0.2)
        self._stop.set()
        self._thread.join(2)

    def figures(self) -> dict[str, float]:
        return {
            "rss_before_mb": self.before,
            "rss_peak_mb": self.peak,
            "rss_growth_mb": round(self.peak - self.before, 1),
        }


class LiveProbe:
    """/health/live every 100 ms on fresh connections while the block runs: worst latency."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.worst = 0.0
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            started = time.perf_counter()
            try:
                ok = httpx.get(f"{self.base}/health/live", timeout=10).status_code == 200
            except httpx.HTTPError:
                ok = False
            self.failures += not ok
            self.worst = max(self.worst, time.perf_counter() - started)

    def __enter__(self) -> LiveProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(15)


def _port(base: str) -> int:
    return int(base.rsplit(":", 1)[1])


def _read_status(sock: socket.socket, timeout: float) -> tuple[int, str]:
    sock.settimeout(timeout)
    data = b""
    with contextlib.suppress(OSError):
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        if head:
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            while len(rest) < length:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                rest += chunk
            return int(head.split()[1]), rest[:300].decode(errors="replace")
    return 0, ""


def _send_until_answered(
    port: int, head: bytes, body_bytes: int, framed: bool = False
) -> dict[str, Any]:
    """Send ``head`` then up to ``body_bytes`` of body (chunked when ``framed``), stopping
    as soon as the service answers; what it answered, when, and how much was sent."""
    chunk = b"x" * 65536
    piece = (f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n") if framed else chunk
    started = time.perf_counter()
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head)
        with contextlib.suppress(OSError):
            while sent < body_bytes:
                if _answered(sock):
                    break
                sock.sendall(piece)
                sent += len(chunk)
        status, detail = _read_status(sock, timeout=30)
    return {
        "status": status,
        "detail": detail,
        "seconds": round(time.perf_counter() - started, 2),
        "sent_mb": round(sent / MB, 1),
    }


def _answered(sock: socket.socket) -> bool:
    with selectors.DefaultSelector() as sel:
        sel.register(sock, selectors.EVENT_READ)
        return bool(sel.select(0))


def _bodies(svc: Any, args: argparse.Namespace) -> dict[str, Any]:
    port = _port(svc.base_url)
    out: dict[str, Any] = {}
    size = args.body_mb * MB
    cases = {
        f"/chat {args.body_mb} MB, Content-Length": (
            b"POST /chat HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {size}\r\n\r\n".encode(),
            False,
        ),
        f"/chat {args.body_mb} MB, chunked": (
            b"POST /chat HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n",
            True,
        ),
    }
    for name, (head, framed) in cases.items():
        with RssPeak(svc.pid) as rss, LiveProbe(svc.base_url) as live:
            result = _send_until_answered(port, head, size, framed)
        out[name] = {**result, **rss.figures(), "live_worst_s": round(live.worst, 3)}
        log(f"{name}: {out[name]}")

    ingest = args.ingest_mb * MB
    head = (
        b"POST /ingest HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {ingest}\r\n\r\n".encode()
    )
    results: list[dict[str, Any]] = []
    with RssPeak(svc.pid) as rss, LiveProbe(svc.base_url) as live:
        threads = [
            threading.Thread(
                target=lambda: results.append(_send_until_answered(port, head, ingest))
            )
            for _ in range(4)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
    name = f"/ingest 4 x {args.ingest_mb} MB at once, no key"
    out[name] = {
        "statuses": sorted(r["status"] for r in results),
        "seconds_max": max(r["seconds"] for r in results),
        "sent_mb_max": max(r["sent_mb"] for r in results),
        **rss.figures(),
        "live_worst_s": round(live.worst, 3),
    }
    log(f"{name}: {out[name]}")

    header = args.header_mb * MB
    head = b"GET /health/live HTTP/1.1\r\nHost: b\r\nX-Big: "
    with RssPeak(svc.pid) as rss, LiveProbe(svc.base_url) as live:
        result = _send_until_answered(port, head, header)
    name = f"{args.header_mb} MB header"
    out[name] = {**result, **rss.figures(), "live_worst_s": round(live.worst, 3)}
    log(f"{name}: {out[name]}")
    return out


def _open_files(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def _slow(svc: Any, args: argparse.Namespace) -> dict[str, Any]:
    port = _port(svc.base_url)
    files_before = _open_files(svc.pid)
    socks: list[tuple[str, socket.socket]] = []
    for i in range(args.connections):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        if i % 2:
            kind = "half body"
            sock.sendall(
                b"POST /chat HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\n"
                b'Content-Length: 1000\r\n\r\n{"query": "'
            )
        else:
            kind = "unfinished head"
            sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: b\r\nX-Slow: ")
        sock.setblocking(False)
        socks.append((kind, sock))
    opened = time.monotonic()
    time.sleep(0.5)
    files_peak = _open_files(svc.pid)
    answers: dict[str, dict[str, int]] = {}
    closed_at: dict[str, list[float]] = {}
    buffers: dict[int, bytes] = {}
    with selectors.DefaultSelector() as sel:
        for kind, sock in socks:
            sel.register(sock, selectors.EVENT_READ, kind)
        live_probe = LiveProbe(svc.base_url)
        with live_probe:
            while sel.get_map() and time.monotonic() - opened < args.wait:
                for key, _ in sel.select(timeout=0.5):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    try:
                        data = sock.recv(65536)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:
                        data = b""
                    if data:
                        buffers[sock.fileno()] = buffers.get(sock.fileno(), b"") + data
                        continue
                    text = buffers.pop(sock.fileno(), b"")
                    status = text.split(b" ", 2)[1].decode() if text.count(b" ") >= 2 else "none"
                    kind = key.data
                    answers.setdefault(kind, {}).setdefault(status, 0)
                    answers[kind][status] += 1
                    closed_at.setdefault(kind, []).append(time.monotonic() - opened)
                    sel.unregister(sock)
                    sock.close()
            still_open = len(sel.get_map())
    for _, sock in socks:
        sock.close()
    time.sleep(1.0)
    return {
        "connections": args.connections,
        "open_files_before": files_before,
        "open_files_peak": files_peak,
        "open_files_after": _open_files(svc.pid),
        "answers": answers,
        "closed_within_s": {k: round(max(v), 1) for k, v in closed_at.items()},
        "still_open_after_wait": still_open,
        "waited_s": round(min(args.wait, time.monotonic() - opened), 1),
        "live_worst_s": round(live_probe.worst, 3),
        "live_failures": live_probe.failures,
    }


def _forwarded(svc: Any, args: argparse.Namespace) -> dict[str, Any]:
    statuses = []
    body = {"email": "victim@example.com", "password": "a guess that is wrong"}
    with httpx.Client(base_url=svc.base_url, timeout=10) as client:
        for i in range(args.sign_ins):
            forged = {"X-Forwarded-For": f"198.51.100.{i + 1}"}
            statuses.append(
                client.post("/api/auth/sign-in/email", json=body, headers=forged).status_code
            )
    return {"statuses": statuses, "refused_429": statuses.count(429)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"pythonpath": os.environ.get("PYTHONPATH", "")}
    data = fresh_dir(WORK / "runs" / "hostile")
    env = service_env(data, free_port())
    with running_service(env) as svc:
        time.sleep(1.0)
        result["bodies"] = _bodies(svc, args)
        result["slow"] = _slow(svc, args)
        log(f"slow: {result['slow']}")
    env = service_env(fresh_dir(WORK / "runs" / "hostile-xff"), free_port())
    env["RATE_LIMIT_ENABLED"] = "true"
    with running_service(env) as svc:
        result["forwarded"] = _forwarded(svc, args)
        log(f"forwarded: {result['forwarded']}")
    return result


def summary(result: dict[str, Any]) -> list[str]:
    lines = []
    for name, case in result["bodies"].items():
        lines.append(f"{name}: {json.dumps(case)}")
    lines.append(f"slow connections: {json.dumps(result['slow'])}")
    lines.append(f"forged X-Forwarded-For: {json.dumps(result['forwarded'])}")
    return lines
