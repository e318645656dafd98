"""Which running service holds this DATA_DIR, so the CLI hands its work to that one only.

The embedded index admits one process per data folder. When `rag-backend serve` has
started (its container built, so the folder's lock held), it publishes
``DATA_DIR/service.json`` (mode 0600): its address and a random nonce of this run. Its
``GET /internal/instance?challenge=C`` answers ``HMAC-SHA256(nonce, C)``. Before sending
anything (documents, a question, the admin key), the CLI reads the record, asks that
address with a fresh challenge and compares: only the process that wrote the record
knows the nonce, and the answer never reveals it. Whatever else listens on ``PORT``
(another instance, another program, a port taken over after a crash) gets nothing.

The record is withdrawn at shutdown, if it is still this run's (a later run may have
replaced it). With several worker processes (``entrypoints.workers``) the supervisor
draws the nonce, hands it to every worker (so any of them can answer the proof) and
publishes the record itself once they have all started.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
import secrets
from collections.abc import AsyncIterator
from typing import Annotated, Any

import attrs
import httpx
from fastapi import FastAPI, Query

from adapters.settings import Settings

RECORD = "service.json"
CHALLENGE_PATTERN = r"^[0-9A-Za-z_-]{16,128}$"
PROOF_TIMEOUT = 5.0

log = logging.getLogger(__name__)


@attrs.frozen
class Published:
    """What a running service published about itself in its DATA_DIR."""

    url: str
    nonce: str
    pid: int


class NotTheService(Exception):
    """No running service of this DATA_DIR could be verified; nothing was sent."""


def proof(nonce: str, challenge: str) -> str:
    return hmac.new(nonce.encode(), challenge.encode(), hashlib.sha256).hexdigest()


def local_url(settings: Settings) -> str:
    """Where a local client reaches the service bound to HOST:PORT."""
    host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(settings.host, settings.host)
    return f"http://{f'[{host}]' if ':' in host else host}:{settings.port}"


def new_nonce() -> str:
    return secrets.token_urlsafe(32)


def publish(settings: Settings, nonce: str | None = None) -> Published:
    """Write this run's record (``nonce``, or a new one) into DATA_DIR, readable by its
    owner only."""
    record = Published(local_url(settings), nonce or new_nonce(), os.getpid())
    folder = settings.data_dir
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / RECORD
    temporary = folder / f".{RECORD}.{record.pid}.{secrets.token_hex(4)}"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        json.dump(attrs.asdict(record), file)
    os.replace(temporary, path)
    return record


def read(settings: Settings) -> Published | None:
    """The record in DATA_DIR, or None if there is none (or it is unreadable)."""
    try:
        data = json.loads((settings.data_dir / RECORD).read_text(encoding="utf-8"))
        return Published(str(data["url"]), str(data["nonce"]), int(data["pid"]))
    except (OSError, ValueError, TypeError, KeyError):
        return None


def withdraw(settings: Settings, record: Published) -> None:
    """Remove the record if it is still ``record`` (not a later run's)."""
    current = read(settings)
    if current is not None and current.nonce == record.nonce:
        with contextlib.suppress(FileNotFoundError):
            (settings.data_dir / RECORD).unlink()


def install(app: FastAPI, settings: Settings, nonce_of_run: str | None = None) -> None:
    """Add the proof route to ``app`` and publish the record once it has started
    (withdrawn when it stops). With ``nonce_of_run`` (a worker's: its supervisor
    publishes) the app proves that nonce once started and publishes nothing."""
    nonce = {"current": ""}  # none before start-up: no proof can match

    @app.get("/internal/instance", include_in_schema=False)
    async def instance_proof(
        challenge: Annotated[str, Query(pattern=CHALLENGE_PATTERN)],
    ) -> dict[str, str]:
        if not nonce["current"]:
            return {"proof": ""}
        return {"proof": proof(nonce["current"], challenge)}

    starting = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[Any]:
        async with starting(app) as state:
            if nonce_of_run is not None:
                nonce["current"] = nonce_of_run
                try:
                    yield state
                finally:
                    nonce["current"] = ""
                return
            try:
                record = publish(settings)
            except OSError as exc:  # serving matters more than the CLI's hand-over
                log.warning(
                    "cannot publish %s (%s): rag-backend ingest/ask will not hand work to this "
                    "service",
                    settings.data_dir / RECORD,
                    exc.strerror or exc,
                )
                yield state
                return
            nonce["current"] = record.nonce
            try:
                yield state
            finally:
                nonce["current"] = ""
                withdraw(settings, record)

    app.router.lifespan_context = lifespan


def verified_service(settings: Settings) -> Published:
    """The running service that holds this DATA_DIR, verified by its proof of the nonce.

    Raises NotTheService (saying why) when there is no record, the address does not
    answer, or what answers cannot prove the nonce.
    """
    record = read(settings)
    where = settings.data_dir / RECORD
    if record is None:
        raise NotTheService(
            f"the index in {settings.data_dir} is in use, but no running service published "
            f"its address in {where} (one still starting, or another command): try again, "
            "or stop it"
        )
    challenge = secrets.token_urlsafe(24)
    try:
        answer = httpx.get(
            f"{record.url}/internal/instance",
            params={"challenge": challenge},
            timeout=PROOF_TIMEOUT,
        )
        given = answer.json().get("proof") if answer.status_code == 200 else None
    except (httpx.HTTPError, ValueError, AttributeError) as exc:
        raise NotTheService(
            f"the service recorded in {where} does not answer at {record.url} "
            f"({str(exc) or type(exc).__name__}): nothing was sent"
        ) from None
    if not isinstance(given, str) or not hmac.compare_digest(given, proof(record.nonce, challenge)):
        raise NotTheService(
            f"what answers at {record.url} is not the service that holds {settings.data_dir} "
            f"(it cannot prove the nonce in {where}): nothing was sent"
        )
    return record
