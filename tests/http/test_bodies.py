"""Request bodies off the event loop: a large JSON body of POST /ingest is parsed on a
worker thread, a small one where it is (issue 14, item 3)."""

from __future__ import annotations

import threading

import httpx
import pytest
from pydantic import SecretStr

from adapters.settings import Settings
from entrypoints.container import in_memory_container
from entrypoints.http import bodies
from entrypoints.http.app import create_app

ADMIN = "test-admin-key"


@pytest.mark.parametrize(("size", "off_loop"), [(100, False), (bodies.OFF_LOOP_JSON_BYTES, True)])
async def test_a_large_ingest_body_is_parsed_off_the_event_loop(
    monkeypatch: pytest.MonkeyPatch, size: int, off_loop: bool
) -> None:
    threads: list[int] = []
    parse = bodies._parse

    def spy(body: bytes) -> object:
        threads.append(threading.get_ident())
        return parse(body)

    monkeypatch.setattr(bodies, "_parse", spy)
    settings = Settings(_env_file=None, admin_api_key=SecretStr(ADMIN), rate_limit_enabled=False)
    app = create_app(settings, await in_memory_container(settings))
    document = {"path": "docs/a.md", "text": "# A\n\n" + "a" * size}
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://test") as client,
    ):
        response = await client.post(
            "/ingest",
            json={"documents": [document]},
            headers={"Authorization": f"Bearer {ADMIN}"},
        )
    assert response.status_code == 200, response.text
    assert len(threads) == 1
    assert (threads[0] != threading.get_ident()) is off_loop
