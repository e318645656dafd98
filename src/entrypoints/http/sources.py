"""JSON views of the core's answer values, shared by every route that answers.

Source links are absolute under ``SITE_URL`` (the public site's base URL), which
``create_app`` keeps on ``app.state.site_url`` and :data:`SiteDep` reads; without it
they are site routes (``/docs/week3/ros2-nodes-topics``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import Depends, Request

from adapters.settings import Settings
from entrypoints.http.errors import status_of
from rag_core.answers import Answer, Citation
from rag_core.errors import RagError
from rag_core.history import page_link


def site_base(settings: Settings) -> str | None:
    """``SITE_URL`` stripped of blanks and a trailing slash; None when unset or blank."""
    site = (settings.site_url or "").strip().rstrip("/")
    return site or None


async def get_site(request: Request) -> str | None:
    site: str | None = getattr(request.app.state, "site_url", None)
    return site


SiteDep = Annotated[str | None, Depends(get_site)]


def with_sources(text: str, citations: Iterable[Citation], site: str | None) -> str:
    """``text`` and, when it cites anything, a short ``Sources:`` list after it, for
    clients that show only the text: one line per cited page, its numbers, title and
    link, ``[1] [3] Title — link``, as the history's sources read; a source with no page
    (the reader's selection) is named without a link.

    Plain text, not Markdown links: the textbook site's widget renders ``response`` as
    text with its line breaks collapsed, where ``[Title](link)`` showed as markup. The
    link stands alone between spaces (spaces, parentheses and angle brackets in it are
    percent-encoded), so it stays whole when the lines run together, and a Markdown
    renderer autolinks it."""
    pages: dict[str, tuple[list[int], Citation]] = {}
    for citation in citations:
        key = citation.route or f"#{citation.number}"
        pages.setdefault(key, ([], citation))[0].append(citation.number)
    if not pages:
        return text
    lines = []
    for numbers, citation in pages.values():
        label = " ".join([*(f"[{n}]" for n in numbers), " ".join(citation.title.split())])
        if citation.route:
            label += " — " + _whole_url(page_link(citation.route, site))
        lines.append(label)
    return text.rstrip() + "\n\nSources:\n" + "\n".join(lines)


def _whole_url(url: str) -> str:
    return "".join(_URL_ESCAPES.get(c, c) for c in url)


_URL_ESCAPES = {" ": "%20", "(": "%28", ")": "%29", "<": "%3C", ">": "%3E"}


def usage_json(answer: Answer) -> dict[str, int]:
    prompt, completion = answer.usage.prompt_tokens, answer.usage.completion_tokens
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def error_json(exc: RagError) -> dict[str, Any]:
    return {"detail": str(exc), "status": status_of(exc)}
