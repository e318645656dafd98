"""A deterministic, realistic Markdown corpus of about N chunks.

Built by recombining the shared textbook corpus (../shared/corpus/physical-ai-textbook/docs)
when it is present: its headings, sentences, lists, tables and code blocks are
re-sampled with a seeded RNG into new Docusaurus pages (front matter, ``#`` title,
``##``/``###`` sections). Without it, a synthetic vocabulary of the same domain is used.
The chunk count is exact as far as the real :class:`rag_core.chunking.Chunker` is
concerned (the generator chunks what it writes and stops at N).

    python -m bench.corpus 10000            # -> bench/.work/corpus/gen-10000-s1/ (cached)
    python -m bench.corpus 10000 --out DIR --seed 7

Also :func:`queries` gives realistic questions (JSON bodies for /chat) drawn from the
same headings and vocabulary.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import SHARED_CORPUS, WORK
from rag_core.chunking import Chunker
from rag_core.markdown import fence_opening, parse_document

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")

_SYNTH_TERMS = [
    "ROS",
    "2",
    "node",
    "topic",
    "publisher",
    "subscriber",
    "service",
    "action",
    "parameter",
    "launch",
    "file",
    "QoS",
    "DDS",
    "Gazebo",
    "Isaac",
    "Sim",
    "URDF",
    "SDF",
    "sensor",
    "lidar",
    "camera",
    "IMU",
    "odometry",
    "SLAM",
    "navigation",
    "Nav2",
    "kinematics",
    "inverse",
    "dynamics",
    "torque",
    "controller",
    "PID",
    "trajectory",
    "gait",
    "balance",
    "humanoid",
    "reinforcement",
    "learning",
    "policy",
    "reward",
    "simulation",
    "sim-to-real",
    "domain",
    "randomization",
    "perception",
    "segmentation",
    "depth",
    "point",
    "cloud",
    "transformer",
    "language",
    "model",
    "VLA",
    "grasp",
    "manipulator",
    "joint",
    "actuator",
    "encoder",
    "latency",
    "bandwidth",
    "middleware",
    "message",
    "callback",
]


@dataclass
class Pool:
    headings: list[str]
    sentences: list[str]
    blocks: list[str]  # lists, tables and code blocks, verbatim


def _flush(para: list[str], sentences: list[str], blocks: list[str]) -> None:
    """A finished paragraph: lists, tables and quotes kept whole, prose cut into sentences."""
    if not para:
        return
    chunk = "\n".join(para).strip()
    para.clear()
    if not chunk:
        return
    first = chunk.lstrip()
    if first[:1] in "-*|>" or re.match(r"^\d+\.", first):
        blocks.append(chunk)
    else:
        sentences.extend(s.strip() for s in _SENTENCE.split(" ".join(chunk.split())) if len(s) > 20)


def _pool_from(folder: Path) -> Pool:
    headings: list[str] = []
    sentences: list[str] = []
    blocks: list[str] = []
    for path in sorted(folder.rglob("*.md*")):
        text = path.read_text(encoding="utf-8", errors="replace")
        if text.startswith("---"):
            end = text.find("\n---", 3)
            text = text[end + 4 :] if end > 0 else text
        lines = text.splitlines()
        i = 0
        para: list[str] = []

        def flush(para: list[str] = para) -> None:
            _flush(para, sentences, blocks)

        while i < len(lines):
            line = lines[i]
            fence = fence_opening(line)
            if fence is not None:
                flush()
                j = i + 1
                while j < len(lines) and not fence.closes(lines[j]):
                    j += 1
                code = "\n".join(lines[i : j + 1])
                if len(code) < 3000:
                    blocks.append(code)
                i = j + 1
                continue
            heading = _HEADING.match(line)
            if heading:
                flush()
                if len(heading.group(1)) >= 2:
                    headings.append(heading.group(2).strip())
            elif not line.strip():
                flush()
            else:
                para.append(line)
            i += 1
        flush()
    return Pool(sorted(set(headings)), sentences, blocks)


def _synthetic_pool(rng: random.Random) -> Pool:
    def sentence() -> str:
        words = [rng.choice(_SYNTH_TERMS) for _ in range(rng.randint(8, 22))]
        return " ".join(words).capitalize() + "."

    headings = [" ".join(rng.choice(_SYNTH_TERMS) for _ in range(3)).title() for _ in range(200)]
    sentences = [sentence() for _ in range(3000)]
    blocks = [
        "\n".join(f"- {sentence()}" for _ in range(rng.randint(3, 6))) for _ in range(200)
    ] + [
        "```python\n"
        + "\n".join(f"{rng.choice(_SYNTH_TERMS).lower()}_{n} = {n}" for n in range(8))
        + "\n```"
        for _ in range(100)
    ]
    return Pool(headings, sentences, blocks)


def load_pool(seed: int = 1) -> tuple[Pool, str]:
    if SHARED_CORPUS.is_dir():
        pool = _pool_from(SHARED_CORPUS)
        if pool.sentences and pool.headings:
            return pool, f"recombined from {SHARED_CORPUS}"
    return _synthetic_pool(random.Random(seed)), "synthetic vocabulary"


def _page(rng: random.Random, pool: Pool, number: int) -> str:
    title = f"{rng.choice(pool.headings)} ({number})"
    out = [f"---\nsidebar_position: {number % 50 + 1}\ntitle: {title}\n---\n", f"# {title}\n"]
    for _ in range(rng.randint(4, 9)):
        out.append(f"## {rng.choice(pool.headings)}\n")
        for _ in range(rng.randint(1, 4)):
            if rng.random() < 0.22 and pool.blocks:
                out.append(rng.choice(pool.blocks) + "\n")
            else:
                out.append(
                    " ".join(
                        rng.sample(pool.sentences, k=min(len(pool.sentences), rng.randint(2, 6)))
                    )
                    + "\n"
                )
        if rng.random() < 0.3:
            out.append(f"### {rng.choice(pool.headings)}\n")
            out.append(
                " ".join(rng.sample(pool.sentences, k=min(len(pool.sentences), rng.randint(2, 5))))
                + "\n"
            )
    return "\n".join(out)


def generate(
    chunks: int, out: Path | None = None, seed: int = 1, force: bool = False
) -> dict[str, object]:
    """Write the corpus (cached by chunks and seed); its manifest."""
    out = out or WORK / "corpus" / f"gen-{chunks}-s{seed}"
    manifest_path = out.parent / f"{out.name}.manifest.json"
    if not force and manifest_path.exists() and out.is_dir():
        manifest: dict[str, object] = json.loads(manifest_path.read_text())
        if manifest.get("target_chunks") == chunks:
            return manifest
    started = time.perf_counter()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    rng = random.Random(seed)
    pool, source = load_pool(seed)
    chunker = Chunker()
    total = written = docs = 0
    while total < chunks:
        number = docs + 1
        text = _page(rng, pool, number)
        rel = f"part{number // 500:03d}/page-{number:06d}.md"
        document = parse_document(f"{out.name}/{rel}", text)
        n = len(chunker.split(document))
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        total += n
        written += len(text.encode())
        docs += 1
    manifest = {
        "target_chunks": chunks,
        "chunks": total,
        "documents": docs,
        "bytes": written,
        "seed": seed,
        "source": source,
        "path": str(out),
        "seconds": round(time.perf_counter() - started, 2),
    }
    manifest_path.write_text(json.dumps(manifest, indent=2))
    return manifest


_QUESTION_FORMS = (
    "What is {h}?",
    "How does {h} work?",
    "Explain {h}",
    "How do I set up {h}?",
    "What are the steps for {h}?",
    "Why does {h} matter for humanoid robots?",
)


def queries(n: int = 64, seed: int = 2) -> list[str]:
    """``n`` realistic questions from the corpus' headings (deterministic)."""
    rng = random.Random(seed)
    pool, _ = load_pool(seed)
    headings = [h for h in pool.headings if 2 <= len(h.split()) <= 8] or pool.headings
    return [rng.choice(_QUESTION_FORMS).format(h=rng.choice(headings)) for _ in range(n)]


def write_bodies(path: Path, n: int = 64, seed: int = 2) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"query": q}) + "\n" for q in queries(n, seed)))
    return path


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Generate a Markdown corpus of about N chunks.")
    p.add_argument("chunks", type=int)
    p.add_argument("--out", type=Path)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--force", action="store_true")
    args = p.parse_args(argv)
    print(json.dumps(generate(args.chunks, args.out, args.seed, args.force), indent=2))


if __name__ == "__main__":
    sys.exit(main())


def fake_chat_body() -> dict[str, object]:
    """A chat completion request the size of the service's prompt (numbered sources and a
    question), for calling the fake server directly: its own cost under load."""
    passage = " ".join(queries(40))
    return {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "Answer from the numbered sources."},
            {"role": "user", "content": f"[1] Title > Heading (/docs/x)\n{passage}\n\n[2] x\n\nQ?"},
        ],
    }
