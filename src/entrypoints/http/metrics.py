"""Prometheus metrics: the :class:`Metrics` of one app (its own registry, so that
tests can build many apps), the ASGI middleware that times every request, and the
``GET /metrics`` router (text exposition format).

Labels are bounded on purpose: requests are labelled by route template
(``/api/chat/sessions/{session_id}``, ``unmatched`` for no route), never by raw path;
methods outside the standard ones become ``other``; upstream error labels must be
class names or short kinds (anything else becomes ``other``).

One process (no ``PROMETHEUS_MULTIPROC_DIR``): values live in this process and a
scrape renders its registry; circuit states and outbox entries pending are read at
scrape time, and the library's process metrics are included.

Several worker processes (``PROMETHEUS_MULTIPROC_DIR`` set by the supervisor before they
start, see :mod:`entrypoints.http.worker_metrics`): values live in files shared by the
workers and a scrape of any worker renders all of them (prometheus_client's multiprocess
mode). Counters and histograms are summed over the workers. A callback cannot be read
from another process, so each worker writes what it reads into real gauges
(:meth:`Metrics.publish`) at each of its scrapes and every HEALTH_INTERVAL seconds
(:meth:`Metrics.publish_every`, run by the app), so another worker's value is at most
that old. ``circuit_state`` is per worker (``liveall``: a ``pid`` label, since each
worker has its own breakers; ``max by (dependency, state)`` gives the worst), and
``outbox_pending`` and ``streams_in_flight`` are summed over the live workers
(``livesum``). The process metrics become per-worker gauges with a ``pid`` label and a
CPU counter summed over the workers (:class:`~entrypoints.http.worker_metrics.ProcessGauges`).
A worker's gauges leave the scrape when the supervisor reports it exited. A callback
that fails leaves its gauges at their last value (a shared value cannot be withdrawn
while its worker lives). Only one :class:`Metrics` per worker process in this mode
(two would write the same shared values).

Replicas (separate containers) each expose their own values: scrape each, or sum in
Prometheus.
"""

from __future__ import annotations

import asyncio
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

from entrypoints.http import worker_metrics
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
_CIRCUIT_HELP = "Circuit breaker state per dependency (1 for the current state)."
_OUTBOX_HELP = "Writes kept durably and waiting to reach the database."


class Metrics:
    """The service's metrics, in a registry of their own (``registry``).

    Callbacks given to :meth:`watch_circuits` and :meth:`watch_outbox` run on every
    scrape (and, with several workers, at every :meth:`publish`), on the event loop:
    they must return cached values and never do I/O. A callback that raises leaves its
    metric out of that scrape (and is logged); with several workers, at its last value.
    ``shared`` is the folder of the workers' shared values, None for one process.
    """

    def __init__(self, *, namespace: str = "rag", process: bool = True) -> None:
        self.registry = CollectorRegistry()
        self.namespace = namespace
        self.shared = worker_metrics.shared_directory()
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
            "streams_in_flight",
            "Server-sent event responses being streamed now.",
            multiprocess_mode="livesum",
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
        self._circuit_state: Gauge | None = None  # these three: several workers only
        self._outbox_pending: Gauge | None = None
        self._process: worker_metrics.ProcessGauges | None = None
        if self.shared is None:
            self._exposed = self.registry
            self.registry.register(_ScrapeTimeCollector(self))
            if process:
                ProcessCollector(namespace=namespace, registry=self.registry)
        else:
            self._exposed = worker_metrics.aggregate(self.shared)
            self._circuit_state = gauge(
                "circuit_state", _CIRCUIT_HELP, ["dependency", "state"], multiprocess_mode="liveall"
            )
            if process:
                self._process = worker_metrics.ProcessGauges(namespace, self.registry)

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
        """The registry in Prometheus text format; with several workers, all of them."""
        self.publish()
        return generate_latest(self._exposed)

    def publish(self) -> None:
        """With several workers, write this worker's circuit states, outbox entries
        pending and process metrics into the shared gauges; with one process, nothing
        (they are read at scrape time)."""
        if self.shared is None:
            return
        if self._circuits is not None and self._circuit_state is not None:
            for dependency, state, value in self._circuit_values():
                self._circuit_state.labels(dependency, state).set(value)
        pending = self._pending()
        if pending is not None:
            if self._outbox_pending is None:  # created once known: no 0 for no outbox
                self._outbox_pending = Gauge(
                    "outbox_pending",
                    _OUTBOX_HELP,
                    namespace=self.namespace,
                    registry=self.registry,
                    multiprocess_mode="livesum",
                )
            self._outbox_pending.set(pending)
        if self._process is not None:
            self._process.publish()

    async def publish_every(self, seconds: float) -> None:
        """:meth:`publish` now and every ``seconds`` (a background task of each worker),
        so that a scrape answered by another worker shows this one's recent values."""
        while True:
            self.publish()
            await asyncio.sleep(seconds)

    def _circuit_values(self) -> Iterator[tuple[str, str, float]]:
        assert self._circuits is not None
        for dependency, current in _called(self._circuits, "circuit snapshots") or ():
            for state in dict.fromkeys((*CIRCUIT_STATES, current)):
                yield dependency, state, 1.0 if state == current else 0.0

    def _pending(self) -> int | None:
        if self._outbox is None:
            return None
        return _called(self._outbox, "outbox pending count")

    def _scrape_time(self) -> Iterator[Metric]:
        if self._circuits is not None:
            circuits = GaugeMetricFamily(
                f"{self.namespace}_circuit_state", _CIRCUIT_HELP, labels=["dependency", "state"]
            )
            for dependency, state, value in self._circuit_values():
                circuits.add_metric([dependency, state], value)
            yield circuits
        pending = self._pending()
        if pending is not None:
            yield GaugeMetricFamily(f"{self.namespace}_outbox_pending", _OUTBOX_HELP, value=pending)


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
