"""Prometheus metrics: the :class:`Metrics` of one app (its own registry, so that
tests can build many apps), the ASGI middleware that times every request, and the
``GET /metrics`` router (text exposition format).

Labels are bounded on purpose: requests are labelled by route template
(``/api/chat/sessions/{session_id}``, ``unmatched`` for no route), never by raw path;
methods outside the standard ones become ``other``; upstream error labels must be
class names or short kinds (anything else becomes ``other``).

Values live in this process: with several worker processes or replicas, each one
exposes its own counts (scrape each, or sum in Prometheus).
"""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rag_core.health import CIRCUIT_STATES
from rag_core.ingestion import IngestReport

log = logging.getLogger(__name__)
T = TypeVar("T")

CircuitSnapshots = Callable[[], Iterable[tuple[str, str]]]
"""Returns (dependency, state) pairs, state one of CIRCUIT_STATES; called at scrape time."""
PendingCount = Callable[[], int | None]
"""Returns the number of outbox entries waiting (None: unknown); called at scrape time."""

HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
UPSTREAM_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
UNMATCHED = "unmatched"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_ERROR_LABEL = re.compile(r"[A-Za-z_][A-Za-z0-9_.]{0,63}")


class Metrics:
    """The service's metrics, in a registry of their own (``registry``).

    Callbacks given to :meth:`watch_circuits` and :meth:`watch_outbox` run on every
    scrape, on the event loop: they must return cached values and never do I/O. A
    callback that raises leaves its metric out of that scrape (and is logged).
    """

    def __init__(self, *, namespace: str = "rag", process: bool = True) -> None:
        self.registry = CollectorRegistry()
        self.namespace = namespace
        counter = functools.partial(Counter, namespace=namespace, registry=self.registry)
        histogram = functools.partial(Histogram, namespace=namespace, registry=self.registry)
        gauge = functools.partial(Gauge, namespace=namespace, registry=self.registry)
        request_labels = ["method", "route", "status"]
        self.http_requests = counter("http_requests", "HTTP requests answered.", request_labels)
        self.http_duration = histogram(
            "http_request_duration_seconds",
            "Time from a request's arrival to the end of its response (whole stream).",
            request_labels,
            buckets=HTTP_BUCKETS,
        )
        self.upstream_duration = histogram(
            "upstream_call_duration_seconds",
            "Duration of calls to outside dependencies, by outcome (ok or error).",
            ["dependency", "outcome"],
            buckets=UPSTREAM_BUCKETS,
        )
        self.upstream_errors = counter(
            "upstream_errors", "Failed calls to outside dependencies.", ["dependency", "error"]
        )
        self.ingest_documents = counter(
            "ingest_documents", "Documents seen by ingestion, by change.", ["change"]
        )
        self.ingest_chunks_written = counter(
            "ingest_chunks_written", "Chunks written to the index by ingestion."
        )
        self.ingest_embedding_calls = counter(
            "ingest_embedding_calls", "Embedding calls made by ingestion."
        )
        self.streams_in_flight = gauge(
            "streams_in_flight", "Server-sent event responses being streamed now."
        )
        self.rate_limited = counter(
            "rate_limited_requests", "Requests refused by a rate limit.", ["policy"]
        )
        self.answers = counter(
            "answers",
            "Answers given, by mode and whether they were uncertain.",
            ["mode", "uncertain"],
        )
        self.feedback = counter("feedback", "Readers' votes on answers.", ["rating"])
        self._circuits: CircuitSnapshots | None = None
        self._outbox: PendingCount | None = None
        self.registry.register(_ScrapeTimeCollector(self))
        if process:
            ProcessCollector(namespace=namespace, registry=self.registry)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request (the middleware calls this)."""
        labels = (method if method in _METHODS else "other", route, str(status))
        self.http_requests.labels(*labels).inc()
        self.http_duration.labels(*labels).observe(seconds)

    def observe_upstream(self, dependency: str, seconds: float, error: str | None = None) -> None:
        """Record one call to ``dependency`` that took ``seconds``; ``error`` is the
        failure's class name or kind (e.g. ``"ReadTimeout"``, ``"circuit_open"``)."""
        outcome = "ok" if error is None else "error"
        self.upstream_duration.labels(dependency, outcome).observe(seconds)
        if error is not None:
            label = error if _ERROR_LABEL.fullmatch(error) else "other"
            self.upstream_errors.labels(dependency, label).inc()

    def record_ingest(self, report: IngestReport) -> None:
        """Add an ingestion run's counts."""
        changes = {
            "added": report.documents_added,
            "changed": report.documents_changed,
            "unchanged": report.documents_unchanged,
            "removed": report.documents_removed,
        }
        for change, count in changes.items():
            self.ingest_documents.labels(change).inc(count)
        self.ingest_chunks_written.inc(report.chunks_written)
        self.ingest_embedding_calls.inc(report.embedding_calls)

    def record_answer(self, mode: str, uncertain: bool) -> None:
        """Count an answer (``Insights.observe_answer``)."""
        self.answers.labels(mode, "true" if uncertain else "false").inc()

    def record_feedback(self, rating: str) -> None:
        """Count a vote (``Insights.observe_vote``)."""
        self.feedback.labels(rating).inc()

    def record_rate_limited(self, policy: str) -> None:
        """Count a refusal (``RateLimiter(on_refused=metrics.record_rate_limited)``)."""
        self.rate_limited.labels(policy).inc()

    def watch_circuits(self, snapshots: CircuitSnapshots) -> None:
        """Expose ``circuit_state{dependency, state}`` (1 for the current state, else 0)."""
        self._circuits = snapshots

    def watch_outbox(self, pending: PendingCount) -> None:
        """Expose ``outbox_pending``: writes kept durably, waiting for the database."""
        self._outbox = pending

    def render(self) -> bytes:
        """The registry in Prometheus text format."""
        return generate_latest(self.registry)

    def _scrape_time(self) -> Iterator[Metric]:
        if self._circuits is not None:
            circuits = GaugeMetricFamily(
                f"{self.namespace}_circuit_state",
                "Circuit breaker state per dependency (1 for the current state).",
                labels=["dependency", "state"],
            )
            for dependency, current in _called(self._circuits, "circuit snapshots") or ():
                for state in dict.fromkeys((*CIRCUIT_STATES, current)):
                    circuits.add_metric([dependency, state], 1.0 if state == current else 0.0)
            yield circuits
        if self._outbox is not None:
            pending = _called(self._outbox, "outbox pending count")
            if pending is not None:
                yield GaugeMetricFamily(
                    f"{self.namespace}_outbox_pending",
                    "Writes kept durably and waiting to reach the database.",
                    value=pending,
                )


class _ScrapeTimeCollector:
    """Reads the metrics whose values live elsewhere, at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return list(self._metrics._scrape_time())


def _called(callback: Callable[[], T], what: str) -> T | None:
    try:
        return callback()
    except Exception as exc:
        log.warning("metrics: reading the %s failed (%s)", what, type(exc).__name__)
        return None


class MetricsMiddleware:
    """Times every HTTP request and counts it by method, route template and status
    (pure ASGI). A request that raises before responding counts as a 500; a
    ``text/event-stream`` response is in ``streams_in_flight`` until it ends."""

    def __init__(
        self, app: ASGIApp, metrics: Metrics, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = self.clock()
        status = 500
        streaming = False

        async def send_observed(message: Message) -> None:
            nonlocal status, streaming
            if message["type"] == "http.response.start":
                status = message["status"]
                streaming = _is_event_stream(message.get("headers", []))
                if streaming:
                    self.metrics.streams_in_flight.inc()
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        finally:
            if streaming:
                self.metrics.streams_in_flight.dec()
            route = scope.get("route")
            template = getattr(route, "path_format", None) or UNMATCHED
            seconds = self.clock() - started
            self.metrics.observe_request(scope["method"], template, status, seconds)


def _is_event_stream(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    return any(
        name.lower() == b"content-type" and value.lower().startswith(b"text/event-stream")
        for name, value in headers
    )


def metrics_router(metrics: Metrics, path: str = "/metrics") -> APIRouter:
    """``GET {path}``: the metrics in Prometheus text format."""
    router = APIRouter(tags=["status"])

    @router.get(
        path,
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
    )
    async def scrape() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return router
