"""The FastAPI application factory. Nothing is built at import time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from adapters.lazy_index import LazyIndex
from adapters.rate_limits.sqlite import FILENAME as RATE_LIMITS_FILE
from adapters.rate_limits.sqlite import SqliteArrivals
from adapters.settings import ConfigurationError, Settings
from entrypoints.bootstrap import build_container, check_production
from entrypoints.container import Container
from entrypoints.http import errors, page, rate_limit, responses
from entrypoints.http.bodies import BodyLimitMiddleware
from entrypoints.http.metrics import Metrics, MetricsMiddleware, metrics_router
from entrypoints.http.rate_limiter import RateLimitConfig, RateLimiter, policies_of
from entrypoints.http.request_id import RequestIdMiddleware
from entrypoints.http.routes import (
    auth,
    chat,
    ingest,
    insights,
    openai_compat,
    sessions,
    status,
    stream,
    transforms,
)
from entrypoints.http.sources import site_base
from rag_core.errors import DependencyUnavailable

log = logging.getLogger(__name__)

VERSION = "0.1.0"
FLUSH_ON_SHUTDOWN_SECONDS = 5
LOCAL_DEV_ORIGINS = (
    "http://localhost:3000",
    "http://localhost:3001",
    "http://127.0.0.1:3000",
    "http://127.0.0.1:3001",
)
"""The Docusaurus dev server's origins (``npm start``, and a second site on 3001),
allowed locally when no CORS setting is given; production allows only what is listed."""


def create_app(settings: Settings, container: Container | None = None) -> FastAPI:
    """Build the app. With ``container`` (e.g. ``in_memory_container()``) nothing
    is built at start-up; otherwise the lifespan builds it from ``settings``."""
    check_production(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = container is None
        app.state.draining = False
        app.state.container = built = container or await build_container(settings)
        metrics.watch_circuits(
            lambda: [(snap.name, snap.state) for snap in (b.snapshot() for b in built.breakers)]
        )
        for breaker in built.breakers:
            breaker.observe = metrics.observe_upstream
        if built.outbox is not None:
            metrics.watch_outbox(built.outbox.pending)
        if built.insights is not None:
            built.insights.observe_answer = metrics.record_answer
            built.insights.observe_vote = metrics.record_feedback
        tasks: list[asyncio.Task[None]] = []
        try:
            preparation = built.preparation
            if settings.docs_paths and preparation is not None and not preparation.prepared:
                # The index was unreachable: ingest once a call that reached it prepared it.
                ingest = _ingest_when_prepared(preparation, built, settings, metrics)
                tasks.append(asyncio.create_task(ingest))
            elif settings.docs_paths:
                await _ingest_at_startup(built, settings, metrics)
            await built.health.refresh()
            tasks.append(asyncio.create_task(built.health.run(settings.health_interval)))
            if metrics.shared is not None:  # other workers read this one's gauges
                tasks.append(asyncio.create_task(metrics.publish_every(settings.health_interval)))
            if built.outbox is not None:
                tasks.append(asyncio.create_task(built.outbox.run(settings.outbox_flush_interval)))
            if built.insights is not None:
                tasks.append(asyncio.create_task(built.insights.run()))
            app.state.started = True
            yield
        finally:
            app.state.draining = True
            app.state.started = False
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if built.outbox is not None:
                await _last_flush(built)
            if built.insights is not None:  # the answers still being logged
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(FLUSH_ON_SHUTDOWN_SECONDS):
                        await built.insights.settle()
            if owned:
                await built.aclose()
            limiter.close()

    app = FastAPI(
        title="rag-backend",
        version=VERSION,
        description="Grounded, cited answers from a documentation site.",
        lifespan=lifespan,
    )
    app.state.started = False
    app.state.draining = False
    app.state.metrics = metrics = Metrics()
    app.state.site_url = site = site_base(settings)
    app.state.append_sources = settings.append_sources
    rate_limit.install(app, limiter := _limiter(settings, metrics))
    errors.install(app)
    page.install(app, site)
    app.include_router(status.router)
    app.include_router(chat.router)
    app.include_router(stream.router)
    app.include_router(openai_compat.router)
    app.include_router(auth.router)
    app.include_router(sessions.router)
    app.include_router(transforms.router)
    app.include_router(ingest.router)
    app.include_router(insights.router)
    _declare_body_limit(app)
    app.add_middleware(
        BodyLimitMiddleware,
        default=settings.max_body_bytes,
        limits={"/ingest": settings.max_ingest_body_bytes},
        hints={"/ingest": "send fewer documents per request, or raise MAX_INGEST_BODY_BYTES"},
    )
    app.add_middleware(
        CORSMiddleware,
        allow_origins=cors_origins(settings),
        allow_origin_regex=settings.cors_origin_regex,
        allow_credentials=True,
        allow_methods=["*"],
        allow_headers=["*"],
        expose_headers=["X-Request-ID", "Retry-After"],
    )
    app.include_router(metrics_router(metrics))
    # Outermost first at run time: request id, then metrics, then CORS (so a 413 carries
    # its headers), then the body bounds.
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(RequestIdMiddleware)
    return app


def _declare_body_limit(app: FastAPI) -> None:
    """The document declares the 413 that BodyLimitMiddleware answers on every route
    with a body (after errors.install's rewrite of the 422)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            responses.declare_body_limit(build())
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def cors_origins(settings: Settings) -> list[str]:
    """CORS_ALLOWED_ORIGINS; locally, with neither it nor CORS_ORIGIN_REGEX set, the
    Docusaurus dev server's origins (:data:`LOCAL_DEV_ORIGINS`)."""
    if settings.cors_origins or settings.cors_origin_regex or settings.production:
        return settings.cors_origins
    log.info("no CORS setting: allowing %s (local only)", ", ".join(LOCAL_DEV_ORIGINS))
    return list(LOCAL_DEV_ORIGINS)


def _limiter(settings: Settings, metrics: Metrics) -> RateLimiter:
    try:
        config = RateLimitConfig.parse(
            policies_of(settings),
            proxy_hops=settings.proxy_hops,
            max_keys=settings.rate_limit_max_keys,
            enabled=settings.rate_limit_enabled,
        )
    except ValueError as exc:
        raise ConfigurationError(f"rate limits: {exc}") from None
    return RateLimiter(
        config, store=_shared_store(settings), on_refused=metrics.record_rate_limited
    )


def _shared_store(settings: Settings) -> SqliteArrivals | None:
    """With several worker processes, the file they all count in; a single process
    (WORKERS unset or 1) counts in its own memory, at no cost, and so does a limiter
    that is disabled."""
    if not settings.rate_limit_enabled or (settings.workers or 1) <= 1:
        return None
    return SqliteArrivals(settings.data_dir / RATE_LIMITS_FILE)


async def _last_flush(container: Container) -> None:
    """Best effort, bounded: what cannot be written stays in the outbox file for
    the next start."""
    assert container.outbox is not None
    try:
        async with asyncio.timeout(FLUSH_ON_SHUTDOWN_SECONDS):
            await container.outbox.flush()
    except Exception as exc:  # shutting down must not fail on it
        log.warning("outbox not flushed on shutdown (%s); kept on disk", type(exc).__name__)


async def _ingest_when_prepared(
    preparation: LazyIndex, container: Container, settings: Settings, metrics: Metrics
) -> None:
    """DOCS_PATH's ingest, deferred until the index is prepared; tried again every
    HEALTH_INTERVAL while the index is unavailable."""
    await preparation.wait_prepared()
    while True:
        try:
            await _ingest_at_startup(container, settings, metrics)
            return
        except DependencyUnavailable as exc:
            log.warning(
                "DOCS_PATH not ingested yet: %s unavailable (%s); trying again in %g s",
                exc.dependency,
                exc.reason,
                settings.health_interval,
            )
        except Exception as exc:  # a start-up ingest would have stopped the start-up
            log.error("DOCS_PATH not ingested: %s", str(exc) or type(exc).__name__)
            return
        await asyncio.sleep(settings.health_interval)


async def _ingest_at_startup(container: Container, settings: Settings, metrics: Metrics) -> None:
    paths = [p for p in settings.docs_paths if p.exists()]
    for missing in set(settings.docs_paths) - set(paths):
        log.warning("DOCS_PATH entry %s does not exist; skipped", missing)
    report = await container.ingest_paths(paths)
    metrics.record_ingest(report)
    log.info(
        "ingested %s: %d added, %d changed, %d unchanged, %d removed documents; %d chunks written",
        ", ".join(str(p) for p in paths),
        report.documents_added,
        report.documents_changed,
        report.documents_unchanged,
        report.documents_removed,
        report.chunks_written,
    )
