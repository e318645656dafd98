"""Lexical retrieval without a model: tokenisation and BM25's document-side weights.

The index applies the inverse document frequency (Qdrant's IDF modifier on sparse
vectors, mirrored by the in-memory index), so a chunk's score for a query is
BM25: sum over shared terms of idf(t) * tf(t)(k1+1) / (tf(t) + k1(1 - b + b len/avg)).
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from collections import Counter

import attrs
import snowballstemmer

from rag_core.documents import SparseVector


def _mark_class() -> str:
    """A regex class body of every combining mark in the BMP.

    ``\\w`` does not match combining marks (Devanagari vowel signs, Arabic/Urdu
    diacritics), so without them words in those scripts would be cut apart.
    """
    marks = [cp for cp in range(0x10000) if unicodedata.category(chr(cp)).startswith("M")]
    ranges: list[str] = []
    start = previous = marks[0]
    for cp in [*marks[1:], -1]:
        if cp != previous + 1:
            ranges.append(f"\\u{start:04x}-\\u{previous:04x}")
            start = cp
        previous = cp
    return "".join(ranges)


_WORD = rf"[\w{_mark_class()}]+"
# A run of word characters joined by identifier connectors: rclpy.node, create_publisher, real-time.
_RUN = re.compile(rf"{_WORD}(?:[.\-]{_WORD})*")
_SEGMENTS = re.compile(r"[.\-]")
# camelCase (lower -> Upper) and letter <-> digit boundaries: createPublisher, ROS2, h264.
_BOUNDARY = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[^\W\d_])(?=\d)|(?<=\d)(?=[^\W\d_])")

_STOP_WORD_LIST = """
a about above after again all also am an and any are as at be because been before
being below between both but by could did do does doing don down during each eg
etc few for from further had has have having he her here hers herself him himself his
how ie if in into is it its itself just let me more most my myself no nor not of off
on once only or other our ours ourselves out over own same she should so some such
than that the their theirs them themselves then there these they this those through
to too under until up us very via was we were what when where which while who whom
why will with would you your yours yourself yourselves isn aren doesn didn won
"""
STOP_WORDS = frozenset(_STOP_WORD_LIST.split())

_STEMMER = snowballstemmer.stemmer("english")

# Fenced code repeats identifiers: it stays findable, but a listing that says
# ``node`` forty times must not outrank the sentence that defines a node.
CODE_WEIGHT = 0.3
# The page title and headings name what a chunk is about: each of their terms counts twice.
HEADING_WEIGHT = 2.0
_FENCED = re.compile(r"^ {0,3}(```|~~~).*?(?:^ {0,3}\1[^\n]*$|\Z)", re.MULTILINE | re.DOTALL)


@functools.lru_cache(maxsize=1 << 16)
def _stem(word: str) -> str:
    # The English stemmer only knows ASCII suffixes; other scripts pass through unchanged.
    return str(_STEMMER.stemWord(word)) if word.isascii() and word.isalpha() else word


def _keep(part: str) -> bool:
    return (len(part) > 1 or part.isdigit()) and part not in STOP_WORDS


@functools.lru_cache(maxsize=1 << 16)
def _run_terms(run: str) -> tuple[str, ...]:
    """The terms of one run of word characters (cached: words repeat a lot)."""
    terms: list[str] = []
    parts: list[str] = []
    # Keep joined forms too, so an exact identifier (create_publisher, createPublisher,
    # rclpy.node) outranks prose that merely mentions "create" and "publisher".
    for segment in _SEGMENTS.split(run):
        pieces = [p.lower() for word in segment.split("_") for p in _BOUNDARY.split(word) if p]
        terms.extend(_stem(piece) for piece in pieces if _keep(piece))
        if len(pieces) > 1:
            _append_joined(terms, pieces)
        parts.extend(pieces)
    if len(parts) > len(pieces):
        _append_joined(terms, parts)
    return tuple(terms)


def _append_joined(terms: list[str], parts: list[str]) -> None:
    joined = "".join(parts)
    if not joined.isdigit() and _keep(joined):
        terms.append(_stem(joined))


def tokenize(text: str) -> list[str]:
    """The stemmed, lower-cased index terms of ``text``, in order, with repeats.

    Words are Unicode letters, digits and combining marks. Identifiers are split
    at ``.``, ``_``, ``-``, camelCase and letter/digit boundaries, and their joined
    form is kept too (``rclpy.node`` -> rclpy, node, rclpynode). English stop words
    and one-letter tokens (but not digits) are dropped; English words are stemmed.
    """
    terms: list[str] = []
    for run in _RUN.findall(text):
        terms.extend(_run_terms(run))
    return terms


@functools.lru_cache(maxsize=1 << 16)
def term_id(term: str) -> int:
    """A term's sparse index: the first 4 bytes of its BLAKE2b digest, as an unsigned int.

    Stable across processes, machines and Python versions (unlike ``hash()``),
    and within Qdrant's uint32 sparse index range.
    """
    digest = hashlib.blake2b(term.encode("utf-8"), digest_size=4).digest()
    return int.from_bytes(digest, "big")


def _sparse(weights: dict[int, float]) -> SparseVector:
    indices = tuple(sorted(weights))
    return SparseVector(indices=indices, values=tuple(weights[i] for i in indices))


def _positive(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be positive, got {value}")


@attrs.frozen(slots=True)
class LexicalEncoder:
    """The SparseEncoder port with BM25 weights.

    ``k1`` saturates term frequency, ``b`` sets how much document length
    normalises it, ``avg_length`` is the expected document length in terms: 96, what
    :class:`~rag_core.chunking.Chunker`'s section-sized chunks average (86 terms on the
    textbook, 105 on the Debian FAQ; the old 256 under-weighted length in both).
    Raises ValueError for k1 < 0, b outside [0, 1] or avg_length <= 0.
    """

    k1: float = attrs.field(default=1.2, validator=attrs.validators.ge(0.0))
    b: float = attrs.field(
        default=0.75, validator=[attrs.validators.ge(0.0), attrs.validators.le(1.0)]
    )
    avg_length: float = attrs.field(default=96.0, validator=_positive)

    def encode_document(self, text: str, heading: str = "") -> SparseVector:
        """BM25's document side per term: tf(k1+1) / (tf + k1(1 - b + b len/avg_length)).

        Terms inside fenced code blocks count ``CODE_WEIGHT`` of a prose term, and
        terms of ``heading`` (the breadcrumb) ``HEADING_WEIGHT`` (in tf and in the length).

        Indices ascending and unique (terms whose ids collide are summed); empty
        text, or text with no terms, gives the empty vector.
        """
        code = "\n".join(match.group(0) for match in _FENCED.finditer(text))
        prose_terms = tokenize(_FENCED.sub("\n", text) if code else text)
        code_terms = tokenize(code) if code else []
        counts: dict[str, float] = dict(Counter(prose_terms))
        for term, times in Counter(code_terms).items():
            counts[term] = counts.get(term, 0.0) + CODE_WEIGHT * times
        heading_terms = tokenize(heading) if heading else []
        for term, times in Counter(heading_terms).items():
            counts[term] = counts.get(term, 0.0) + HEADING_WEIGHT * times
        length = (
            len(prose_terms) + CODE_WEIGHT * len(code_terms) + HEADING_WEIGHT * len(heading_terms)
        )
        norm = self.k1 * (1.0 - self.b + self.b * length / self.avg_length)
        numerator = self.k1 + 1.0
        weights: dict[int, float] = {}
        for term, tf in counts.items():
            index = term_id(term)
            weights[index] = weights.get(index, 0.0) + tf * numerator / (tf + norm)
        return _sparse(weights)

    def encode_query(self, text: str) -> SparseVector:
        """Weight 1.0 per distinct query term (colliding ids summed); the index adds IDF."""
        weights: dict[int, float] = {}
        for term in set(tokenize(text)):
            index = term_id(term)
            weights[index] = weights.get(index, 0.0) + 1.0
        return _sparse(weights)
