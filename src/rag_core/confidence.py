"""Whether an answer stands on what was retrieved: the "uncertain" signal.

An answer is uncertain when nothing was retrieved, when the retrieved text (with its
page titles and headings, and the reader's selection) holds less than
``MIN_COVERAGE`` of the question's terms, when the extractive composer found no
sentence that fits, or when a model cited none of its sources. Terms are matched
as the lexical index matches them (stemmed, case-folded, stop words dropped).

``MIN_COVERAGE`` was set on the textbook set's dev split (``rag-backend eval``,
bench/README.md): at 0.6, with no keys, 7 of its 103 answerable questions are flagged
and 3 of the 4 the book cannot answer; on the held-out split 2 of 25 and 2 of 2; the
Debian FAQ's 118 are never flagged.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from rag_core.lexical import tokenize

MIN_COVERAGE = 0.6


def missing(question: str, texts: Iterable[str]) -> tuple[str, ...]:
    """``question``'s distinct terms that none of ``texts`` holds, in the question's
    order (what the docs lacked: coverage gaps are grouped by them)."""
    wanted = list(dict.fromkeys(tokenize(question)))
    left = set(wanted)
    for text in texts:
        left.difference_update(_terms(text))
        if not left:
            break
    return tuple(term for term in wanted if term in left)


@functools.lru_cache(maxsize=512)
def _terms(text: str) -> frozenset[str]:
    """A retrieved text's terms. Cached: the passages of popular pages are judged
    again and again, and tokenizing them was a tenth of an answer's CPU at 50 users
    (bench/README.md, P14)."""
    return frozenset(tokenize(text))


def coverage(question: str, texts: Iterable[str]) -> float:
    """The share of ``question``'s distinct terms found in ``texts``; 1.0 for a
    question with no terms (nothing in it can be missed)."""
    return _share(question, missing(question, texts))


def is_uncertain(question: str, texts: Iterable[str]) -> bool:
    """Nothing retrieved, or less than ``MIN_COVERAGE`` of the question covered."""
    return judge(question, texts)[0]


def judge(question: str, texts: Iterable[str]) -> tuple[bool, tuple[str, ...]]:
    """:func:`is_uncertain` and :func:`missing` at once (the texts are read once)."""
    listed = list(texts)
    lacking = missing(question, listed)
    return not listed or _share(question, lacking) < MIN_COVERAGE, lacking


def _share(question: str, lacking: tuple[str, ...]) -> float:
    wanted = len(set(tokenize(question)))
    return 1 - len(lacking) / wanted if wanted else 1.0
