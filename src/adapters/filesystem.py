"""Reading documentation sources from the local filesystem."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

from rag_core.documents import Document
from rag_core.errors import InvalidInput
from rag_core.markdown import parse_document

__all__ = ["SUPPORTED_EXTENSIONS", "read_documents", "read_sources"]

logger = logging.getLogger(__name__)

SUPPORTED_EXTENSIONS = frozenset({".md", ".mdx", ".markdown", ".txt"})
_SKIPPED_FOLDERS = frozenset({"node_modules", "__pycache__"})


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

    Raises FileNotFoundError if ``root`` does not exist, and InvalidInput if it
    is a single file of an unsupported type.
    """
    if not root.exists():
        raise FileNotFoundError(f"cannot ingest {root}: no such file or folder")
    if root.is_file():
        if root.suffix.lower() not in SUPPORTED_EXTENSIONS:
            raise InvalidInput(
                f"cannot ingest {root}: supported types are {', '.join(sorted(SUPPORTED_EXTENSIONS))}"
            )
        found = [(root.name, root)]
    else:
        found = sorted(_walk(root))
    sources = ((document_id, _read(path, document_id, max_bytes)) for document_id, path in found)
    return [(document_id, text) for document_id, text in sources if text is not None]


def _walk(root: Path) -> Iterator[tuple[str, Path]]:
    prefix = root.resolve().name
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [
            name for name in subfolders if not name.startswith(".") and name not in _SKIPPED_FOLDERS
        ]
        for name in files:
            path = Path(folder, name)
            if name.startswith(".") or path.suffix.lower() not in SUPPORTED_EXTENSIONS:
                continue
            relative = path.relative_to(root).as_posix()
            yield (f"{prefix}/{relative}" if prefix else relative), path


def _read(path: Path, document_id: str, max_bytes: int) -> str | None:
    size = path.stat().st_size
    if size > max_bytes:
        logger.warning(
            "skipping %s: %d bytes is over the %d-byte limit", document_id, size, max_bytes
        )
        return None
    return path.read_bytes().decode("utf-8", errors="replace")
