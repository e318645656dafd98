"""Adapters for OpenAI and any OpenAI-compatible server (vLLM, llama.cpp, Ollama)."""

from adapters.openai.chat import OpenAIChatModel
from adapters.openai.client import build_openai_client
from adapters.openai.embedder import DimensionUnknown, OpenAIEmbedder
from adapters.openai.retry import RetryPolicy

__all__ = [
    "DimensionUnknown",
    "OpenAIChatModel",
    "OpenAIEmbedder",
    "RetryPolicy",
    "build_openai_client",
]
