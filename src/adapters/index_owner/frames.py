"""Length-prefixed frames: a 4-byte big-endian length, then that many bytes.

A frame longer than the reader's maximum is refused before any of it is read (no
allocation from a length a peer chose), and a writer refuses to send one.
"""

from __future__ import annotations

import asyncio
import struct

HEADER = struct.Struct(">I")
MAX_FRAME = 64 * 1024 * 1024  # upserts cross in batches of 256 chunks: 4.5 MB at 1536 dims


class FrameTooLarge(ValueError):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"a frame of {size} bytes exceeds the limit of {limit}")
        self.size = size


async def read_frame(reader: asyncio.StreamReader, limit: int = MAX_FRAME) -> bytes:
    """The next frame's bytes; IncompleteReadError at the end of the stream."""
    (size,) = HEADER.unpack(await reader.readexactly(HEADER.size))
    if size > limit:
        raise FrameTooLarge(size, limit)
    return await reader.readexactly(size)


def write_frame(writer: asyncio.StreamWriter, payload: bytes, limit: int = MAX_FRAME) -> None:
    """Queue one whole frame (one call, so frames of concurrent tasks never interleave)."""
    if len(payload) > limit:
        raise FrameTooLarge(len(payload), limit)
    writer.writelines((HEADER.pack(len(payload)), payload))
