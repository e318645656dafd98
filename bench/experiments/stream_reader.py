"""Client CPU per chat completion read as a stream (P12): the adapter as it is.

    python -m bench.experiments.stream_reader --calls 300 --concurrency 50 --words 135

Starts the fake OpenAI server in its own process, then runs ``--calls`` completions
(``--concurrency`` at a time) of a ``--words``-token reply through
``OpenAIChatModel.complete`` with deadlines set (so the reply is streamed), and
``--stream`` runs ``OpenAIChatModel.stream`` instead. Prints one JSON line: this
process's CPU per call (user + system) and the wall time. Run it with
``PYTHONPATH=<other checkout>/src`` to measure another tree's adapter the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import uvloop

from adapters.openai import OpenAIChatModel, RetryPolicy, build_openai_client
from bench.common import fake_openai
from rag_core.conversations import Role
from rag_core.ports import ChatMessage


def _question(words: int) -> list[ChatMessage]:
    # The fake answers with the first sentence of passage [1] and " [1]".
    passage = " ".join(f"word{n}" for n in range(words - 1))
    return [ChatMessage(Role.SYSTEM, f"Sources:\n\n[1] {passage}\n"), ChatMessage(Role.USER, "q")]


async def _run(base_url: str, args: argparse.Namespace) -> dict[str, float]:
    client = build_openai_client("sk-bench", base_url)
    model = OpenAIChatModel(
        client,
        "m",
        retry=RetryPolicy(attempts=1),
        first_token_timeout=5,
        answer_timeout=args.answer_timeout or None,
    )
    messages = _question(args.words)
    gate = asyncio.Semaphore(args.concurrency)

    async def one() -> int:
        async with gate:
            if args.stream:
                return len([d async for d in model.stream(messages)])
            return len((await model.complete(messages)).text)

    await asyncio.gather(*(one() for _ in range(args.concurrency)))  # warm the pool
    started, cpu = time.perf_counter(), time.process_time()
    sizes = await asyncio.gather(*(one() for _ in range(args.calls)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - started
    await client.close()
    return {
        "calls": args.calls,
        "concurrency": args.concurrency,
        "words": args.words,
        "stream": args.stream,
        "reply_size": sizes[0],
        "cpu_ms_per_call": round(cpu / args.calls * 1000, 3),
        "wall_s": round(wall, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--words", type=int, default=135)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--answer-timeout", type=float, default=60.0, help="0: none")
    args = parser.parse_args()
    with fake_openai(token_delay=0.0) as fake:
        print(json.dumps(uvloop.run(_run(fake.base_url, args))))


if __name__ == "__main__":
    main()
