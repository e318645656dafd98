"""Docusaurus front matter: a small, forgiving YAML subset (the core may not
import a YAML library). Scalars, inline and block lists; anything odd degrades
to a string or is skipped, never an error."""

from __future__ import annotations

import re

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
