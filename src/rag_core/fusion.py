"""Rank fusion and the scoring formulas the index applies, as pure functions."""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
from typing import TypeVar

K = TypeVar("K", bound=Hashable)

RRF_K = 60


def reciprocal_rank_fusion(
    rankings: Iterable[Sequence[K]], k: int = RRF_K
) -> list[tuple[K, float]]:
    """Fuse best-first rankings: score(d) = sum over rankings of 1 / (k + rank(d))."""
    scores: dict[K, float] = {}
    for ranking in rankings:
        for rank, key in enumerate(ranking, start=1):
            scores[key] = scores.get(key, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda item: item[1], reverse=True)


def idf(documents: int, containing: int) -> float:
    """BM25's inverse document frequency, as Qdrant's IDF modifier computes it."""
    return math.log((documents - containing + 0.5) / (containing + 0.5) + 1.0)


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0
