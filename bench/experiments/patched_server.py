"""The real service with one proposed fix applied from the outside, to measure a fix
before anyone edits src/ (used by ``bench.run health --experiment ...``).

    python -m bench.experiments.patched_server [--async-deps] [--loop uvloop] [--http httptools]
                                               [--access-log off]

Same settings, app and adapters as ``rag-backend serve`` (entrypoints.cli._serve);
the options change only:

--async-deps   replaces the synchronous ``get_container`` and ``get_metrics`` of
               ``entrypoints.http.deps`` (and the ``ContainerDep``/``MetricsDep`` aliases)
               by ``async def`` twins before the routes are imported, exactly as the
               proposed src/ fix would, so FastAPI stops sending every request through
               anyio's thread pool. (Not with ``app.dependency_overrides``: any
               override makes FastAPI rebuild every sub-dependency's signature on
               each request, which costs more than it saves.)
--loop/--http  uvicorn's event loop and HTTP parser (uvloop, httptools need to be
               importable, e.g. ``pip install --target /tmp/uvx uvloop httptools`` and
               that folder on PYTHONPATH).
--access-log   ``off`` silences uvicorn's per-request access log line.
--embed-slots N     OpenAIEmbedder's ``max_concurrency`` (service-wide semaphore; 4 in src).
--embed-base64      OpenAIEmbedder asks for base64 vectors and decodes them with ``array``
                    instead of letting the openai client build 1536 floats per vector
                    through ``construct_type``.
"""

from __future__ import annotations

import argparse
import logging
from typing import Annotated

import uvicorn
from fastapi import Depends, Request

from adapters.settings import Settings
from entrypoints import logs
from entrypoints.container import Container


def patch_async_deps() -> None:
    """Must run before entrypoints.http.app (and so the routes) is imported."""
    from entrypoints.http import deps
    from entrypoints.http.metrics import Metrics

    async def get_container(request: Request) -> Container:
        container: Container = request.app.state.container
        return container

    async def get_metrics(request: Request) -> Metrics:
        metrics: Metrics = request.app.state.metrics
        return metrics

    deps.get_container = get_container  # type: ignore[assignment]
    deps.ContainerDep = Annotated[Container, Depends(get_container)]  # type: ignore[misc]
    deps.get_metrics = get_metrics  # type: ignore[assignment]
    deps.MetricsDep = Annotated[Metrics, Depends(get_metrics)]  # type: ignore[misc]


def patch_embedder(slots: int | None, base64_vectors: bool) -> None:
    import array
    import base64
    import functools

    from adapters.openai import embedder as module
    from adapters.openai.errors import DEPENDENCY, call
    from rag_core.errors import DependencyUnavailable

    cls = module.OpenAIEmbedder
    if slots:
        original_init = cls.__init__

        @functools.wraps(original_init)
        def init(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            kwargs["max_concurrency"] = slots
            original_init(self, *args, **kwargs)

        cls.__init__ = init  # type: ignore[method-assign]
    if base64_vectors:

        async def _embed_batch(self, batch):  # type: ignore[no-untyped-def]
            async with self._slots:
                response = await call(
                    self._retry,
                    lambda: self._client.embeddings.create(
                        model=self._model, input=batch, encoding_format="base64"
                    ),
                    label="openai embeddings",
                    secret=self._client.api_key,
                )
            items = sorted(response.data, key=lambda item: item.index)
            if [item.index for item in items] != list(range(len(batch))):
                raise DependencyUnavailable(DEPENDENCY, "embeddings count mismatch")
            vectors = []
            for item in items:
                raw = item.embedding
                if isinstance(raw, str):
                    values = array.array("f")
                    values.frombytes(base64.b64decode(raw))
                    vectors.append(tuple(values))
                else:
                    vectors.append(tuple(float(x) for x in raw))
            for vector in vectors:
                self._check_dimension(len(vector))
            return vectors

        cls._embed_batch = _embed_batch  # type: ignore[method-assign]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--async-deps", action="store_true")
    p.add_argument("--loop", default="auto")
    p.add_argument("--http", default="auto")
    p.add_argument("--access-log", default="on", choices=["on", "off"])
    p.add_argument("--embed-slots", type=int, default=None)
    p.add_argument("--embed-base64", action="store_true")
    args = p.parse_args()
    if args.embed_slots or args.embed_base64:
        patch_embedder(args.embed_slots, args.embed_base64)
    if args.async_deps:
        patch_async_deps()
    from entrypoints.http.app import create_app
    from entrypoints.server import DrainingServer

    settings = Settings()
    logs.configure(settings.log_level)
    app = create_app(settings)
    server = DrainingServer(app, settings.host, settings.port)
    server.config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        timeout_graceful_shutdown=20,
        proxy_headers=True,
        loop=args.loop,
        http=args.http,
        access_log=args.access_log == "on",
    )
    if args.access_log == "off":
        logging.getLogger("uvicorn.access").disabled = True
    server.run()


if __name__ == "__main__":
    main()
