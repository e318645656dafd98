"""Prepared data folders (DATA_DIR) holding an ingested corpus, built once with the real
CLI (``rag-backend ingest``) and cached under bench/.work/data/; each benchmark run
works on a fresh copy, so a run never sees another's writes."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any

from bench import corpus
from bench.common import ROOT, SHARED_CORPUS, WORK, cli, fake_openai, log, parse_report, service_env

DATA = WORK / "data"
SRC = ROOT / "src"
# What decides how an ingested folder looks: a change here invalidates the cached folders.
LAYOUT_SOURCES = (
    "rag_core/documents.py",
    "rag_core/chunking.py",
    "rag_core/ingestion.py",
    "rag_core/lexical.py",
    "rag_core/markdown.py",
    "adapters/qdrant_layout.py",
    "adapters/qdrant_edge",
)


def layout_fingerprint() -> str:
    digest = hashlib.blake2b(digest_size=8)
    for name in LAYOUT_SOURCES:
        path = SRC / name
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for file in files:
            if file.exists():
                digest.update(file.name.encode())
                digest.update(file.read_bytes())
    return digest.hexdigest()


def corpus_dir(chunks: int | None) -> Path:
    """The textbook (None) or a generated corpus of ``chunks`` chunks."""
    if chunks is None:
        if not SHARED_CORPUS.is_dir():
            raise FileNotFoundError(f"the shared corpus is not present at {SHARED_CORPUS}")
        return SHARED_CORPUS
    return Path(str(corpus.generate(chunks)["path"]))


def prepared(chunks: int | None, dense: int | None = None, timeout: float = 1800) -> Path:
    """A cached DATA_DIR with the corpus ingested (lexical, or with ``dense``-dimension
    embeddings from the fake server). Returns the cached folder: copy it before use."""
    name = (
        f"{'textbook' if chunks is None else chunks}-{'dense' + str(dense) if dense else 'lexical'}"
    )
    target = DATA / name
    marker = DATA / f"{name}.json"
    fingerprint = layout_fingerprint()
    if marker.exists() and target.is_dir():
        if json.loads(marker.read_text()).get("layout") == fingerprint:
            return target
        log(f"{name}: the index layout code changed since it was built; rebuilding")
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    source = corpus_dir(chunks)
    log(f"preparing {name}: ingesting {source} (bounded to {timeout:.0f} s)")
    env = service_env(target, 1)
    if dense:
        with fake_openai(dimension=dense) as fake:
            env = service_env(target, 1, openai=fake)
            seconds, done = cli("ingest", str(source), env=env, timeout=timeout)
    else:
        seconds, done = cli("ingest", str(source), env=env, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"ingest failed: {done.stderr[-2000:]}")
    info: dict[str, Any] = {
        "seconds": round(seconds, 2),
        **parse_report(done.stdout),
        "layout": fingerprint,
    }
    marker.write_text(json.dumps(info))
    log(f"prepared {name} in {seconds:.1f} s: {info}")
    return target


def copy_of(prepared_dir: Path, label: str) -> Path:
    """A fresh copy of a prepared DATA_DIR (admin key, SQLite and index included)."""
    dest = WORK / "runs" / f"{label}-{int(time.time() * 1000)}"
    if dest.exists():
        shutil.rmtree(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(prepared_dir, dest)
    return dest


def cleanup_runs() -> None:
    shutil.rmtree(WORK / "runs", ignore_errors=True)
