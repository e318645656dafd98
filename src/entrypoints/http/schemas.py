"""Request and response bodies. Field names of the compatible routes are fixed
by the existing frontend (see api-contract.md); limits are part of the schema."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from entrypoints.http.sources import with_sources
from rag_core.answers import Answer, Citation
from rag_core.history import citation_view
from rag_core.storable import Unstorable, unstorable

MAX_QUERY = 4_000
MAX_SELECTION = 20_000
MAX_DOCUMENT = 2_000_000
MAX_DOCUMENTS = 5_000


def _storable(value: str) -> str:
    # No database holds NUL or lone surrogates; refuse them with a reason.
    problem = unstorable(value)
    if problem is Unstorable.NUL:
        raise ValueError("must not contain NUL characters")
    if problem is Unstorable.LONE_SURROGATE:
        raise ValueError("must be valid Unicode (no lone surrogates)")
    return value


Text = Annotated[str, AfterValidator(_storable)]


class StreamRequest(BaseModel):
    """A question (``POST /chat/stream``; ``POST /chat`` takes one more field)."""

    model_config = ConfigDict(extra="ignore")

    query: Text = Field(min_length=1, max_length=MAX_QUERY, examples=["What is a ROS 2 topic?"])
    selected_text: Text = Field(
        "", max_length=MAX_SELECTION, description="Text the reader selected."
    )
    session_id: Text | None = Field(None, max_length=100)


class ChatRequest(StreamRequest):
    append_sources: bool | None = Field(
        None,
        description="Append a linked `Sources:` list to `response` (for clients that show "
        "only the text); `false` for a client that renders `sources` itself. Null: the "
        "server's APPEND_SOURCES (on unless configured off).",
    )


class Source(BaseModel):
    number: int = Field(description="The [n] that cites this source in the response.")
    title: str
    url: str = Field(
        description="Link to the page: its site route (e.g. /docs/week3/ros2-nodes-topics), "
        "absolute under SITE_URL when that is set; empty for the reader's selected text."
    )
    heading_path: list[str]
    snippet: str
    score: float
    document_id: str | None
    chunk_id: str | None

    @classmethod
    def of(cls, citation: Citation, site: str | None = None) -> Source:
        return cls(**citation_view(citation, site))


class ChatResponse(BaseModel):
    response: str = Field(
        description="The answer, with `[n]` markers naming `sources`; followed by a linked "
        "`Sources:` list unless `append_sources` (or APPEND_SOURCES) is off."
    )
    session_id: str | None
    sources: list[Source]
    mode: str = Field(description="generated | extractive | selection")
    retrieval: str = Field(description="hybrid | lexical | none")
    degraded: list[str] = Field(description="Dependencies that were unavailable while answering.")
    uncertain: bool = Field(
        False,
        description="The answer does not stand on what was found: nothing fitting was "
        "retrieved, too little of the question is in the sources, or the model cited none.",
    )
    answer_id: str = Field(
        "", description="The answer's id: what POST /feedback names (a stored answer's message id)."
    )

    @classmethod
    def of(
        cls,
        answer: Answer,
        session_id: str | None,
        site: str | None = None,
        *,
        append_sources: bool = False,
    ) -> ChatResponse:
        text = with_sources(answer.text, answer.citations, site) if append_sources else answer.text
        return cls(
            response=text,
            session_id=session_id,
            sources=[Source.of(c, site) for c in answer.citations],
            mode=answer.mode.value,
            retrieval=answer.retrieval,
            degraded=list(answer.degraded),
            uncertain=answer.uncertain,
            answer_id=answer.id,
        )


class IngestDocument(BaseModel):
    path: str = Field(
        min_length=1,
        max_length=1_000,
        pattern=r"^[^/\\].*$",
        description="Relative POSIX path; it is the document id and gives the page route.",
        examples=["docs/week3/ros2-nodes-topics.md"],
    )
    text: str = Field(max_length=MAX_DOCUMENT)


class IngestRequest(BaseModel):
    documents: list[IngestDocument] = Field(max_length=MAX_DOCUMENTS)
    scope: str | None = Field(
        None,
        max_length=1_000,
        description="Prune stored documents under this path prefix that are not in `documents` "
        '("" prunes everything else); null prunes nothing.',
    )
    source: str | None = Field(
        None,
        max_length=1_000,
        description="Names what the documents come from (the CLI sends the folder's absolute "
        "path): stored with them, and prunes that source's documents missing from `documents`.",
    )


class IngestResponse(BaseModel):
    documents_added: int
    documents_changed: int
    documents_unchanged: int
    documents_removed: int
    chunks_written: int
    chunks_deleted: int
    embedding_calls: int
    seconds: float
