"""Adapters for OpenAI and any OpenAI-compatible server (vLLM, llama.cpp, Ollama).

The names below are imported on first use: the openai package takes a third of a
second to import, which ``configured.py``'s callers (the composition root, an
unchanged re-ingest) must not pay before a model is built."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from adapters.openai.chat import OpenAIChatModel
    from adapters.openai.client import build_openai_client
    from adapters.openai.embedder import DimensionUnknown, OpenAIEmbedder
    from adapters.openai.retry import RetryPolicy

_MODULES = {
    "DimensionUnknown": "adapters.openai.embedder",
    "OpenAIChatModel": "adapters.openai.chat",
    "OpenAIEmbedder": "adapters.openai.embedder",
    "RetryPolicy": "adapters.openai.retry",
    "build_openai_client": "adapters.openai.client",
}

__all__ = [
    "DimensionUnknown",
    "OpenAIChatModel",
    "OpenAIEmbedder",
    "RetryPolicy",
    "build_openai_client",
]


def __getattr__(name: str) -> object:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
