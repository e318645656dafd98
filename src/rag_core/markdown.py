"""Docusaurus-flavoured Markdown (and plain text) into :class:`Document` values.

Parsing covers what a documentation chatbot needs and no more: the front
matter (a small YAML subset, see :func:`parse_front_matter`), MDX noise that is
not prose (ESM ``import``/``export`` lines, HTML and MDX comments), the title,
and the route Docusaurus serves the page at. Code fences are respected
throughout: nothing inside a fence is ever treated as markup.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import attrs

from rag_core.documents import Document
from rag_core.front_matter import parse_front_matter, split_front_matter

__all__ = [
    "Fence",
    "docusaurus_route",
    "fence_opening",
    "parse_document",
    "parse_heading",
]

_FENCE_OPEN = re.compile(r"^[ \t]*(?P<marker>`{3,}|~{3,})(?P<info>.*)$")
_HEADING = re.compile(r"^ {0,3}(?P<hashes>#{1,6})(?:[ \t]+(?P<text>.*?))?[ \t]*$")
_CLOSING_HASHES = re.compile(r"(?:^|[ \t]+)#+$")
_HEADING_ID = re.compile(r"[ \t]*\{#[^}]*\}$")
_IMPORT = re.compile(r"^import\s+(?:['\"{]|\*\s*as\s|[\w$]+\s*,|[\w$]+\s+from\s+['\"])")
_EXPORT = re.compile(r"^export\s+(?:(?:default|const|let|var|function|class|async)\b|\{|\*)")
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.S)
_MDX_COMMENT = re.compile(r"\{/\*.*?\*/\}", re.S)
_BLANK_RUN = re.compile(r"\n(?:[ \t]*\n){2,}")
_LEADING_BLANKS = re.compile(r"\A(?:[ \t]*\n)+")
_NUMBER_PREFIX = re.compile(r"^\d+\s*[-_.]+\s*(?=[^-_.\s])")
_VERSION_LIKE = re.compile(r"^v?\d+[-_.]\d+")
_INDEX_NAMES = frozenset({"index", "readme"})


@attrs.frozen(slots=True)
class Fence:
    """An open code fence: ``length`` backticks or tildes."""

    char: str
    length: int

    def closes(self, line: str) -> bool:
        """Whether ``line`` closes this fence (same character, at least as many, nothing else)."""
        stripped = line.strip()
        return len(stripped) >= self.length and stripped == self.char * len(stripped)


def fence_opening(line: str) -> Fence | None:
    """The fence ``line`` opens (```` ``` ```` or ``~~~``, any info string), else None.

    Indentation is allowed so that fences inside list items are honoured too.
    """
    match = _FENCE_OPEN.match(line)
    if match is None:
        return None
    marker = match["marker"]
    if marker[0] == "`" and "`" in match["info"]:
        return None  # CommonMark: a backtick fence's info string has no backticks
    return Fence(char=marker[0], length=len(marker))


def parse_heading(line: str) -> tuple[int, str] | None:
    """``(level, text)`` of an ATX heading line, else None.

    The caller must know the line is outside a code fence. Closing ``#``s and a
    Docusaurus heading id (``{#custom-id}``) are removed from the text.
    """
    match = _HEADING.match(line)
    if match is None:
        return None
    text = _HEADING_ID.sub("", match["text"] or "")
    text = _CLOSING_HASHES.sub("", text).strip()
    return len(match["hashes"]), text


def parse_document(document_id: str, text: str) -> Document:
    """Parse one source file into a Document.

    ``document_id`` is the POSIX path relative to the ingested root, including
    the root folder's name (``docs/week3/ros2-nodes-topics.md``). ``.txt`` files
    are plain text: no front matter, no MDX clean-up. Never raises on odd input:
    strange front matter degrades to strings or is skipped.
    """
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    if document_id.lower().endswith(".txt"):
        metadata: dict[str, object] = {}
        body = text
        title = _plain_title(body)
    else:
        block, body = split_front_matter(text)
        metadata = parse_front_matter(block) if block is not None else {}
        body = _strip_mdx(body)
        title = _string(metadata, "title") or _first_h1(body)
    return Document(
        id=document_id,
        route=docusaurus_route(document_id, metadata),
        title=title or _humanised_stem(document_id),
        text=_LEADING_BLANKS.sub("", body).rstrip(),
        metadata=metadata,
    )


def docusaurus_route(document_id: str, metadata: Mapping[str, object]) -> str:
    """The route Docusaurus serves a document at.

    The extension and numeric ordering prefixes (``01-``) are stripped; an
    ``index``/``README`` file (or one named like its folder) maps to its
    folder; front matter ``id`` replaces the last segment; an absolute ``slug``
    is relative to the docs base (the first folder of ``document_id``), a
    relative one replaces the last segment.
    """
    parts = [part for part in document_id.split("/") if part not in ("", ".")] or [document_id]
    folders = [_strip_number_prefix(folder) for folder in parts[:-1]]
    stem = _strip_number_prefix(_strip_extension(parts[-1]))
    slug, front_id = _string(metadata, "slug"), _string(metadata, "id")
    if slug.startswith("/"):
        segments = [*folders[:1], *slug.split("/")]
    elif slug:
        segments = [*folders, *slug.split("/")]
    elif folders and (stem.lower() in _INDEX_NAMES or stem == folders[-1]):
        segments = folders
    else:
        segments = [*folders, *(front_id or stem).split("/")]
    return "/" + "/".join(_normalise(segments))


def _normalise(segments: list[str]) -> list[str]:
    out: list[str] = []
    for segment in segments:
        if segment == "..":
            if out:
                out.pop()
        elif segment not in ("", "."):
            out.append(segment)
    return out


def _strip_extension(filename: str) -> str:
    stem, dot, _ = filename.rpartition(".")
    return stem if dot and stem else filename


def _strip_number_prefix(segment: str) -> str:
    if _VERSION_LIKE.match(segment):  # 2024-01-notes, v1.2: not an ordering prefix
        return segment
    return _NUMBER_PREFIX.sub("", segment, count=1)


def _humanised_stem(document_id: str) -> str:
    parts = [part for part in document_id.split("/") if part]
    stem = _strip_number_prefix(_strip_extension(parts[-1])) if parts else document_id
    if stem.lower() in _INDEX_NAMES and len(parts) > 1:
        stem = _strip_number_prefix(parts[-2])
    words = " ".join(re.split(r"[-_\s]+", stem)).strip() or document_id
    return words[:1].upper() + words[1:]


def _string(metadata: Mapping[str, object], key: str) -> str:
    value = metadata.get(key)
    if isinstance(value, bool) or value is None:
        return ""
    return str(value).strip() if isinstance(value, str | int | float) else ""


def _first_h1(body: str) -> str:
    fence: Fence | None = None
    for line in body.split("\n"):
        if fence is not None:
            if fence.closes(line):
                fence = None
            continue
        fence = fence_opening(line)
        heading = parse_heading(line) if fence is None else None
        if heading is not None and heading[0] == 1 and heading[1]:
            return heading[1]
    return ""


def _plain_title(body: str) -> str:
    """The first line of a text file when it looks like a title: short, no end
    punctuation, and followed by a blank line, an underline or nothing."""
    lines = _LEADING_BLANKS.sub("", body).split("\n")
    first = lines[0].strip().lstrip("#").strip()
    following = lines[1].strip() if len(lines) > 1 else ""
    underline = bool(following) and set(following) <= {"=", "-"}
    if 0 < len(first) <= 100 and first[-1] not in ".!?,;:" and (not following or underline):
        return first
    return ""


def _strip_mdx(body: str) -> str:
    """Drop ESM lines and comments outside code fences; keep everything else."""
    out: list[str] = []
    prose: list[str] = []
    fence: Fence | None = None
    esm_depth = 0  # unbalanced brackets of a multi-line import/export still open

    def flush() -> None:
        if prose:
            cleaned = _MDX_COMMENT.sub("", _HTML_COMMENT.sub("", "\n".join(prose)))
            out.extend(_BLANK_RUN.sub("\n\n", cleaned).split("\n"))
            prose.clear()

    for line in body.split("\n"):
        if fence is not None:
            out.append(line)
            if fence.closes(line):
                fence = None
        elif esm_depth > 0 and line.strip():
            esm_depth += _bracket_balance(line)
        elif (opened := fence_opening(line)) is not None:
            flush()
            out.append(line)
            fence = opened
        elif _IMPORT.match(line) or _EXPORT.match(line):
            esm_depth = max(_bracket_balance(line), 0)
        else:
            esm_depth = 0  # a blank line ends even an unbalanced statement
            prose.append(line)
    flush()
    return "\n".join(out)


def _bracket_balance(line: str) -> int:
    return sum(line.count(c) for c in "({[") - sum(line.count(c) for c in ")}]")


# --- Front matter: a YAML subset --------------------------------------------
