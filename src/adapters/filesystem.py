"""Reading documentation sources from the local filesystem."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from rag_core.documents import Document
from rag_core.errors import InvalidInput
from rag_core.markdown import parse_document

__all__ = ["SUPPORTED_EXTENSIONS", "check_source", "read_documents", "read_sources"]

logger = logging.getLogger(__name__)

SUPPORTED_EXTENSIONS = frozenset({".md", ".mdx", ".markdown", ".txt"})
_SKIPPED_FOLDERS = frozenset({"node_modules", "__pycache__"})
# O_NONBLOCK: should a special file take a checked file's place, opening it does not block.
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
_OPEN_FLAGS |= getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)  # POSIX only
_OPENED = Path("/proc/self/fd")


def read_documents(root: Path, *, max_bytes: int = 2_000_000) -> list[Document]:
    """Parse every supported file under ``root`` (a folder or a single file).

    The files, ids and errors are those of :func:`read_sources`; each source
    is parsed with :func:`~rag_core.markdown.parse_document`.
    """
    return [
        parse_document(document_id, text)
        for document_id, text in read_sources(root, max_bytes=max_bytes)
    ]


def read_sources(root: Path, *, max_bytes: int = 2_000_000) -> list[tuple[str, str]]:
    """``(document id, text)`` of every supported file under ``root``, sorted by id.

    ``root`` is a folder or a single file. For a folder, a document's id is
    ``<root folder name>/<path below root>`` (POSIX); for a single file, its
    file name. Files with extensions other than .md, .mdx, .markdown and .txt,
    hidden files and folders, ``node_modules`` and ``__pycache__`` are
    skipped; so, with a warning, are files larger than ``max_bytes``. Text is
    read as UTF-8, undecodable bytes replaced.

    The folder is a boundary: it is resolved once (a linked root is followed
    there), and a file whose real path lies outside it is never read, nor one
    whose real path is hidden or vendored below it (a link ``notes.md`` to
    ``.git/config``). Links that stay inside are read under their own name;
    linked folders are not descended (what they hold inside the root is read
    where it really is). Special files (FIFOs, sockets, devices) are never
    opened. Each of these skips logs a warning naming the document and why.

    Raises FileNotFoundError if ``root`` does not exist, and InvalidInput if it
    is a single file of an unsupported type or not a regular file or folder.
    """
    boundary = check_source(root)
    found = sorted(_walk(boundary)) if boundary.is_dir() else [(root.name, boundary)]
    sources = (
        (document_id, _read(path, document_id, boundary, max_bytes)) for document_id, path in found
    )
    return [(document_id, text) for document_id, text in sources if text is not None]


def check_source(root: Path) -> Path:
    """``root`` resolved, if it can be ingested: a folder, or a regular file of a
    supported type. Raises FileNotFoundError or InvalidInput (as :func:`read_sources`)."""
    if not root.exists():
        raise FileNotFoundError(f"cannot ingest {root}: no such file or folder")
    boundary = root.resolve()
    if boundary.is_dir():
        return boundary
    if root.suffix.lower() not in SUPPORTED_EXTENSIONS:
        raise InvalidInput(
            f"cannot ingest {root}: supported types are {', '.join(sorted(SUPPORTED_EXTENSIONS))}"
        )
    if not boundary.is_file():
        raise InvalidInput(f"cannot ingest {root}: not a regular file or folder")
    return boundary


def _walk(boundary: Path) -> Iterator[tuple[str, Path]]:
    """``(document id, real path)`` of the readable supported files below ``boundary``."""
    prefix = boundary.name
    for folder, subfolders, files in os.walk(boundary):  # linked folders are not descended
        here = Path(folder)
        subfolders[:] = [name for name in subfolders if _visible(name)]
        for name in subfolders:
            path = here / name
            if path.is_symlink():
                real = _resolve(path)
                if real is None or not real.is_relative_to(boundary):
                    _skip(_id(prefix, path, boundary), f"it links to {real}, outside {boundary}")
        for name in files:
            path = here / name
            if not _visible(name) or path.suffix.lower() not in SUPPORTED_EXTENSIONS:
                continue
            document_id = _id(prefix, path, boundary)
            real = _real_path(path, document_id, boundary)
            if real is not None:
                yield document_id, real


def _id(prefix: str, path: Path, boundary: Path) -> str:
    relative = path.relative_to(boundary).as_posix()
    return f"{prefix}/{relative}" if prefix else relative


def _visible(name: str) -> bool:
    return not name.startswith(".") and name not in _SKIPPED_FOLDERS


def _resolve(path: Path) -> Path | None:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a link loop (RuntimeError before Python 3.13)
        return None


def _real_path(path: Path, document_id: str, boundary: Path) -> Path | None:
    """The real path of ``path``, or None (with a warning) if it must not be read.

    A link is read only if its target would be read itself: it stays inside the
    root, in no hidden or vendored folder, and has a supported type.
    """
    if not path.is_symlink():
        return path
    real = _resolve(path)
    if real is None:
        _skip(document_id, "its link cannot be resolved (a loop)")
        return None
    if not real.is_relative_to(boundary):
        _skip(document_id, f"it links to {real}, outside {boundary}")
        return None
    inside = real.relative_to(boundary)
    if not all(_visible(part) for part in inside.parts) or (
        real.suffix.lower() not in SUPPORTED_EXTENSIONS
    ):
        _skip(
            document_id,
            f"it links to {inside.as_posix()}, which is not ingested itself "
            "(hidden, vendored or of another type)",
        )
        return None
    return real


def _read(path: Path, document_id: str, boundary: Path, max_bytes: int) -> str | None:
    """The text of the regular file at ``path`` (a real path), or None with a warning.

    A special file is never opened. The checks are made again on the opened file:
    one swapped for a link or a special file after it was listed is not read either.
    """
    try:
        info = os.stat(path)
    except OSError as exc:
        _skip(document_id, f"it cannot be read ({exc.strerror or exc})")
        return None
    if not stat.S_ISREG(info.st_mode):
        _skip(document_id, f"not a regular file ({_kind(info.st_mode)})")
        return None
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        _skip(document_id, f"it cannot be opened ({exc.strerror or exc})")
        return None
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            _skip(document_id, f"not a regular file ({_kind(info.st_mode)})")
            return None
        opened = _opened_path(fd)
        if opened is not None and not opened.is_relative_to(boundary):
            _skip(document_id, f"it is {opened}, outside {boundary}")
            return None
        if info.st_size > max_bytes:
            logger.warning(
                "skipping %s: %d bytes is over the %d-byte limit",
                document_id,
                info.st_size,
                max_bytes,
            )
            return None
        data = file.read(max_bytes + 1)
    if len(data) > max_bytes:  # it grew after fstat
        logger.warning("skipping %s: over the %d-byte limit", document_id, max_bytes)
        return None
    return data.decode("utf-8", errors="replace")


def _opened_path(fd: int) -> Path | None:
    """Where an open file really is, when the system says (Linux's /proc)."""
    try:
        return Path(os.readlink(_OPENED / str(fd)))
    except OSError:
        return None


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "a special file"


def _skip(document_id: str, why: str) -> None:
    logger.warning("skipping %s: %s", document_id, why)
