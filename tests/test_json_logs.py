"""Log output: JSON lines, request ids, masking of secrets, and uvicorn's access lines."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import socket
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from hypothesis import given, settings
from hypothesis import strategies as st

from entrypoints.http.request_id import RequestIdMiddleware, current_request_id
from entrypoints.json_logs import JsonFormatter
from entrypoints.logs import RedactionFilter, configure

LOGGERS = ("", "uvicorn", "uvicorn.error", "uvicorn.access", "httpx")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """configure() rewires the process's loggers; put them back after each test."""
    saved = {
        name: (logging.getLogger(name).handlers[:], logging.getLogger(name).propagate)
        for name in LOGGERS
    }
    levels = {name: logging.getLogger(name).level for name in LOGGERS}
    yield
    for name, (handlers, propagate) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.propagate = propagate
        logger.setLevel(levels[name])


def record(
    message: str, *args: object, level: int = logging.INFO, exc: bool = False
) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("bad value")
        except ValueError:
            exc_info = sys.exc_info()
    return logging.LogRecord("app.module", level, __file__, 1, message, args or None, exc_info)


def as_json(rec: logging.LogRecord) -> dict[str, Any]:
    line = JsonFormatter().format(rec)
    assert "\n" not in line
    parsed: dict[str, Any] = json.loads(line)
    return parsed


# --- the JSON formatter ------------------------------------------------------------


def test_a_record_is_one_json_object() -> None:
    entry = as_json(record("answered %d questions in %s", 3, "0.5 s"))
    assert entry["message"] == "answered 3 questions in 0.5 s"
    assert entry["level"] == "INFO"
    assert entry["logger"] == "app.module"
    assert entry["request_id"] is None
    assert entry["time"].endswith("Z") and "T" in entry["time"]
    assert "exception" not in entry


def test_the_request_id_comes_from_the_context() -> None:
    token = current_request_id.set("req-42")
    try:
        assert as_json(record("inside"))["request_id"] == "req-42"
    finally:
        current_request_id.reset(token)


def test_exceptions_are_one_line_with_their_type() -> None:
    entry = as_json(record("failed\nbadly", level=logging.ERROR, exc=True))
    assert entry["message"] == "failed\nbadly"
    assert entry["exc_type"] == "ValueError"
    assert "Traceback" in entry["exception"]
    assert "ValueError: bad value" in entry["exception"]


def test_a_lone_surrogate_does_not_lose_the_line() -> None:
    line = JsonFormatter().format(record("input was %s", "\ud800"))
    line.encode("ascii")
    assert json.loads(line)["message"] == "input was \ud800"


def test_a_stack_is_included() -> None:
    rec = record("where am I")
    rec.stack_info = "Stack (most recent call last):\n  here"
    assert "here" in as_json(rec)["stack"]


# --- masking -------------------------------------------------------------------------

SECRETS = [
    ("connect to postgresql://neon:s3cr3t-pw@ep-x.neon.tech/db failed", "s3cr3t-pw"),
    ("postgres://u:p@ss/w0rd@host/db", "ss/w0rd"),
    ("Authorization: Bearer abc.def-ghi_123", "abc.def-ghi_123"),
    ("headers {'authorization': 'Basic dXNlcjpwYXNz'}", "dXNlcjpwYXNz"),
    ("authorization=Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
    ("sent bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln", "eyJzdWIiOiIxIn0"),
    ("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl", "c2lnbmF0dXJl"),
    ("key sk-proj-AbCdEfGhIjKlMnOpQrStUv was refused", "AbCdEfGhIjKlMnOpQrStUv"),
    ("key sk-AbCdEfGhIjKlMnOpQrStUv", "AbCdEfGhIjKlMnOpQrStUv"),
    ("hf_AbCdEfGhIjKlMnOpQrStUvWxYz in env", "AbCdEfGhIjKlMnOpQrStUvWxYz"),
    ("host=db user=app password=hunter22 dbname=x", "hunter22"),
    ("OPENAI_API_KEY=abc123xyz PGPASSWORD='pw with space'", "abc123xyz"),
    ("PGPASSWORD='pw with space'", "pw with space"),
    ("GET /v1/x?api_key=q1w2e3r4&page=2 HTTP/1.1", "q1w2e3r4"),
    ("{'password': 'hunter22', 'email': 'a@b.c'}", "hunter22"),
    ('{"client_secret": "zzz-top"}', "zzz-top"),
    ("x-api-key: k-9876543210", "k-9876543210"),
]


@pytest.mark.parametrize(("text", "secret"), SECRETS)
def test_secrets_are_masked_in_messages(text: str, secret: str) -> None:
    rec = record(text)
    RedactionFilter().filter(rec)
    assert secret not in rec.getMessage()
    assert "***" in rec.getMessage()


@pytest.mark.parametrize(("text", "secret"), SECRETS)
def test_secrets_are_masked_in_arguments(text: str, secret: str) -> None:
    class Opaque:
        def __str__(self) -> str:
            return text

    rec = record("call failed: %s (%r)", Opaque(), text)
    RedactionFilter().filter(rec)
    assert secret not in rec.getMessage()
    assert rec.args is None


def test_configured_secret_values_are_masked_whatever_their_shape() -> None:
    rec = record("qdrant said %s", "unauthorised key Zq8-plain-looking-value")
    RedactionFilter(["Zq8-plain-looking-value", "short"]).filter(rec)
    assert rec.getMessage() == "qdrant said unauthorised key ***"


FRAGMENTS = [
    *(text for text, _ in SECRETS),
    *(secret for _, secret in SECRETS),
    "Zq8-plain-looking-value",
    "127.0.0.1:5555",
    ' - "GET /health HTTP/1.1" 200',
    "[SQL: ",
    "[parameters: ",
    "]\n",
    ":",
    "=",
    "@",
    "//",
    "/",
    "?",
    "&",
    " ",
    "\n",
    "'",
    '"',
    "x",
    "Bearer ",
    "TOKEN",
    "Api-Key",
    "sk-",
    "eyJ",
    "hf_",
    "ghp_",
    "AbCdEfGhIjKlMnOpQrStUvWxYz",
]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=12).map("".join))
def test_the_shortcut_never_changes_what_is_masked(text: str) -> None:
    """``redact`` skips texts that cannot hold a secret; it must agree with the full pass."""
    masking = RedactionFilter(["Zq8-plain-looking-value"])
    for hide_sql in (True, False):
        assert masking.redact(text, hide_sql=hide_sql) == masking.mask_all(text, hide_sql=hide_sql)


def test_ordinary_text_is_left_alone() -> None:
    text = (
        "sign in required; usage max_tokens=512 prompt_tokens=20 token_id=t1; "
        "https://docs.example/week3 by user@example.com; 5 secrets left; basic mode; "
        "the bearer of bad news"
    )
    rec = record(text)
    RedactionFilter(["Zq8-plain-looking-value"]).filter(rec)
    assert rec.getMessage() == text


def test_tracebacks_and_stacks_are_masked() -> None:
    try:
        raise ConnectionError("could not reach postgres://app:pw-in-url@db:5432/x")
    except ConnectionError:
        rec = logging.LogRecord("db", logging.ERROR, __file__, 1, "down", None, sys.exc_info())
    rec.stack_info = "Stack:\n  token=abcdef123"
    RedactionFilter().filter(rec)
    assert rec.exc_text is not None
    assert "pw-in-url" not in rec.exc_text and "postgres://***@db" in rec.exc_text
    assert "abcdef123" not in rec.stack_info
    assert "pw-in-url" not in JsonFormatter().format(rec)


SQL_ERROR = (
    "(psycopg2.errors.UniqueViolation) duplicate key\n"
    "[SQL: INSERT INTO users (email)\nVALUES (%(email)s)]\n"
    "[parameters: {'email': 'reader@example.com'}]\n"
    "(Background on this error at: https://sqlalche.me/e/20/gkpj)"
)


def test_sql_and_its_parameters_are_hidden_at_info_and_above() -> None:
    rec = record("write failed: %s", SQL_ERROR, level=logging.WARNING)
    RedactionFilter().filter(rec)
    assert rec.getMessage() == (
        "write failed: (psycopg2.errors.UniqueViolation) duplicate key\n"
        "[SQL: (hidden)]\n[parameters: (hidden)]\n"
        "(Background on this error at: https://sqlalche.me/e/20/gkpj)"
    )


def test_sql_stays_visible_at_debug() -> None:
    rec = record("%s", SQL_ERROR, level=logging.DEBUG)
    RedactionFilter().filter(rec)
    assert "INSERT INTO users" in rec.getMessage()


def test_a_bad_format_string_is_left_for_the_handler_to_report() -> None:
    rec = record("%d items", "many")
    assert RedactionFilter().filter(rec)
    assert rec.args == ("many",)


# --- configure() --------------------------------------------------------------------


def test_json_logs_carry_the_request_id_and_no_secret() -> None:
    stream = io.StringIO()
    configure("INFO", "json", secrets=["the-admin-key-value"], stream=stream)
    token = current_request_id.set("abc123")
    try:
        logging.getLogger("app").info("admin key %s rejected", "the-admin-key-value")
        logging.getLogger("app").debug("not shown at INFO")
    finally:
        current_request_id.reset(token)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["message"] == "admin key *** rejected"
    assert entry["request_id"] == "abc123"


def test_text_logs_keep_their_format_and_masking() -> None:
    stream = io.StringIO()
    configure("debug", stream=stream)
    logging.getLogger("app").debug("dsn %s", "postgres://u:pw12345@h/db")
    line = stream.getvalue().strip()
    assert line.endswith("DEBUG app [-] dsn postgres://***@h/db")


def test_uvicorn_loggers_are_sent_through_the_handler() -> None:
    logging.getLogger("uvicorn.access").handlers.append(logging.NullHandler())
    logging.getLogger("uvicorn.access").propagate = False
    stream = io.StringIO()
    configure("INFO", "json", stream=stream)
    access = logging.getLogger("uvicorn.access")
    access.info('%s - "%s %s HTTP/%s" %d', "1.2.3.4:5", "GET", "/x?token=abcd1234", "1.1", 200)
    entry = json.loads(stream.getvalue())
    assert entry["logger"] == "uvicorn.access"
    assert entry["message"] == '1.2.3.4:5 - "GET /x?token=*** HTTP/1.1" 200'


async def test_a_real_uvicorn_access_line_is_json_with_the_request_id() -> None:
    stream = io.StringIO()
    configure("INFO", "json", stream=stream)
    app = FastAPI()
    app.add_middleware(RequestIdMiddleware)

    @app.get("/hello")
    async def hello() -> dict[str, str]:
        return {"hello": "world"}

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()  # connections wait in the backlog until uvicorn has started
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_config=None, lifespan="off", ws="none", http="h11")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with httpx.AsyncClient() as client:
            response = await client.get(
                f"http://127.0.0.1:{port}/hello?api_key=k3y-value",
                headers={"X-Request-ID": "from-client-7"},
            )
        assert response.status_code == 200
    finally:
        server.should_exit = True
        await serving
        sock.close()
    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    access = [e for e in entries if e["logger"] == "uvicorn.access"]
    assert len(access) == 1
    assert access[0]["request_id"] == "from-client-7"
    assert "GET /hello?api_key=*** HTTP/1.1" in access[0]["message"]
    assert "k3y-value" not in stream.getvalue()
