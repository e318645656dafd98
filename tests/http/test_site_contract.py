"""The shapes the textbook's Docusaurus site relies on (issue 13), driven through the
full app (in-memory adapters, a scripted chat model). The site puts ``detail`` straight
into the page, renders each message source as text (``<li>{source}</li>``) and reads the
profile fields from the ``user`` object: any other shape crashes its React pages."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import pytest

from adapters.memory.models import ScriptedChatModel
from adapters.settings import Settings
from entrypoints.container import in_memory_container
from entrypoints.http.app import create_app
from rag_core.markdown import parse_document
from rag_core.ports import ChatMessage

BOOK = {
    "docs/week3/ros2-nodes-topics.md": "# Nodes and Topics\n\n## Topics\n\nA topic is a named bus over which nodes exchange messages.\n",
    "docs/week6/gazebo.md": "# Gazebo\n\nGazebo simulates robots with physics engines and sensors.\n",
}
PASSWORD = "correct horse battery"


def reply(messages: Sequence[ChatMessage]) -> str:
    system = messages[0].content
    if system.startswith("Rewrite"):
        return "What is a ROS 2 topic?"
    if "Sources:" in system:
        return "A topic is a named bus [1]."
    return "ترجمہ: " + messages[-1].content


async def started(**overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    values: dict[str, Any] = {"admin_api_key": "admin-key-for-tests", "rate_limit_enabled": False}
    settings = Settings(_env_file=None, **{**values, **overrides})
    model = ScriptedChatModel(reply)
    container = await in_memory_container(settings, chat_model=model, password_cost=4)
    await container.ingestor.ingest([parse_document(p, t) for p, t in BOOK.items()])
    app = create_app(settings, container)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            yield c


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async for c in started():
        yield c


async def sign_up(client: httpx.AsyncClient, email: str = "reader@example.com") -> dict[str, str]:
    body = {"email": email, "name": "Reader", "password": PASSWORD}
    response = await client.post("/api/auth/sign-up", json=body)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['session']['accessToken']}"}


def assert_text_detail(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert isinstance(body["detail"], str) and body["detail"], body
    return body


# --- 1. every 4xx has a string detail, 422 included --------------------------------


async def test_a_short_password_is_a_422_with_a_sentence_naming_the_field(
    client: httpx.AsyncClient,
) -> None:
    body = {"email": "new@example.com", "name": "New", "password": "s3cr!"}
    response = await client.post("/api/auth/sign-up", json=body)
    data = assert_text_detail(response, 422)
    assert "password" in data["detail"] and "8" in data["detail"]
    # The machine-readable reasons travel beside it, without the inputs.
    [error] = data["errors"]
    assert error["loc"] == ["body", "password"] and error["type"] == "string_too_short"
    assert set(error) == {"loc", "msg", "type"}
    assert "s3cr!" not in response.text


async def test_an_address_the_browser_accepts_but_the_schema_does_not_is_a_text_422(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/api/auth/sign-in/email", json={"email": "a@b", "password": "x"})
    data = assert_text_detail(response, 422)
    assert "email" in data["detail"]
    assert not data["detail"].startswith("Value error")
    assert "a@b" not in response.text


async def test_several_reasons_are_one_sentence_each(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/auth/sign-up", json={"email": "a@b", "password": "x"})
    data = assert_text_detail(response, 422)
    assert {tuple(e["loc"]) for e in data["errors"]} == {
        ("body", "email"),
        ("body", "name"),
        ("body", "password"),
    }
    assert data["detail"].count(";") == 2
    assert "name" in data["detail"] and "password" in data["detail"]


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("POST", "/chat", {"query": ""}),
        ("POST", "/chat", {}),
        ("POST", "/chat/stream", {"query": "x" * 5_000}),
        ("POST", "/translate", {"text": 5}),
        ("POST", "/translate/batch", {"texts": ["x"] * 21}),
        ("POST", "/adjust-content", {"text": "x", "target_level": "expert"}),
        ("POST", "/adjust-content/batch", {"texts": ["x"]}),
        ("POST", "/api/auth/sign-up", None),
        ("GET", "/api/chat/sessions?limit=0", None),
    ],
)
async def test_schema_refusals_are_text(
    client: httpx.AsyncClient, method: str, url: str, body: dict[str, Any] | None
) -> None:
    auth = await sign_up(client) if "/api/chat" in url else {}
    response = await client.request(method, url, json=body, headers=auth)
    data = assert_text_detail(response, 422)
    assert isinstance(data["errors"], list) and data["errors"]


async def test_a_domain_refusal_is_text_too(client: httpx.AsyncClient) -> None:
    # Blank after stripping: the schema lets it through, the core refuses it.
    data = assert_text_detail(await client.post("/chat", json={"query": "   "}), 422)
    assert data["errors"] == [{"loc": ["body"], "msg": data["detail"], "type": "value_error"}]


async def test_malformed_json_is_a_text_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/chat", content=b'{"query": ', headers={"Content-Type": "application/json"}
    )
    data = assert_text_detail(response, 422)
    assert "JSON" in data["detail"]


async def test_other_refusals_of_the_sites_routes_are_text(client: httpx.AsyncClient) -> None:
    auth = await sign_up(client)
    other = await sign_up(client, "other@example.com")
    sid = (await client.post("/chat", json={"query": "What is a topic?"}, headers=auth)).json()[
        "session_id"
    ]
    wrong = {"email": "reader@example.com", "password": "not the password"}
    assert_text_detail(await client.post("/api/auth/sign-in/email", json=wrong), 401)
    taken = {"email": "READER@example.com", "name": "R", "password": PASSWORD}
    assert_text_detail(await client.post("/api/auth/sign-up", json=taken), 409)
    assert_text_detail(await client.get(f"/api/chat/sessions/{sid}", headers=other), 403)
    assert_text_detail(await client.get("/api/chat/sessions/nope", headers=auth), 404)
    assert_text_detail(await client.get("/api/chat/sessions"), 401)
    bad = {"Authorization": "Bearer not-a-token"}
    assert_text_detail(await client.post("/chat", json={"query": "hi"}, headers=bad), 401)
    assert_text_detail(await client.get("/no/such/route"), 404)


# --- 2. a past session's message sources render as text ------------------------------


async def asked(client: httpx.AsyncClient, auth: dict[str, str]) -> str:
    answer = await client.post("/chat", json={"query": "What is a ROS 2 topic?"}, headers=auth)
    assert answer.status_code == 200, answer.text
    session_id: str = answer.json()["session_id"]
    return session_id


async def test_a_past_sessions_message_sources_are_strings(client: httpx.AsyncClient) -> None:
    auth = await sign_up(client)
    sid = await asked(client, auth)
    messages = (await client.get(f"/api/chat/sessions/{sid}", headers=auth)).json()["messages"]
    question, answer = messages
    assert question["sources"] == [] and question["citations"] == []
    assert answer["sources"] == ["[1] Nodes and Topics — /docs/week3/ros2-nodes-topics"]
    assert all(isinstance(s, str) for m in messages for s in m["sources"])
    # The structured citations travel beside them.
    [citation] = answer["citations"]
    assert citation["number"] == 1 and citation["url"] == "/docs/week3/ros2-nodes-topics"
    assert {"title", "heading_path", "snippet", "score"} <= set(citation)


async def test_the_export_names_its_sources_the_same_way(client: httpx.AsyncClient) -> None:
    import json

    auth = await sign_up(client)
    sid = await asked(client, auth)
    url = f"/api/chat/sessions/{sid}/export"
    text = (await client.get(url, params={"format": "text"}, headers=auth)).json()["content"]
    assert "    [1] Nodes and Topics — /docs/week3/ros2-nodes-topics\n" in text
    exported = json.loads(
        (await client.get(url, params={"format": "json"}, headers=auth)).json()["content"]
    )
    answer = exported["messages"][1]
    assert answer["sources"] == ["[1] Nodes and Topics — /docs/week3/ros2-nodes-topics"]
    assert answer["citations"] == [
        {"number": 1, "title": "Nodes and Topics", "url": "/docs/week3/ros2-nodes-topics"}
    ]


# --- 3. the user object carries the profile -------------------------------------------

PROFILE = {
    "technical_background": "Python, some C++",
    "hardware_access": "Jetson Orin Nano",
    "learning_goals": "make a biped walk",
}


async def test_the_user_object_carries_the_profile_everywhere(client: httpx.AsyncClient) -> None:
    body = {"email": "reader@example.com", "name": "Reader", "password": PASSWORD}
    signed_up = (await client.post("/api/auth/sign-up", json={**body, "proficiency": "pro"})).json()
    assert {k: signed_up["user"][k] for k in PROFILE} == dict.fromkeys(PROFILE, "")
    assert signed_up["user"]["proficiency"] == "pro"
    auth = {"Authorization": f"Bearer {signed_up['session']['accessToken']}"}

    update = {**PROFILE, "proficiency": "intermediate"}
    saved = await client.post("/api/auth/profile/update", json=update, headers=auth)
    assert saved.json() == {"success": True}

    expected = {**PROFILE, "proficiency": "intermediate"}
    session = (await client.get("/api/auth/get-session", headers=auth)).json()
    verify = (await client.get("/api/auth/verify", headers=auth)).json()
    sign_in = {"email": "reader@example.com", "password": PASSWORD}
    signed_in = (await client.post("/api/auth/sign-in/email", json=sign_in)).json()
    for user in (session["user"], verify["user"], signed_in["user"]):
        assert {k: user[k] for k in expected} == expected
        assert user["email"] == "reader@example.com"


# --- 5. SITE_URL: absolute source links everywhere ------------------------------------

SITE = "https://book.example/textbook"
PAGE = f"{SITE}/docs/week3/ros2-nodes-topics"


@pytest.fixture
async def on_site() -> AsyncIterator[httpx.AsyncClient]:
    async for c in started(site_url=SITE + "/"):
        yield c


def sse(text: str) -> list[tuple[str, Any]]:
    import json

    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            events.append((fields["event"], json.loads(fields.get("data", "{}"))))
    return events


async def test_site_url_makes_every_source_link_absolute(on_site: httpx.AsyncClient) -> None:
    import json

    auth = await sign_up(on_site)
    question = {"query": "What is a ROS 2 topic?"}
    answer = (await on_site.post("/chat", json=question, headers=auth)).json()
    assert answer["sources"][0]["url"] == PAGE

    stream = await on_site.post("/chat/stream", json=question)
    events = dict(sse(stream.text))
    assert events["sources"]["sources"][0]["url"] == PAGE
    assert events["citations"]["citations"][0]["url"] == PAGE

    completion = {"messages": [{"role": "user", "content": "What is a ROS 2 topic?"}]}
    openai = (await on_site.post("/v1/chat/completions", json=completion)).json()
    assert openai["sources"][0]["url"] == PAGE

    sid = answer["session_id"]
    stored = (await on_site.get(f"/api/chat/sessions/{sid}", headers=auth)).json()["messages"][1]
    assert stored["sources"] == [f"[1] Nodes and Topics — {PAGE}"]
    assert stored["citations"][0]["url"] == PAGE

    url = f"/api/chat/sessions/{sid}/export"
    text = (await on_site.get(url, params={"format": "text"}, headers=auth)).json()["content"]
    assert f"    [1] Nodes and Topics — {PAGE}\n" in text
    exported = (await on_site.get(url, params={"format": "json"}, headers=auth)).json()
    message = json.loads(exported["content"])["messages"][1]
    assert message["sources"] == [f"[1] Nodes and Topics — {PAGE}"]
    assert message["citations"][0]["url"] == PAGE

    page = await on_site.get("/", headers={"Accept": "text/html"})
    assert f'data-site="{SITE}"' in page.text


async def test_a_selection_has_no_link_even_on_a_site(on_site: httpx.AsyncClient) -> None:
    body = {"query": "Explain this", "selected_text": "A servo holds an angle."}
    answer = (await on_site.post("/chat", json=body)).json()
    selection = [s for s in answer["sources"] if s["title"] == "Selected text"]
    assert selection and all(s["url"] == "" for s in selection)


@pytest.mark.parametrize("value", ["ftp://book.example", "book.example", "https://b.example/?x=1"])
def test_a_site_url_that_is_not_a_web_address_is_refused(value: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="site_url"):
        Settings(_env_file=None, site_url=value)


def test_a_blank_site_url_is_unset() -> None:
    from entrypoints.http.sources import site_base

    assert site_base(Settings(_env_file=None, site_url="")) is None
    assert site_base(Settings(_env_file=None)) is None
    assert site_base(Settings(_env_file=None, site_url=" https://b.example/x/ ")) == (
        "https://b.example/x"
    )


# --- 6. a linked Sources list appended to /chat's response -----------------------------

# The site's widget shows ``response`` as plain text with its line breaks collapsed
# (no Markdown, no white-space: pre), so the list is plain text too: each line reads
# "[n] Title — link" as the history's sources do, and run together it still reads
# "... [1]. Sources: [1] Nodes and Topics — https://...". The link stands alone between
# spaces, whole, so a reader can open it and a Markdown renderer autolinks it.
LISTED = "A topic is a named bus [1].\n\nSources:\n[1] Nodes and Topics — {link}"


async def test_chat_appends_the_sources_by_default(client: httpx.AsyncClient) -> None:
    auth = await sign_up(client)
    answer = (
        await client.post("/chat", json={"query": "What is a ROS 2 topic?"}, headers=auth)
    ).json()
    assert answer["response"] == LISTED.format(link="/docs/week3/ros2-nodes-topics")
    assert answer["sources"][0]["url"] == "/docs/week3/ros2-nodes-topics"  # unchanged
    # What is stored is the answer: the list is added when it is shown, not kept.
    sid = answer["session_id"]
    plain = {"append_sources": "false"}
    url = f"/api/chat/sessions/{sid}"
    stored = (await client.get(url, params=plain, headers=auth)).json()["messages"]
    assert stored[1]["content"] == "A topic is a named bus [1]."


async def test_the_appended_links_are_absolute_on_a_site(on_site: httpx.AsyncClient) -> None:
    answer = (await on_site.post("/chat", json={"query": "What is a ROS 2 topic?"})).json()
    assert answer["response"] == LISTED.format(link=PAGE)
    shown = " ".join(answer["response"].split())  # what the widget displays
    assert shown.endswith(f"[1]. Sources: [1] Nodes and Topics — {PAGE}")
    assert "](" not in shown and PAGE in shown.split()


async def test_a_client_that_reads_sources_opts_out(client: httpx.AsyncClient) -> None:
    body = {"query": "What is a ROS 2 topic?", "append_sources": False}
    answer = (await client.post("/chat", json=body)).json()
    assert answer["response"] == "A topic is a named bus [1]." and answer["sources"]


async def test_the_stream_never_appends(client: httpx.AsyncClient) -> None:
    stream = await client.post("/chat/stream", json={"query": "What is a ROS 2 topic?"})
    final = dict(sse(stream.text))["final"]
    assert final["response"] == "A topic is a named bus [1]."


async def test_append_sources_off_by_setting_and_on_by_request() -> None:
    async for client in started(append_sources=False):
        question = {"query": "What is a ROS 2 topic?"}
        plain = (await client.post("/chat", json=question)).json()
        assert plain["response"] == "A topic is a named bus [1]."
        asked = (await client.post("/chat", json={**question, "append_sources": True})).json()
        assert asked["response"] == LISTED.format(link="/docs/week3/ros2-nodes-topics")


def test_the_list_names_each_page_once() -> None:
    from entrypoints.http.sources import with_sources
    from rag_core.answers import Citation

    def cited(number: int, title: str, route: str) -> Citation:
        return Citation(number, title, route, (), "", 1.0, f"c{number}", route or None)

    citations = [
        cited(1, "Nodes [and] Topics", "/docs/week3/topics"),
        cited(2, "Gazebo", "/docs/week6/gazebo (sim)"),
        cited(3, "Nodes [and] Topics", "/docs/week3/topics"),
        cited(4, "Selected text", ""),
    ]
    assert with_sources("Text [1][2][3][4].", citations, "https://b.example/") == (
        "Text [1][2][3][4].\n\nSources:\n"
        "[1] [3] Nodes [and] Topics — https://b.example/docs/week3/topics\n"
        "[2] Gazebo — https://b.example/docs/week6/gazebo%20%28sim%29\n"
        "[4] Selected text"
    )
    assert with_sources("Nothing found.", [], None) == "Nothing found."


# --- 7. an empty bearer is no credential (issue 14, item 9) ---------------------------

# The site sends `Bearer ${localStorage.getItem("auth_token") || ""}` on /chat: signed
# out (or before the token is stored), that is a Bearer scheme with nothing after it.
NO_CREDENTIAL = [b"Bearer ", b"Bearer", b"bearer   ", b"", b"  "]


@pytest.mark.parametrize("authorization", NO_CREDENTIAL)
async def test_an_empty_bearer_is_anonymous(
    client: httpx.AsyncClient, authorization: bytes
) -> None:
    headers = {b"Authorization": authorization}
    answer = await client.post("/chat", json={"query": "What is a ROS 2 topic?"}, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["session_id"] is None  # answered, not stored
    session = await client.get("/api/auth/get-session", headers=headers)
    assert session.json() == {"user": None, "session": None}
    # Where signing in is required it is the plain challenge, not "invalid token".
    refused = await client.get("/api/chat/sessions", headers=headers)
    assert_text_detail(refused, 401)
    assert refused.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "authorization", [b"Bearer x", b"Bearer null", b"Bearer  x ", b"Basic YWRhOnBhc3M=", b"x"]
)
async def test_a_present_credential_that_is_invalid_stays_a_401(
    client: httpx.AsyncClient, authorization: bytes
) -> None:
    headers = {b"Authorization": authorization}
    answer = await client.post("/chat", json={"query": "What is a ROS 2 topic?"}, headers=headers)
    assert_text_detail(answer, 401)
    assert answer.headers["www-authenticate"] == 'Bearer error="invalid_token"'


async def test_only_http_whitespace_counts_as_nothing(client: httpx.AsyncClient) -> None:
    # A no-break space after the scheme is a (bad) credential, not blank.
    headers = {b"Authorization": "Bearer \u00a0".encode("latin-1")}
    answer = await client.post("/chat", json={"query": "What is a ROS 2 topic?"}, headers=headers)
    assert_text_detail(answer, 401)


async def test_a_reopened_answer_shows_its_sources_as_the_chat_did(
    client: httpx.AsyncClient,
) -> None:
    # The site's widget shows only a reopened message's content: with APPEND_SOURCES on
    # (the default) it ends with the same Sources list the answer had when it was asked.
    auth = await sign_up(client)
    sid = await asked(client, auth)
    url = f"/api/chat/sessions/{sid}"
    question, answer = (await client.get(url, headers=auth)).json()["messages"]
    assert answer["content"] == LISTED.format(link="/docs/week3/ros2-nodes-topics")
    assert question["content"] == "What is a ROS 2 topic?"
    plain = (await client.get(url, params={"append_sources": "false"}, headers=auth)).json()
    assert plain["messages"][1]["content"] == "A topic is a named bus [1]."


async def test_reopened_answers_are_plain_with_append_sources_off() -> None:
    async for client in started(append_sources=False):
        auth = await sign_up(client)
        sid = await asked(client, auth)
        messages = (await client.get(f"/api/chat/sessions/{sid}", headers=auth)).json()
        assert messages["messages"][1]["content"] == "A topic is a named bus [1]."
