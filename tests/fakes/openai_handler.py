"""The request handler behind FakeOpenAI: one thread per connection, HTTP/1.1
keep-alive, JSON answers with Content-Length and SSE streams in chunked encoding."""

from __future__ import annotations

import json
import select
import socket
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

from fakes.openai_content import (
    WORD,
    chat_usage,
    completion_answer,
    completion_head,
    embedding_of,
    embeddings_answer,
    error_answer,
    model_entry,
)
from fakes.openai_records import Fault
from fakes.openai_stream import stream_reply

if TYPE_CHECKING:
    from fakes.openai_server import FakeOpenAI


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes

    @property
    def fake(self) -> FakeOpenAI:
        server: Any = self.server  # a _Server, which carries its FakeOpenAI
        fake: FakeOpenAI = server.fake
        return fake

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests read counters, not access logs

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/v1/models":
            self._serve("models", None, self._models)
        elif path.startswith("/v1/models/"):
            self._serve("models", None, lambda body, fault: self._model(path[11:]))
        else:
            self._error(404, f"Unknown path {path}")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)  # read first: the connection is kept alive
        path = self.path.split("?", 1)[0]
        routes = {"/v1/embeddings": ("embeddings", self._embeddings)}
        routes["/v1/chat/completions"] = ("chat", self._chat)
        if path not in routes:
            self._error(404, f"Unknown path {path}")
            return
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._error(400, "We could not parse the JSON body of your request.")
            return
        endpoint, action = routes[path]
        self._serve(endpoint, body, action)

    def _serve(
        self,
        endpoint: str,
        body: dict[str, Any] | None,
        action: Callable[[dict[str, Any], Fault | None], None],
    ) -> None:
        fake = self.fake
        with fake.lock:
            fake.requests[endpoint] += 1
            fake.in_flight[endpoint] += 1
            fake.max_concurrent[endpoint] = max(
                fake.max_concurrent[endpoint], fake.in_flight[endpoint]
            )
            if body is not None:
                fake.bodies.append((endpoint, body))
            fault = next((f for f in fake.faults if f.endpoint in (None, endpoint)), None)
            if fault is not None:
                fake.faults.remove(fault)
        try:
            key = self.headers.get("Authorization", "").removeprefix("Bearer ")
            if fake.api_key is not None and key != fake.api_key:
                self._error(401, "Incorrect API key provided.", code="invalid_api_key")
            elif fault is not None and fault.status is not None:
                message = (fault.message or f"Injected failure {fault.status}").format(api_key=key)
                headers = dict(fault.headers)
                if fault.retry_after is not None:
                    headers["Retry-After"] = fault.retry_after
                self._error(fault.status, message, code=fault.code, headers=headers)
            else:
                action(body or {}, fault)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            with fake.lock:
                fake.in_flight[endpoint] -= 1

    def _models(self, body: dict[str, Any], fault: Fault | None) -> None:
        data = [model_entry(m) for m in self.fake.models]
        self._json(200, {"object": "list", "data": data})

    def _model(self, name: str) -> None:
        if name in self.fake.models:
            self._json(200, model_entry(name))
        else:
            self._error(404, f"The model `{name}` does not exist", code="model_not_found")

    def _embeddings(self, body: dict[str, Any], fault: Fault | None) -> None:
        fake = self.fake
        inputs = body.get("input")
        inputs = [inputs] if isinstance(inputs, str) else inputs
        if not isinstance(inputs, list) or not all(isinstance(t, str) for t in inputs):
            self._error(400, "The fake embeds strings only.")
            return
        if not inputs or not all(inputs):
            self._error(400, "'$.input' is invalid. Please check the API reference.")
            return
        longest = max(len(t) for t in inputs)
        if longest > fake.max_input_chars:
            self._error(
                400,
                f"This model's maximum context length is {fake.max_input_chars} tokens, "
                f"however you requested {longest} tokens.",
                code="context_length_exceeded",
            )
            return
        if fault is not None:  # a dropped "stream" on a plain request: no answer at all
            self.close_connection = True
            return
        self.pause(fake.embedding_latency)
        model = str(body.get("model", ""))
        dimension = int(body.get("dimensions") or fake.dimension)
        as_base64 = body.get("encoding_format") == "base64"
        embeddings = [embedding_of(model, t, dimension, as_base64=as_base64) for t in inputs]
        with fake.lock:
            fake.inputs += len(inputs)
        self._json(200, embeddings_answer(model, inputs, embeddings))

    def _chat(self, body: dict[str, Any], fault: Fault | None) -> None:
        fake = self.fake
        messages = body.get("messages")
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            self._error(400, "'messages' must be a list of messages.")
            return
        self.pause(fake.first_byte_latency)
        with fake.lock:
            scripted = fake.scripted.popleft() if fake.scripted else None
        reply = scripted if scripted is not None else fake.reply(messages)
        tokens = WORD.findall(reply)
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        finish = "stop"
        if isinstance(limit, int) and len(tokens) > limit:
            tokens, finish = tokens[:limit], "length"
        usage = chat_usage(messages, tokens)
        head = completion_head(str(body.get("model", "")))
        if body.get("stream"):
            stream_reply(self, head, tokens, finish, usage, body, fault)
            return
        if fault is not None:
            self.close_connection = True
            return
        self._json(200, completion_answer(head, "".join(tokens), finish, usage))

    # -- plumbing ------------------------------------------------------------------

    def pause(self, seconds: float) -> None:
        """Sleep, but wake at once when the fake stops."""
        if seconds > 0:
            self.fake.stopping.wait(seconds)

    def peer_closed(self) -> bool:
        """Whether the client has closed its end (a readable socket with nothing to read)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _json(self, status: int, payload: object, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _error(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self._json(status, error_answer(status, message, code), headers)
