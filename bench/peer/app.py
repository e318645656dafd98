"""The peer of performance.md: a plain LlamaIndex query engine served with FastAPI + uvicorn.

Written the way a typical user would: documents read with ``SimpleDirectoryReader``, an
in-memory ``VectorStoreIndex`` with LlamaIndex's default settings (its node parser, its
in-memory vector store), ``index.as_query_engine(similarity_top_k=...)``, one FastAPI route,
one uvicorn process. The LLM and the embeddings are LlamaIndex's OpenAI integrations pointed
at an OpenAI-compatible server (the project's fake, ``tests/fakes/openai_server.py``).

It runs in its own venv (``bench/peer/setup.sh`` makes ``bench/.work/peer-venv``), never
in the project's: LlamaIndex is no dependency of rag-backend. Public LlamaIndex API only.

    bench/.work/peer-venv/bin/python bench/peer/app.py

Settings (environment):

- ``PEER_DOCS``: the folder of Markdown files to index (required).
- ``PEER_OPENAI_BASE_URL``: the OpenAI-compatible base URL, e.g. ``http://127.0.0.1:8001/v1``.
- ``PEER_PORT`` (8090), ``PEER_HOST`` (127.0.0.1).
- ``PEER_TOP_K`` (6, as many passages as rag-backend puts in its prompt).
- ``PEER_MODE``: ``async`` (default: ``async def`` route awaiting ``query_engine.aquery``,
  the FastAPI way) or ``sync`` (``def`` route calling ``query_engine.query``, which FastAPI
  runs in its thread pool of 40 threads).
- ``PEER_CHAT_MODEL`` (gpt-4o-mini), ``PEER_EMBEDDING_MODEL`` (text-embedding-3-small).

``POST /chat {"query": "..."}`` answers ``{"response": "...", "sources": [...]}``;
``GET /health`` answers ``{"status": "ok", "documents": N, "nodes": N}`` once the index is built
(it is built before uvicorn starts listening).
"""

from __future__ import annotations

import os
import time
from typing import Any

import uvicorn
from fastapi import FastAPI
from llama_index.core import Settings, SimpleDirectoryReader, VectorStoreIndex
from llama_index.embeddings.openai import OpenAIEmbedding
from llama_index.llms.openai import OpenAI
from pydantic import BaseModel


class ChatRequest(BaseModel):
    query: str


def configure() -> None:
    base_url = os.environ.get("PEER_OPENAI_BASE_URL", "http://127.0.0.1:8001/v1")
    api_key = os.environ.get("PEER_OPENAI_API_KEY", "sk-peer-bench")
    Settings.llm = OpenAI(
        model=os.environ.get("PEER_CHAT_MODEL", "gpt-4o-mini"),
        api_key=api_key,
        api_base=base_url,
    )
    Settings.embed_model = OpenAIEmbedding(
        model=os.environ.get("PEER_EMBEDDING_MODEL", "text-embedding-3-small"),
        api_key=api_key,
        api_base=base_url,
    )


def build_index(docs: str) -> tuple[VectorStoreIndex, int]:
    documents = SimpleDirectoryReader(docs, recursive=True, required_exts=[".md"]).load_data()
    return VectorStoreIndex.from_documents(documents), len(documents)


def _answer(response: Any) -> dict[str, Any]:
    sources = [
        {
            "file": node.node.metadata.get("file_name"),
            "score": node.score,
            "text": node.node.get_content()[:200],
        }
        for node in getattr(response, "source_nodes", [])
    ]
    return {"response": str(response), "sources": sources}


def create_app() -> FastAPI:
    configure()
    started = time.monotonic()
    index, documents = build_index(os.environ["PEER_DOCS"])
    nodes = len(index.docstore.docs)
    print(
        f"peer index: {documents} documents, {nodes} nodes in {time.monotonic() - started:.1f} s",
        flush=True,
    )
    query_engine = index.as_query_engine(similarity_top_k=int(os.environ.get("PEER_TOP_K", "6")))
    app = FastAPI(title="LlamaIndex peer")

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "documents": documents, "nodes": nodes}

    if os.environ.get("PEER_MODE", "async") == "sync":

        @app.post("/chat")
        def chat_sync(request: ChatRequest) -> dict[str, Any]:
            return _answer(query_engine.query(request.query))

    else:

        @app.post("/chat")
        async def chat(request: ChatRequest) -> dict[str, Any]:
            return _answer(await query_engine.aquery(request.query))

    return app


def main() -> None:
    app = create_app()
    uvicorn.run(
        app,
        host=os.environ.get("PEER_HOST", "127.0.0.1"),
        port=int(os.environ.get("PEER_PORT", "8090")),
    )


if __name__ == "__main__":
    main()
