"""The index owner process of `rag-backend serve`: it opens DATA_DIR's embedded index,
the one process that may, and serves it to the workers on a Unix socket.

The supervisor starts it before the workers, waits for ``ready`` (or for the socket to
appear: it is renamed into place once it listens), and gives the workers
``INDEX_OWNER_SOCKET``; their `edge` factory then builds a RemoteIndex
(entrypoints/composition.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import Callable
from pathlib import Path

from adapters.index_owner import serve_index
from adapters.settings import Settings
from entrypoints.composition import VECTOR_INDEXES, Scope

log = logging.getLogger(__name__)


def run(
    settings: Settings,
    path: Path,
    *,
    secret: bytes | None = None,
    ready: Callable[[], None] | None = None,
) -> None:
    """Open the configured embedded index as the composition root does (its `edge` or
    `memory` factory), serve it at ``path`` until SIGTERM or SIGINT, then stop
    listening and close the index (flushed, its folder's lock released).

    ``secret``: see :func:`~adapters.index_owner.serve_index` (None: a new one in
    ``key_path(path)``, which RemoteIndex reads). ``ready`` is called once the socket
    listens. Raises IndexLocked when another process holds the folder.
    """
    try:
        import uvloop
    except ImportError:  # a platform without it (Windows)
        asyncio.run(_own(settings, path, secret, ready))
    else:  # as uvicorn runs the workers: their searches cost the owner less (bench)
        uvloop.run(_own(settings, path, secret, ready))


async def _own(
    settings: Settings, path: Path, secret: bytes | None, ready: Callable[[], None] | None
) -> None:
    choice = settings.vector_index_choice
    if choice not in ("edge", "memory"):
        raise ValueError(f"VECTOR_INDEX={choice} is not an embedded index: it needs no owner")
    # The owner opens the folder itself, whatever its environment says to the workers.
    scope = Scope(settings.model_copy(update={"index_owner_socket": None}))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        built = await VECTOR_INDEXES[choice].build(scope)

        def listening() -> None:
            gc.freeze()  # what start-up built lives as long as the process (as a worker's)
            if ready is not None:
                ready()

        serving = asyncio.create_task(
            serve_index(
                built.index,
                path,
                secret=secret,
                after_deletes=built.after_deletes,
                ready=listening,
            ),
            name="index-owner",
        )
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait((serving, stopping), return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving  # raises what made it stop on its own
        log.info("index owner at %s stopped", path)
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        for close in reversed(scope.closers):
            await close()
