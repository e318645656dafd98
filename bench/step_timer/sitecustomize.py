"""Where a request's time goes inside the service: each step's wall time, percentiles.

Loaded by the service's interpreter when ``bench/step_timer`` is on its PYTHONPATH
(``BENCH_STEP_TIMER=FILE`` makes ``bench.common.service_env`` put it there): it wraps the
adapters' and the core's methods below, times every call, and every 2 s writes FILE with
n / p50 / p95 / max ms per step, over the calls that started after the first
``STEP_TIMER_SKIP`` seconds (5) of the first ``/chat`` (a level's warm-up). Besides the
steps: ``loop.lag`` (how late a 1 ms sleep wakes: the event loop's queue) and ``gc.genN``
(each collection). Run one level per service start. Found P14 (bench/README.md). With
``WORKERS`` > 1 each process that serves ``/chat`` writes ``FILE.<pid>`` instead (one file
per worker; the supervisor and the index owner serve no ``/chat`` and write nothing).
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import threading
import time
from typing import Any

OUT = os.environ.get("BENCH_STEP_TIMER_OUT", "")
PER_PROCESS = os.environ.get("WORKERS", "1").strip() not in ("", "1")
SKIP = float(os.environ.get("STEP_TIMER_SKIP", "5"))
_times: dict[str, list[tuple[float, float]]] = {}
_since = [float("inf")]


def _record(step: str, started: float) -> None:
    _times.setdefault(step, []).append((started, (time.perf_counter() - started) * 1000))


def _write() -> None:
    summary = {}
    for step, calls in list(_times.items()):
        ms = sorted(took for started, took in calls if started >= _since[0])
        if ms:
            n = len(ms)
            summary[step] = {
                "n": n,
                "p50": round(ms[n // 2], 2),
                "p95": round(ms[int(n * 0.95)], 2),
                "max": round(ms[-1], 2),
            }
    if not summary:
        return  # nothing timed here (a supervisor, the index owner, before the warm-up)
    with open(f"{OUT}.{os.getpid()}" if PER_PROCESS else OUT, "w") as file:
        json.dump(summary, file, indent=1)


def _timed(cls: Any, name: str, step: str) -> None:
    original = getattr(cls, name)

    async def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await original(self, *args, **kwargs)
        finally:
            _record(step, started)

    setattr(cls, name, timed)


def _install() -> None:
    from starlette.applications import Starlette

    from adapters.openai.chat import OpenAIChatModel
    from adapters.openai.embedder import OpenAIEmbedder
    from adapters.qdrant_edge.index import EdgeIndex
    from rag_core.answering import Answerer
    from rag_core.retrieval import Retriever

    for cls, name, step in [
        (OpenAIChatModel, "complete", "model.complete"),
        (OpenAIEmbedder, "embed", "embedder.embed"),
        (EdgeIndex, "search", "index.search"),
        (EdgeIndex, "neighbourhood", "index.neighbourhood"),
        (Retriever, "search", "retriever.search"),
        (Retriever, "surroundings", "retriever.surroundings"),
        (Answerer, "ground", "answerer.ground"),
        (Answerer, "answer", "answerer.answer"),
    ]:
        _timed(cls, name, step)

    collecting: dict[str, float] = {}

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            collecting["at"] = time.perf_counter()
        elif "at" in collecting:
            _record(f"gc.gen{info['generation']}", collecting.pop("at"))

    gc.callbacks.append(on_gc)
    serve = Starlette.__call__

    async def lag() -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(0.001)
            _record("loop.lag", started)

    async def call(self: Any, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/chat":
            if _since[0] == float("inf"):
                _since[0] = time.perf_counter() + SKIP
                asyncio.get_running_loop().create_task(lag())
            started = time.perf_counter()
            try:
                return await serve(self, scope, receive, send)
            finally:
                _record("http./chat", started)
        return await serve(self, scope, receive, send)

    Starlette.__call__ = call  # type: ignore[method-assign]

    def write_every_2s() -> None:
        while True:
            time.sleep(2)
            _write()

    threading.Thread(target=write_every_2s, daemon=True).start()


if OUT:
    _install()
