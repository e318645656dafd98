"""`POST /feedback` (any reader) and `GET /admin/insights` (the admin key): what
readers think of the answers, and what the site's author learns from the log."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from entrypoints.container import Container
from entrypoints.http import page
from entrypoints.http.deps import AdminDep, ContainerDep
from entrypoints.http.rate_limit import client_address, limit
from entrypoints.http.responses import (
    ADMIN_DISABLED,
    ADMIN_KEY_REQUIRED,
    BAD_BODY,
    INVALID_TOKEN,
    TOO_MANY_REQUESTS,
    UNAVAILABLE,
    UNKNOWN_ANSWER,
)
from entrypoints.http.routes.auth import OptionalPrincipalDep
from entrypoints.http.schemas import Text
from entrypoints.insights_report import parse_since, report_json
from rag_core.errors import NotFound
from rag_core.insights import MAX_COMMENT, Insights, Rating

router = APIRouter()


class FeedbackRequest(BaseModel):
    answer_id: str = Field(min_length=1, max_length=64, description="The answer's `answer_id`.")
    rating: Rating
    comment: Text = Field("", max_length=MAX_COMMENT)


@router.post(
    "/feedback",
    tags=["feedback"],
    dependencies=[Depends(limit("chat"))],
    responses=BAD_BODY | INVALID_TOKEN | TOO_MANY_REQUESTS | UNAVAILABLE | UNKNOWN_ANSWER,
)
async def feedback(
    body: FeedbackRequest,
    request: Request,
    container: ContainerDep,
    principal: OptionalPrincipalDep,
) -> dict[str, bool]:
    """Rate an answer up or down, with an optional comment. One vote per reader per
    answer (a signed-in user, else the client's address); voting again replaces it.
    What is kept of the reader is a keyed hash, never the id or the address."""
    if principal is not None:
        reader = f"user:{principal.user_id}"
    else:
        reader = "address:" + client_address(request, container.settings.proxy_hops)
    await _insights(container).vote(body.answer_id, reader, body.rating, body.comment)
    return {"recorded": True}


@router.get(
    "/admin/insights",
    tags=["admin"],
    responses=ADMIN_KEY_REQUIRED | ADMIN_DISABLED | UNAVAILABLE | UNKNOWN_ANSWER,
)
async def insights(
    container: ContainerDep,
    _: AdminDep,
    since: str = Query("30d", max_length=40, description="30d, 12h, 2w, or an ISO date/time."),
) -> dict[str, Any]:
    """Coverage gaps (uncertain questions grouped, largest first, with examples), the
    most down-voted answers with their comments, the most cited pages, pages never
    cited, and volume and uncertain answers per day."""
    start = parse_since(since, container.clock.now())
    report = await _insights(container).report(start, await container.pages())
    return report_json(report)


def _insights(container: Container) -> Insights:
    if container.insights is None:
        raise NotFound("the question log is off (QUESTION_LOG=false)")
    return container.insights


@router.get("/admin", tags=["admin"], response_class=HTMLResponse, include_in_schema=False)
async def admin_page(request: Request) -> HTMLResponse:
    """The insights page (same dependency-free style as the chat page): the admin key is
    entered by hand and kept in the page's memory only; the page reads /admin/insights."""
    return page.admin_for_app(request.app).response()
