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
(:mod:`~adapters.index_owner.wire`), not pickle. An unpickled frame can run any code,
so with pickle the secret alone would stand between any local process of the user and
code execution in the owner; with JSON, a peer (authenticated or not) can only make
index calls. The cost is small: dense vectors cross as base64 float64 bytes, the rest
are short lists, and a search costs about the same either way
(bench/experiments/index_owner.py). Errors cross as their type and fields.
"""

from adapters.index_owner.client import RemoteIndex
from adapters.index_owner.handshake import key_path
from adapters.index_owner.server import serve_index
from adapters.index_owner.wire import OwnerError

__all__ = ["OwnerError", "RemoteIndex", "key_path", "serve_index"]
