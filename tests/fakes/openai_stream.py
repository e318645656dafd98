"""A streamed chat completion in OpenAI's exact Server-Sent Events format.

One ``data: {chunk}`` event per token: first the role, then a content delta per
token, then the finish reason, then (with ``stream_options.include_usage``) a
chunk with no choices and the usage, and ``data: [DONE]``. With usage asked for,
every other chunk carries ``"usage": null``, as OpenAI's do.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from fakes.openai_content import chunk_json, delta_choice
from fakes.openai_records import Fault, StreamRecord

if TYPE_CHECKING:
    from fakes.openai_handler import Handler


def stream_reply(
    handler: Handler,
    head: dict[str, Any],
    tokens: list[str],
    finish: str,
    usage: dict[str, int],
    body: dict[str, Any],
    fault: Fault | None,
) -> None:
    """Write the stream; stop early (recording it) when the client goes away or
    when ``fault`` says to cut it after some tokens."""
    fake = handler.fake
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    record = StreamRecord(total_tokens=len(tokens))
    with fake.lock:
        fake.streams.append(record)
    handler.send_response(200)
    handler.send_header("Content-Type", "text/event-stream; charset=utf-8")
    handler.send_header("Cache-Control", "no-cache")
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()

    def send(payload: str) -> None:
        data = f"data: {payload}\n\n".encode()
        handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def chunk(choices: list[dict[str, Any]], **extra: Any) -> str:
        return chunk_json(head, choices, include_usage=include_usage, **extra)

    cut_after = fault.after_tokens if fault is not None else None
    try:
        send(chunk([delta_choice({"role": "assistant", "content": "", "refusal": None})]))
        for token in tokens:
            if record.sent == cut_after:
                break
            handler.pause(fake.token_delay)
            if handler.peer_closed():
                _gone(handler, record, fake.lock)
                return
            send(chunk([delta_choice({"content": token})]))
            with fake.lock:
                record.sent += 1
        if cut_after is not None:  # end the connection mid-body: no terminating chunk
            handler.close_connection = True
            return
        send(chunk([delta_choice({}, finish)]))
        if include_usage:
            send(chunk([], usage=usage))
        send("[DONE]")
        handler.wfile.write(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        _gone(handler, record, fake.lock)
        return
    with fake.lock:
        record.completed = True


def _gone(handler: Handler, record: StreamRecord, lock: threading.Lock) -> None:
    handler.close_connection = True
    with lock:
        record.disconnected = True
