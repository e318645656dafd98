"""Sections that talk about a page rather than answer from it: learning objectives,
review questions, exercises, further reading. They restate a chapter's topics in
few words, so they rank well for almost any question about it, and they never hold
the answer: retrieval ranks them after the others, and the extractive composer
never quotes them."""

from __future__ import annotations

import re
from collections.abc import Sequence

_ABOUT_THE_PAGE = re.compile(
    r"\b(?:learning (?:objectives?|outcomes?|goals?)|objectives?|review questions?|"
    r"questions?|exercises?|quiz|self[- ]check|what you will learn|further reading|"
    r"references|bibliography)\b",
    re.IGNORECASE,
)


def about_the_page(heading_path: Sequence[str]) -> bool:
    """Whether the innermost heading names such a section."""
    return any(_ABOUT_THE_PAGE.search(heading) for heading in heading_path[-1:])
