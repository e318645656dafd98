"""Mutual authentication of a connection with a per-run secret, before any message.

The owner sends a random challenge; the client answers
``HMAC-SHA256(secret, "client" + challenge)`` with a challenge of its own; the owner
checks it (in constant time) and only then answers ``HMAC(secret, "owner" + challenge)``,
which the client checks. Every step has a fixed size, so nothing a peer sends before
it is authenticated is parsed, or sized by it. Distinct labels keep one side's answer
from being replayed as the other's (what :mod:`multiprocessing.connection` does with
``#CHALLENGE#`` and ``#WELCOME#``).

The secret lives in a file next to the socket (:func:`key_path`), mode 0600, written
anew by every run of the owner (:func:`write_secret`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import secrets
from pathlib import Path

SIZE = 32  # bytes of a secret, a challenge and a digest (SHA-256)


class Refused(Exception):
    """The peer did not prove it knows the secret."""


def key_path(socket: Path) -> Path:
    """Where the owner listening at ``socket`` keeps its secret."""
    return socket.with_name(socket.name + ".key")


def write_secret(path: Path, secret: bytes | None = None) -> bytes:
    """Write ``secret`` (a new random one when None) to ``path``, readable by its owner
    only, atomically; returns it."""
    secret = secret if secret is not None else secrets.token_bytes(SIZE)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(secret)
    os.replace(temporary, path)
    return secret


def read_secret(path: Path) -> bytes:
    return path.read_bytes()


def _digest(secret: bytes, label: bytes, challenge: bytes) -> bytes:
    return hmac.new(secret, label + challenge, hashlib.sha256).digest()


async def admit(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, secret: bytes) -> None:
    """The owner's side; raises Refused (or IncompleteReadError) unless the client proves
    the secret. The caller bounds it with a timeout."""
    challenge = secrets.token_bytes(SIZE)
    writer.write(challenge)
    await writer.drain()
    answer = await reader.readexactly(2 * SIZE)
    if not hmac.compare_digest(answer[:SIZE], _digest(secret, b"client", challenge)):
        raise Refused("the client does not know the secret")
    writer.write(_digest(secret, b"owner", answer[SIZE:]))
    await writer.drain()


async def prove(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, secret: bytes) -> None:
    """The client's side; raises Refused (or IncompleteReadError: the owner closed the
    connection, as it does on a wrong answer) unless the owner proves the secret too."""
    challenge = await reader.readexactly(SIZE)
    mine = secrets.token_bytes(SIZE)
    writer.write(_digest(secret, b"client", challenge) + mine)
    await writer.drain()
    answer = await reader.readexactly(SIZE)
    if not hmac.compare_digest(answer, _digest(secret, b"owner", mine)):
        raise Refused("what listens there does not know the secret")
