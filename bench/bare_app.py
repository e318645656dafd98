"""The reference of performance.md's /health target: a bare FastAPI endpoint returning
``{}``, served by uvicorn as the service is (same loop and parser, access log on), with
``/health/ready`` so the harness can wait for it.

    python -m bench.bare_app   # serves on $PORT
"""

from __future__ import annotations

import os

import uvicorn
from fastapi import FastAPI

app = FastAPI()


@app.get("/")
async def empty() -> dict[str, str]:
    return {}


@app.get("/health/ready")
async def ready() -> dict[str, str]:
    return {}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["PORT"]))
