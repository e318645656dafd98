"""`POST /ingest`: admin-only ingestion of documents sent in the body."""

from __future__ import annotations

import time

from fastapi import APIRouter

from entrypoints.http.deps import AdminDep, AdminFirstRoute, ContainerDep, MetricsDep
from entrypoints.http.responses import (
    ADMIN_DISABLED,
    ADMIN_KEY_REQUIRED,
    BAD_BODY,
    INDEX_MISMATCH,
    UNAVAILABLE,
)
from entrypoints.http.schemas import IngestRequest, IngestResponse
from rag_core.markdown import parse_document

router = APIRouter(tags=["admin"], route_class=AdminFirstRoute)


@router.post(
    "/ingest",
    response_model=IngestResponse,
    responses=BAD_BODY | ADMIN_KEY_REQUIRED | ADMIN_DISABLED | INDEX_MISMATCH | UNAVAILABLE,
)
async def ingest(
    body: IngestRequest, container: ContainerDep, metrics: MetricsDep, _: AdminDep
) -> IngestResponse:
    """Diff the documents against the index: unchanged ones cost nothing,
    changed ones are replaced, and with `scope` the missing ones are removed."""
    started = time.perf_counter()
    documents = [parse_document(d.path, d.text) for d in body.documents]
    report = await container.ingest(documents, scope=body.scope, source=body.source)
    metrics.record_ingest(report)
    return IngestResponse(
        documents_added=report.documents_added,
        documents_changed=report.documents_changed,
        documents_unchanged=report.documents_unchanged,
        documents_removed=report.documents_removed,
        chunks_written=report.chunks_written,
        chunks_deleted=report.chunks_deleted,
        embedding_calls=report.embedding_calls,
        seconds=round(time.perf_counter() - started, 3),
    )
