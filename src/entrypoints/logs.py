"""Logging set-up for the service and the CLI."""

from __future__ import annotations

import logging

from entrypoints.http.request_id import RequestIdFilter

FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def configure(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # httpx logs every request URL at INFO; keep it quiet (URLs may carry hosts we do not print).
    logging.getLogger("httpx").setLevel(logging.WARNING)
