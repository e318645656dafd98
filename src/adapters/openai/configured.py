"""The OpenAI adapters as the settings configure them: what the wiring used to know
about OpenAI (model vector lengths, building on first use, one client per port)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from pydantic import SecretStr

from adapters.settings import NO_EMBEDDING_KEY, ConfigurationError, Settings
from rag_core.ports import ChatModel, Embedder

if TYPE_CHECKING:
    from openai import AsyncOpenAI

    from adapters.openai.embedder import OpenAIEmbedder

Closer = Callable[[], Awaitable[None]]

# Inside the health monitor's deadline (2 s): a hung model server fails the probe with
# the adapter's own DeadlineExceeded, which /health shows.
MODEL_PROBE_TIMEOUT = 1.5

# Vector lengths of OpenAI's embedding models, so start-up needs no request.
KNOWN_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}


def embedding_dimension(model: str, configured: int | None) -> tuple[int | None, bool]:
    """The vector length to expect (None: ask the model) and whether to request it.

    A length configured for a known OpenAI model other than its own is requested
    (``dimensions``): text-embedding-3 models shorten their vectors, older ones
    refuse, which the first call reports. For other models the configured length
    only says what the model returns.
    """
    native = KNOWN_DIMENSIONS.get(model)
    if configured is None:
        return native, False
    return configured, native is not None and configured != native


def openai_client(
    settings: Settings, key: SecretStr, base_url: str | None, closers: list[Closer]
) -> AsyncOpenAI:
    """One client (one connection pool) per port: short embedding calls never queue
    behind long streams. The openai package is imported in here, when a model is
    built: it takes a third of a second."""
    from adapters.openai.client import build_openai_client

    built = build_openai_client(
        key.get_secret_value(),
        base_url,
        connect_timeout=settings.openai_connect_timeout,
        read_timeout=settings.openai_timeout,
    )
    closers.append(built.close)
    return built


def openai_chat_model(settings: Settings, closers: list[Closer]) -> ChatModel:
    """The chat model OPENAI_API_KEY (and OPENAI_BASE_URL) configure."""
    from adapters.openai.chat import OpenAIChatModel
    from adapters.openai.retry import RetryPolicy

    if settings.openai_api_key is None:
        raise ConfigurationError("CHAT_MODEL=openai needs OPENAI_API_KEY")
    client = openai_client(settings, settings.openai_api_key, settings.openai_base_url, closers)
    return OpenAIChatModel(
        client,
        settings.openai_chat_model,
        retry=RetryPolicy(attempts=settings.openai_retries),
        first_token_timeout=settings.openai_first_token_timeout,
        answer_timeout=settings.openai_answer_timeout,
        probe_timeout=MODEL_PROBE_TIMEOUT,
    )


async def openai_embedder(
    settings: Settings, closers: list[Closer], *, for_ingest: bool
) -> Embedder:
    """The embedder EMBEDDINGS=openai configures. Its vector length is known for
    OpenAI's models, else asked once now; for ingest, built on its first embedding."""
    key = settings.embedding_key
    if key is None:  # check_production refused this already
        raise ConfigurationError(NO_EMBEDDING_KEY)
    model = settings.openai_embedding_model
    dimension, shorten = embedding_dimension(model, settings.openai_embedding_dimension)

    def embedder() -> OpenAIEmbedder:
        from adapters.openai.embedder import OpenAIEmbedder
        from adapters.openai.retry import RetryPolicy

        retry = RetryPolicy(attempts=settings.openai_retries)
        client = openai_client(settings, key, settings.embedding_url, closers)
        return OpenAIEmbedder(
            client,
            model,
            retry=retry,
            dimension=dimension,
            shorten=shorten,
            timeout=settings.openai_embedding_timeout,
            probe_timeout=MODEL_PROBE_TIMEOUT,
        )

    if for_ingest and dimension is not None:
        # An unchanged re-ingest needs no embedding.
        return LazyEmbedder(model, dimension, embedder)
    built = embedder()
    if dimension is None:
        await built.discover_dimension()
    return built


class LazyEmbedder:
    """The Embedder port, built by ``build`` on the first embedding (``model`` and
    ``dimension`` are known before): an unchanged re-ingest then never imports or
    connects anything (bench/README.md, P8)."""

    def __init__(self, model: str, dimension: int, build: Callable[[], Embedder]) -> None:
        self._model = model
        self._dimension = dimension
        self._build = build
        self._built: Embedder | None = None

    @property
    def model(self) -> str:
        return self._model

    @property
    def dimension(self) -> int:
        return self._dimension

    async def embed(self, texts: Sequence[str]) -> list[tuple[float, ...]]:
        if self._built is None:
            self._built = self._build()
        return await self._built.embed(texts)
