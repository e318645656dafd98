"""Coverage gaps: questions the docs could not answer, grouped by what they ask.

A question belongs with a group when its terms (stemmed, stop words dropped,
weighted by rarity among the questions grouped) have a cosine similarity of at
least ``LEXICAL_LINK`` with the group's, or, when embeddings are given, its vector
one of at least ``DENSE_LINK``. Callers give the words the docs lacked (what made
the answer uncertain) where they know them: paraphrases of one missing topic share
its rare words ("boil", "pasta") even when they share little else.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

from rag_core.lexical import tokenize

LEXICAL_LINK = 0.2
DENSE_LINK = 0.7


def group(
    questions: Sequence[str], vectors: Sequence[Sequence[float]] | None = None
) -> list[list[int]]:
    """Indices of ``questions`` in groups, largest first (ties: first asked first),
    each group in the order asked. ``vectors``, when given, are the questions'
    embeddings, one per question. Raises ValueError when their count differs.

    Each group grows around a seed, the ungrouped question most similar to its
    neighbours, and takes the ungrouped questions close to the group's centre (not
    to any one member, so two topics do not chain together through one question
    that shares a word with each)."""
    if vectors is not None and len(vectors) != len(questions):
        raise ValueError("one vector per question is needed")
    lexical = _weighted(questions)
    dense = [_unit(v) for v in vectors] if vectors is not None else None

    def close(a: int, centre: tuple[dict[str, float], list[float] | None]) -> bool:
        words, meaning = centre
        if _cosine(lexical[a], words) >= LEXICAL_LINK:
            return True
        return (
            dense is not None
            and meaning is not None
            and sum(x * y for x, y in zip(dense[a], meaning, strict=True)) >= DENSE_LINK
        )

    alone = [(lexical[i], dense[i] if dense is not None else None) for i in range(len(questions))]
    # A seed is a question at the heart of a topic: the most similar to the others
    # (a question bridging two topics is close to both, but only loosely).
    weight = [
        sum(_cosine(lexical[i], lexical[j]) for j in range(len(questions)) if close(j, alone[i]))
        for i in range(len(questions))
    ]
    ungrouped = set(range(len(questions)))
    groups: list[list[int]] = []
    while ungrouped:
        seed = max(ungrouped, key=lambda i: (weight[i], -i))
        members = sorted(i for i in ungrouped if i == seed or close(i, alone[seed]))
        centre = _centre(members, lexical, dense)
        members = sorted(i for i in ungrouped if i == seed or close(i, centre))
        ungrouped.difference_update(members)
        groups.append(members)
    return sorted(groups, key=lambda members: (-len(members), members[0]))


def _centre(
    members: list[int], lexical: list[dict[str, float]], dense: list[list[float]] | None
) -> tuple[dict[str, float], list[float] | None]:
    words: dict[str, float] = {}
    for i in members:
        for term, weight in lexical[i].items():
            words[term] = words.get(term, 0.0) + weight
    norm = math.sqrt(sum(w * w for w in words.values())) or 1.0
    meaning = None
    if dense is not None:
        meaning = _unit([sum(column) for column in zip(*(dense[i] for i in members), strict=True)])
    return {t: w / norm for t, w in words.items()}, meaning


def shared_terms(questions: Sequence[str], limit: int = 5) -> list[str]:
    """The words most of ``questions`` use, commonest first (ties: first used
    first), each as most often written: a label for a group. A lone question's
    words are its own."""
    counts: Counter[str] = Counter()
    first: dict[str, int] = {}
    spelled: dict[str, Counter[str]] = {}
    for question in questions:
        for word in question.split():
            word = word.strip(" ?.!,;:\"'()").lower()
            for term in dict.fromkeys(tokenize(word)):
                spelled.setdefault(term, Counter())[word] += 1
                first.setdefault(term, len(first))
        counts.update(set(tokenize(question)))
    shared = [t for t in counts if t in spelled and (counts[t] > 1 or len(questions) == 1)]
    shared.sort(key=lambda t: (-counts[t], first[t]))
    return [spelled[t].most_common(1)[0][0] for t in shared[:limit]]


def _weighted(questions: Sequence[str]) -> list[dict[str, float]]:
    terms = [Counter(tokenize(q)) for q in questions]
    frequency = Counter(term for counts in terms for term in counts)
    total = len(questions)
    weights = []
    for counts in terms:
        vector = {t: n * math.log(1 + total / frequency[t]) for t, n in counts.items()}
        norm = math.sqrt(sum(w * w for w in vector.values())) or 1.0
        weights.append({t: w / norm for t, w in vector.items()})
    return weights


def _cosine(a: dict[str, float], b: dict[str, float]) -> float:
    if len(a) > len(b):
        a, b = b, a
    return sum(w * b.get(t, 0.0) for t, w in a.items())


def _unit(vector: Sequence[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]
