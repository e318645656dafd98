"""A Qdrant REST server for tests: real HTTP on loopback, in a background thread,
backed by qdrant-client's local mode (in memory). There is no Qdrant server on the
test machines; this speaks enough of its REST API for ``adapters.qdrant_index``
(collections, payload indexes, upsert, delete, scroll, count, query)::

    with FakeQdrantServer() as qdrant:
        index = QdrantIndex.remote(qdrant.url, None, "docs", timeout=2.0)
        ...
        assert qdrant.collection_exists("docs")

``requests`` lists ``(method, path)`` in arrival order. Put a ``FaultProxy`` in
front of it to make it unreachable and then appear.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel
from qdrant_client import QdrantClient, models

Route = Callable[[QdrantClient, str, Any], Any]


def _exists(client: QdrantClient, name: str, body: Any) -> Any:
    return {"exists": client.collection_exists(name)}


def _get(client: QdrantClient, name: str, body: Any) -> Any:
    return client.get_collection(name)


def _create(client: QdrantClient, name: str, body: Any) -> Any:
    if client.collection_exists(name):
        raise _Reject(409, f"Collection `{name}` already exists!")
    request = models.CreateCollection.model_validate(body)
    return client.create_collection(
        name, vectors_config=request.vectors or {}, sparse_vectors_config=request.sparse_vectors
    )


def _drop(client: QdrantClient, name: str, body: Any) -> Any:
    return client.delete_collection(name)


def _payload_index(client: QdrantClient, name: str, body: Any) -> Any:
    # Local mode has no payload indexes (and warns if asked): only acknowledged.
    return {"operation_id": 0, "status": "completed"}


def _upsert(client: QdrantClient, name: str, body: Any) -> Any:
    points = models.PointsList.model_validate(body).points
    return client.upsert(name, points=points, wait=True)


def _delete(client: QdrantClient, name: str, body: Any) -> Any:
    selector = models.PointIdsList.model_validate(body)
    return client.delete(name, points_selector=selector, wait=True)


def _scroll(client: QdrantClient, name: str, body: Any) -> Any:
    request = models.ScrollRequest.model_validate(body)
    records, offset = client.scroll(
        name,
        scroll_filter=request.filter,
        limit=request.limit or 10,
        offset=request.offset,
        with_payload=request.with_payload if request.with_payload is not None else True,
        with_vectors=request.with_vector or False,
    )
    return {"points": records, "next_page_offset": offset}


def _count(client: QdrantClient, name: str, body: Any) -> Any:
    request = models.CountRequest.model_validate(body)
    return client.count(name, count_filter=request.filter, exact=request.exact is not False)


def _query(client: QdrantClient, name: str, body: Any) -> Any:
    request = models.QueryRequest.model_validate(body)
    return client.query_points(
        name,
        query=request.query,
        using=request.using,
        prefetch=request.prefetch,
        query_filter=request.filter,
        limit=request.limit or 10,
        with_payload=request.with_payload if request.with_payload is not None else True,
    )


ROUTES: dict[tuple[str, str], Route] = {
    ("GET", "exists"): _exists,
    ("GET", ""): _get,
    ("PUT", ""): _create,
    ("DELETE", ""): _drop,
    ("PUT", "index"): _payload_index,
    ("PUT", "points"): _upsert,
    ("POST", "points/delete"): _delete,
    ("POST", "points/scroll"): _scroll,
    ("POST", "points/count"): _count,
    ("POST", "points/query"): _query,
}


class _Reject(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class FakeQdrantServer:
    """See the module docstring. Thread-safe: one request at a time reaches the store."""

    def __init__(self) -> None:
        self._client = QdrantClient(location=":memory:")
        self._lock = threading.Lock()
        self.requests: list[tuple[str, str]] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def collection_exists(self, name: str) -> bool:
        with self._lock:
            return self._client.collection_exists(name)

    def count(self, name: str) -> int:
        with self._lock:
            return self._client.count(name, exact=True).count

    def start(self) -> FakeQdrantServer:
        server = _Server(("127.0.0.1", 0), _handler(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name="fake-qdrant"
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(5)
            self._server = self._thread = None
        self._client.close()

    def __enter__(self) -> FakeQdrantServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def handle(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        self.requests.append((method, path))
        parts = path.strip("/").split("/", 2)
        if len(parts) < 2 or parts[0] != "collections":
            return 404, {"status": {"error": f"no route {path}"}, "time": 0.0}
        name, rest = parts[1], parts[2] if len(parts) > 2 else ""
        route = ROUTES.get((method, rest))
        if route is None:
            return 404, {"status": {"error": f"no route {method} {path}"}, "time": 0.0}
        try:
            with self._lock:
                if rest not in ("exists", "") and not self._client.collection_exists(name):
                    raise _Reject(404, f"Collection `{name}` doesn't exist!")
                if (method, rest) == ("GET", "") and not self._client.collection_exists(name):
                    raise _Reject(404, f"Collection `{name}` doesn't exist!")
                result = route(self._client, name, body)
        except _Reject as exc:
            return exc.status, {"status": {"error": str(exc)}, "time": 0.0}
        except ValueError as exc:
            return 400, {"status": {"error": str(exc)}, "time": 0.0}
        return 200, {"result": _json(result), "status": "ok", "time": 0.0}


def _json(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {key: _json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json(item) for item in value]
    return value


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client gone (reset through the fault proxy) is no news


def _handler(fake: FakeQdrantServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            status, reply = fake.handle(self.command, urlsplit(self.path).path, body)
            data = json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_PUT = do_POST = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
