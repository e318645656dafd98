"""A model server that accepts connections and never answers (issue 14, item 2).

The whole service is built from settings (``build_container``) with the chat model
and the embedder behind a fault proxy in front of the fake OpenAI server. Black-holed,
every chat route answers extractively (``degraded`` names the model once) within the
deadlines, the circuit opens within 3 requests, ``/health`` sees the hung model, a
half-open trial hangs no longer than a deadline, and the model's return closes the
circuit. Every scenario is bounded in time, so code without deadlines fails here
instead of hanging for minutes.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from adapters.settings import Settings
from entrypoints.bootstrap import build_container
from entrypoints.container import Container
from fakes.openai_server import FakeOpenAI
from faults.proxy import FaultProxy
from faults.test_http_scenarios import QUESTION, circuit, ingest, serving
from rag_core.testing import FakeClock

FIRST_TOKEN = 1.0
EMBEDDING = 0.5
# Retrieval with a timed-out query embedding, then a chat call that never gets its
# first token: both deadlines, plus room for a loaded machine.
BOUND = FIRST_TOKEN + EMBEDDING + 2.0
SCENARIO_LIMIT = 40.0  # without deadlines one request would take minutes


@pytest.fixture
async def hung(
    tmp_path: Path,
) -> AsyncIterator[tuple[Container, FaultProxy, FakeOpenAI, FakeClock]]:
    clock = FakeClock(seconds=1000.0)
    with FakeOpenAI(dimension=1536) as fake:
        async with FaultProxy("127.0.0.1", fake.port) as proxy:
            settings = Settings(
                _env_file=None,
                data_dir=tmp_path,
                openai_api_key=SecretStr("sk-test"),
                openai_base_url=f"http://{proxy.host}:{proxy.port}/v1",
                embeddings="openai",
                openai_first_token_timeout=FIRST_TOKEN,
                openai_embedding_timeout=EMBEDDING,
                openai_breaker_recovery=30,
                better_auth_secret=SecretStr("s" * 40),
            )
            container = await build_container(settings, clock=clock)
            try:
                await ingest(container)
                yield container, proxy, fake, clock
            finally:
                await container.aclose()


async def timed(request: asyncio.Future[httpx.Response] | object) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await request  # type: ignore[misc]
    return response, time.monotonic() - started


async def test_chat_answers_extractively_within_the_deadline_and_the_circuit_opens(
    hung: tuple[Container, FaultProxy, FakeOpenAI, FakeClock],
) -> None:
    container, proxy, fake, clock = hung
    async with asyncio.timeout(SCENARIO_LIMIT):
        async for http in serving(container):
            body = (await http.post("/chat", json=QUESTION)).json()
            assert body["mode"] == "generated" and body["retrieval"] == "hybrid"

            proxy.blackhole()
            states = []
            for _ in range(3):
                response, elapsed = await timed(http.post("/chat", json=QUESTION))
                body = response.json()
                assert response.status_code == 200, body
                assert body["mode"] == "extractive" and "[1]" in body["response"]
                assert body["degraded"] == ["openai"]  # the embedder and the model: once
                assert elapsed < BOUND, f"/chat took {elapsed:.1f}s with a hung model"
                states.append(await circuit(http, "openai"))
            assert "open" in states, states  # within 3 requests

            calls = fake.requests["chat"] + fake.requests["embeddings"]
            response, elapsed = await timed(http.post("/chat", json=QUESTION))
            assert response.json()["mode"] == "extractive" and elapsed < 1
            assert fake.requests["chat"] + fake.requests["embeddings"] == calls

            await container.health.refresh()
            health = (await http.get("/health")).json()
            assert health["status"] == "degraded"
            assert health["components"]["openai"]["status"] == "fail"

            clock.advance(31)  # the half-open trial hangs too: bounded, and the circuit re-opens
            assert await circuit(http, "openai") == "half_open"
            response, elapsed = await timed(http.post("/chat", json=QUESTION))
            assert response.json()["mode"] == "extractive" and elapsed < BOUND
            assert await circuit(http, "openai") == "open"

            proxy.pass_through()
            clock.advance(31)
            body = (await http.post("/chat", json=QUESTION)).json()
            assert body["mode"] == "generated" and body["degraded"] == []
            assert await circuit(http, "openai") == "closed"
            await container.health.refresh()
            assert (await http.get("/health")).json()["components"]["openai"]["status"] == "pass"


def final_event(text: str) -> dict[str, object]:
    """The ``final`` event's data of a Server-Sent Events body."""
    finals = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        lines = block.split("\n")
        if "event: final" in lines:
            data = "\n".join(line[5:].strip() for line in lines if line.startswith("data:"))
            finals.append(json.loads(data))
    assert len(finals) == 1, text
    final: dict[str, object] = finals[0]
    return final


@pytest.mark.parametrize("route", ["/chat/stream", "/v1/chat/completions", "/v1/stream"])
async def test_every_chat_route_falls_back_within_the_deadline(
    hung: tuple[Container, FaultProxy, FakeOpenAI, FakeClock], route: str
) -> None:
    container, proxy, _, _ = hung
    async with asyncio.timeout(SCENARIO_LIMIT):
        async for http in serving(container):
            proxy.blackhole()
            if route == "/chat/stream":
                request = http.post(route, json=QUESTION)
            else:
                question = {"messages": [{"role": "user", "content": QUESTION["query"]}]}
                if route == "/v1/stream":
                    question["stream"] = True  # type: ignore[assignment]
                request = http.post("/v1/chat/completions", json=question)
            response, elapsed = await timed(request)
            assert response.status_code == 200, response.text
            assert elapsed < BOUND, f"{route} took {elapsed:.1f}s with a hung model"
            if route == "/chat/stream":
                final = final_event(response.text)
                assert final["mode"] == "extractive" and final["degraded"] == ["openai"]
            elif route == "/v1/stream":
                assert "[DONE]" in response.text and "[1]" in response.text
            else:
                body = response.json()
                assert body["mode"] == "extractive"
                assert "[1]" in body["choices"][0]["message"]["content"]
