"""Running the app under uvicorn with a graceful shutdown: on SIGTERM/SIGINT the
app is marked draining at once (so /health/ready turns 503 while in-flight
requests and streams finish, within ``grace`` seconds), then the lifespan closes
everything (flushing pending writes)."""

from __future__ import annotations

from types import FrameType

import uvicorn
from fastapi import FastAPI

GRACE_SECONDS = 20


class DrainingServer(uvicorn.Server):
    def __init__(self, app: FastAPI, host: str, port: int, grace: int = GRACE_SECONDS) -> None:
        super().__init__(
            uvicorn.Config(
                app,
                host=host,
                port=port,
                log_config=None,
                timeout_graceful_shutdown=grace,
                proxy_headers=True,
            )
        )
        self._app = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._app.state.draining = True
        super().handle_exit(sig, frame)


def serve(app: FastAPI, host: str, port: int) -> None:
    DrainingServer(app, host, port).run()
