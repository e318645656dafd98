"""The embedded index behind one owner process, for the worker processes of `serve`.

Qdrant Edge admits one process per data folder (:mod:`adapters.index_lock`). The
owner opens it and serves it (:func:`serve_index`) on a Unix socket, mode 0600; each
worker reaches it through :class:`RemoteIndex`, a VectorIndex like any other.

Protocol: length-prefixed frames (:mod:`~adapters.index_owner.frames`, 64 MiB at most),
each a JSON object: requests ``{"id", "op", "args"}``, pipelined on one connection per
worker; answers ``{"id", "ok" | "error" | "part"}`` in the order they finish.

Authentication: every connection proves a per-run secret (an HMAC challenge each way,
:mod:`~adapters.index_owner.handshake`) before any frame is read from it; the secret is
in a 0600 file next to the socket, written anew by each run.

Serialization: JSON with explicit codecs of the domain values
(:mod:`~adapters.index_owner.wire`), not pickle. Unpickling a frame can run any code, so
with pickle the secret alone would stand between any local process of the user and code
execution in the owner; with JSON, a peer (authenticated or not) can at most make index
calls. The price, measured (bench/experiments/index_owner.py, 10k chunks x 1536): a
search's request and answer cost 0.31-0.55 ms of CPU to encode and decode (both ends)
against 0.18-0.37 ms with pickle: 0.13-0.18 ms more, 4 % of a remote search's 3.9 ms. Dense
vectors cross as base64 float64 bytes; errors as their type and fields.
"""

from adapters.index_owner.client import RemoteIndex
from adapters.index_owner.handshake import key_path
from adapters.index_owner.server import serve_index
from adapters.index_owner.wire import OwnerError

__all__ = ["OwnerError", "RemoteIndex", "key_path", "serve_index"]
