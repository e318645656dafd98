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

__all__ = [
    "Fence",
    "docusaurus_route",
    "fence_opening",
    "parse_document",
    "parse_front_matter",
    "parse_heading",
    "split_front_matter",
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

_FRONT_MATTER = re.compile(
    r"\A---[ \t]*\n(?P<block>(?:.*?\n)??)(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.S
)
_KEY = re.compile(
    r"^(?P<key>\"[^\"]*\"|'[^']*'|[^\s:#'\"\-][^:]*?|-[^\s:][^:]*?)[ \t]*:(?:[ \t]+(?P<rest>.*))?$"
)
_INT = re.compile(r"[-+]?\d+")
_FLOAT = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+(?=[eE]))(?:[eE][-+]?\d+)?")
_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\", "/": "/", "r": "\r"}
_SKIP = object()


def split_front_matter(text: str) -> tuple[str | None, str]:
    """``(front matter block, body)``; the block is None when the text has none.

    Front matter is a ``---`` line at the very start closed by a ``---`` (or
    ``...``) line; an unclosed block is not front matter.
    """
    match = _FRONT_MATTER.match(text)
    if match is None:
        return None, text
    return match["block"], text[match.end() :]


def parse_front_matter(block: str) -> dict[str, object]:
    """Parse the YAML subset Docusaurus front matter uses; never raises.

    Top-level ``key: value`` scalars (quoted or plain strings, ints, floats,
    booleans, null), inline lists ``[a, b]`` and block lists (``- a`` lines)
    become str/int/float/bool/None/tuple values; ``|``/``>`` block scalars
    become strings. Nested mappings and unparseable lines are skipped.
    """
    result: dict[str, object] = {}
    lines = block.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        match = _KEY.match(line) if line[:1] not in ("", " ", "\t", "#") else None
        if match is None:
            continue
        nested: list[str] = []
        while i < len(lines) and (lines[i][:1] in ("", " ", "\t") or lines[i].startswith("-")):
            nested.append(lines[i])
            i += 1
        value = _value((match["rest"] or "").strip(), nested)
        if value is not _SKIP:
            result[_scalar_text(match["key"])] = value
    return result


def _value(rest: str, nested: list[str]) -> object:
    body = [line.strip() for line in nested if line.strip() and not line.lstrip().startswith("#")]
    if rest[:1] in ("|", ">"):
        lines = [line.strip() for line in nested]
        while lines and not lines[-1]:
            lines.pop()
        if rest[0] == "|":
            return "\n".join(lines)
        return "\n".join(" ".join(p.split("\n")) for p in "\n".join(lines).split("\n\n"))
    if not rest:
        if not body:
            return None
        if all(line == "-" or line.startswith("- ") for line in body):
            return tuple(_scalar(line[1:]) for line in body)
        return _SKIP  # a nested mapping: not needed, not parsed
    if body:  # a plain or quoted scalar continued on indented lines
        rest = " ".join([rest, *body])
    if rest.startswith("[") and _strip_comment(rest).endswith("]"):
        return _inline_list(_strip_comment(rest)[1:-1])
    return _scalar(rest)


def _scalar(raw: str) -> object:
    raw = raw.strip()
    if raw[:1] in ("'", '"'):
        quoted = _quoted(raw)
        if quoted is not None:
            return quoted
    raw = _strip_comment(raw)
    lowered = raw.lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    if lowered in ("", "~", "null"):
        return None
    if _INT.fullmatch(raw):
        return int(raw)
    if _FLOAT.fullmatch(raw):
        return float(raw)
    return raw


def _scalar_text(raw: str) -> str:
    value = _scalar(raw)
    return raw.strip() if value is None else str(value)


def _quoted(raw: str) -> str | None:
    """The string a quoted scalar at the start of ``raw`` denotes, or None if unclosed."""
    quote, out, i = raw[0], [], 1
    while i < len(raw):
        char = raw[i]
        if quote == "'" and char == "'":
            if raw[i + 1 : i + 2] == "'":
                out.append("'")
                i += 2
                continue
            return "".join(out)
        if quote == '"' and char == "\\" and i + 1 < len(raw):
            out.append(_ESCAPES.get(raw[i + 1], "\\" + raw[i + 1]))
            i += 2
            continue
        if quote == '"' and char == '"':
            return "".join(out)
        out.append(char)
        i += 1
    return None


def _strip_comment(raw: str) -> str:
    index = raw.find(" #")
    return (raw[:index] if index >= 0 else raw).strip()


def _inline_list(inner: str) -> tuple[object, ...]:
    items: list[str] = []
    current: list[str] = []
    quote = ""
    for char in inner:
        if quote:
            quote = "" if char == quote else quote
        elif char in ("'", '"') and not "".join(current).strip():
            quote = char
        elif char == ",":
            items.append("".join(current))
            current = []
            continue
        current.append(char)
    items.append("".join(current))
    return tuple(_scalar(item) for item in items if item.strip())
