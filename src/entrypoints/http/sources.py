"""JSON views of the core's answer values, shared by every route that answers."""

from __future__ import annotations

from typing import Any

from entrypoints.http.errors import status_of
from rag_core.answers import Answer, Citation
from rag_core.errors import RagError


def source_json(citation: Citation) -> dict[str, Any]:
    return {
        "number": citation.number,
        "title": citation.title,
        "url": citation.route,
        "heading_path": list(citation.heading_path),
        "snippet": citation.snippet,
        "score": citation.score,
        "document_id": citation.document_id,
        "chunk_id": citation.chunk_id,
    }


def usage_json(answer: Answer) -> dict[str, int]:
    prompt, completion = answer.usage.prompt_tokens, answer.usage.completion_tokens
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def error_json(exc: RagError) -> dict[str, Any]:
    return {"detail": str(exc), "status": status_of(exc)}
