"""Build a public labelled set from Debian's ``debian-faq`` package.

``python bench/eval/debian_faq.py OUT_DIR`` writes ``OUT_DIR/docs/faq/NN-<chapter>.md`` (one
Markdown file per FAQ chapter, converted from the package's HTML with the stdlib parser, the
package's wording kept), ``OUT_DIR/docs/usr-share-doc/`` (plain-text READMEs of installed
packages, as distractors) and ``OUT_DIR/questions.jsonl``: one question per FAQ section whose
heading ends in ``?``, labelled with its chapter's route and 1-2 phrases from the first
sentences of the section's own text. Deterministic for a given machine (same package version
and the same installed docs).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import shutil
import sys
from html.parser import HTMLParser
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from adapters.filesystem import read_documents
from rag_core.evaluation import contains_any, normalise

FAQ_DIR = Path("/usr/share/doc/debian/FAQ")
DOC_ROOT = Path("/usr/share/doc")
DISTRACTOR_NAMES = re.compile(r"^README(\.Debian|\.md)?(\.gz)?$")
MAX_DISTRACTORS = 40
_SKIPPED = frozenset({"toc", "navheader", "navfooter"})
_BLOCKS = frozenset({"p", "li", "dt", "dd", "pre", "h1", "h2", "h3", "h4"})
_NUMBER = re.compile(r"^(?:Chapter\s+)?[\d.]+\s+")
_SENTENCE = re.compile(r"(?<=[.!?:])\s+(?=[A-Z`\"“(])")

Section = tuple[int, str, list[str]]  # heading level, heading text, Markdown blocks


class _Chapter(HTMLParser):
    """The chapter title and its sections, as Markdown blocks."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title = ""
        self.sections: list[Section] = []
        self._stack: list[bool] = []  # per open <div>: is it skipped?
        self._block: str | None = None
        self._text: list[str] = []
        self._depth_li = 0
        self._item_open = False  # inside an <li> whose first paragraph has not started

    @property
    def _skipping(self) -> bool:
        return any(self._stack)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "div":
            self._stack.append(bool(set((dict(attrs).get("class") or "").split()) & _SKIPPED))
        elif self._skipping:
            return
        elif tag in _BLOCKS:
            if self._block is not None and self._block != "pre":
                self._flush()  # a <p> inside an <li>: start a new block
            if tag == "li":
                self._depth_li += 1
                self._item_open = True
            elif tag == "p" and self._depth_li:
                tag, self._item_open = ("li" if self._item_open else "li+"), False
            self._block = tag
            self._text = []
        elif tag == "code" and self._block not in (None, "pre"):
            self._text.append("`")
        elif tag == "br" and self._block == "pre":
            self._text.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "div":
            if self._stack:
                self._stack.pop()
        elif self._skipping:
            return
        elif tag in _BLOCKS:
            self._flush()
            if tag == "li":
                self._depth_li -= 1
        elif tag == "code" and self._block not in (None, "pre"):
            self._text.append("`")

    def handle_data(self, data: str) -> None:
        if not self._skipping and self._block is not None:
            self._text.append(data)

    def _flush(self) -> None:
        block, raw = self._block, "".join(self._text)
        self._block, self._text = None, []
        if block is None:
            return
        if block == "pre":
            if raw.strip("\n"):
                self._add(f"```\n{raw.strip(chr(10))}\n```")
            return
        text = " ".join(raw.replace("``", "").split())
        if not text:
            return
        if block.startswith("h"):
            heading = _NUMBER.sub("", text.replace("\xa0", " ")).strip()
            if block == "h1":
                self.title = heading
            else:
                self.sections.append((int(block[1]), heading, []))
        else:
            prefix = {"li": "- ", "li+": "  "}.get(block, "")
            self._add(prefix + text)

    def _add(self, markdown: str) -> None:
        if self.sections:
            self.sections[-1][2].append(markdown)


def chapters(faq_dir: Path) -> list[tuple[str, _Chapter]]:
    """``(file stem, parsed chapter)`` in chapter order (the index's links)."""
    index = (faq_dir / "index.en.html").read_text(encoding="utf-8")
    stems = list(dict.fromkeys(re.findall(r'href="([\w-]+)\.en\.html"', index)))
    parsed: list[tuple[str, _Chapter]] = []
    for stem in stems:
        parser = _Chapter()
        parser.feed((faq_dir / f"{stem}.en.html").read_text(encoding="utf-8"))
        parser.close()
        if parser.title and parser.sections:
            parsed.append((stem, parser))
    return parsed


def markdown(chapter: _Chapter) -> str:
    parts = [f"# {chapter.title}"]
    for level, heading, blocks in chapter.sections:
        parts.append(f"{'#' * level} {heading}")
        parts.extend(blocks)
    return "\n\n".join(parts) + "\n"


def answer_phrases(question: str, blocks: list[str], words: int = 8) -> list[str]:
    """Up to two phrases: the first ``words`` words (4-10 once normalised) of the first two
    sentences of the section's first prose block, skipping any the question contains."""
    prose = next((b.removeprefix("- ") for b in blocks if not b.startswith("```")), "")
    asked = f" {normalise(question)} "
    phrases: list[str] = []
    for sentence in _SENTENCE.split(prose)[:2]:
        raw = sentence.split()[:words]
        while len(normalise(" ".join(raw)).split()) > 10:  # at most 10 normalised words
            raw.pop()
        phrase = " ".join(raw)
        key = normalise(phrase)
        if key and f" {key} " not in asked and len(key.split()) >= 4:
            phrases.append(phrase)
    return phrases


def distractors(root: Path, limit: int = MAX_DISTRACTORS) -> list[tuple[str, str]]:
    """``(file name, text)`` of READMEs under ``root`` (sorted by path, one per package,
    1-60 KB of UTF-8 text, duplicates by content skipped)."""
    chosen: list[tuple[str, str]] = []
    seen_packages: set[str] = set()
    seen_texts: set[str] = set()
    for path in sorted(p for p in root.glob("*/*") if DISTRACTOR_NAMES.match(p.name)):
        package = path.parent.name
        if package in seen_packages or package == "debian" or not path.is_file():
            continue
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        digest = hashlib.sha256(text.encode()).hexdigest()
        if not 1024 < len(data) < 60_000 or digest in seen_texts:
            continue
        seen_packages.add(package)
        seen_texts.add(digest)
        name = path.name.removesuffix(".gz")
        suffix = ".md" if name.endswith(".md") else ".txt"
        chosen.append((f"{package}-{name.removesuffix('.md')}{suffix}", text))
        if len(chosen) == limit:
            break
    return chosen


def build(out: Path) -> tuple[int, int]:
    docs = out / "docs"
    if docs.exists():
        shutil.rmtree(docs)
    (docs / "faq").mkdir(parents=True)
    (docs / "usr-share-doc").mkdir()
    parsed = chapters(FAQ_DIR)
    files: list[tuple[str, _Chapter]] = []
    for number, (stem, chapter) in enumerate(parsed, start=1):
        name = f"faq/{number:02d}-{stem}.md"
        (docs / name).write_text(markdown(chapter), encoding="utf-8")
        files.append((name, chapter))
    for name, text in distractors(DOC_ROOT):
        (docs / "usr-share-doc" / name).write_text(text, encoding="utf-8")
    documents = {d.id: d for d in read_documents(docs)}
    lines: list[str] = []
    for name, chapter in files:
        document = documents[f"docs/{name}"]
        for _level, heading, blocks in chapter.sections:
            answers = answer_phrases(heading, blocks)
            answers = [a for a in answers if contains_any(document.text, [a])]
            if not heading.endswith("?") or not answers:
                continue
            n = len(lines) + 1
            item = {
                "id": f"faq-{n}",
                "question": heading,
                "pages": [document.route],
                "answers": answers,
                "kind": "faq",
                "split": "test" if n % 5 == 0 else "dev",
            }
            lines.append(json.dumps(item, ensure_ascii=False))
    (out / "questions.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines), len(documents)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: debian_faq.py OUT_DIR", file=sys.stderr)
        return 2
    if not (FAQ_DIR / "index.en.html").exists():
        print(f"{FAQ_DIR} has no FAQ: apt-get install debian-faq", file=sys.stderr)
        return 1
    questions, documents = build(Path(argv[0]))
    print(f"wrote {questions} questions and {documents} documents to {argv[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
