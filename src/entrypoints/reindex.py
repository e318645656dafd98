"""Re-embedding the stored chunks for another embedder, without the source folders.

Changing ``EMBEDDINGS`` (none -> local -> openai) or the embedding model changes the
index's dense layout. The chunks' text and payload are in the index already, so they
are read back, kept in ``DATA_DIR/reindex-chunks.jsonl`` (the index holds none of them
while it is laid out anew), written again through the ingestor (sparse re-encoded,
dense re-embedded), and the file is removed. A run cut short (a crash, a dependency
down) resumes from that file at the next start or ``rag-backend reindex``.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import attrs

from rag_core.documents import Chunk
from rag_core.ingestion import Ingestor
from rag_core.ports import VectorIndex

log = logging.getLogger(__name__)

BACKUP = "reindex-chunks.jsonl"


def backup_path(data_dir: Path) -> Path:
    return data_dir / BACKUP


async def reembed(ingestor: Ingestor, index: VectorIndex, data_dir: Path, reason: str) -> int:
    """Re-embed every stored chunk (resuming a cut-short run); returns how many."""
    backup = backup_path(data_dir)
    if backup.exists():
        chunks = _load(backup)
        log.warning(
            "resuming an interrupted re-embedding of %d chunks from %s", len(chunks), backup
        )
    else:
        chunks = await index.chunks()
        _save(backup, chunks)
    log.warning("re-embedding %d stored chunks: %s", len(chunks), reason)
    calls = await ingestor.reembed(chunks)
    backup.unlink()
    log.warning("re-embedded %d chunks (%d embedding calls)", len(chunks), calls)
    return len(chunks)


def _save(path: Path, chunks: list[Chunk]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    with partial.open("w", encoding="utf-8") as out:
        for chunk in chunks:
            out.write(json.dumps(attrs.asdict(chunk), ensure_ascii=False) + "\n")
        out.flush()
        os.fsync(out.fileno())
    partial.replace(path)  # only a complete copy ever has the backup's name


def _load(path: Path) -> list[Chunk]:
    chunks = []
    for line in path.read_text(encoding="utf-8").splitlines():
        fields = json.loads(line)
        chunks.append(Chunk(**{**fields, "heading_path": tuple(fields["heading_path"])}))
    return chunks
