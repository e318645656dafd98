"""The AsyncOpenAI client, configured for any OpenAI-compatible server."""

from __future__ import annotations

from urllib.parse import urlsplit

import openai

from adapters.openai.errors import call
from adapters.openai.retry import RetryPolicy

OPENAI_BASE_URL = "https://api.openai.com/v1"


def build_openai_client(
    api_key: str,
    base_url: str | None,
    *,
    connect_timeout: float = 5.0,
    read_timeout: float = 60.0,
) -> openai.AsyncOpenAI:
    """An AsyncOpenAI client for OpenAI (``base_url`` None) or any compatible server
    (vLLM, llama.cpp, Ollama: ``http://host:port/v1``).

    ``connect_timeout`` bounds opening a connection; ``read_timeout`` bounds every
    wait for bytes (and writes, and waiting for a pooled connection), so a stream
    may last longer as long as the server keeps sending. The client's own retries
    are off (``max_retries=0``): the adapters retry with their RetryPolicy.
    Nothing is read from the environment for the URL. Raises ValueError for a
    URL that is not http(s) or a non-positive timeout. The caller closes the
    client (``await client.close()``) at shutdown.
    """
    url = base_url or OPENAI_BASE_URL
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("the OpenAI base URL must be http(s)://host[:port][/path]")
    if connect_timeout <= 0 or read_timeout <= 0:
        raise ValueError("OpenAI timeouts must be positive")
    return openai.AsyncOpenAI(
        api_key=api_key,
        base_url=url,
        # openai.Timeout is the httpx Timeout class of the client's own HTTP stack.
        timeout=openai.Timeout(read_timeout, connect=connect_timeout),
        max_retries=0,
        # The SDK's aiohttp transport (the openai[aiohttp] extra): its connection pool
        # does not re-poll every idle connection on each request, which httpx2's did
        # (bench/README.md, P10).
        http_client=openai.DefaultAioHttpClient(),
    )


async def probe_server(client: openai.AsyncOpenAI, *, budget: float | None = None) -> None:
    """One ``GET /models``, not retried (a health monitor probes again anyway), within
    ``budget`` seconds when given; raises DependencyUnavailable if the server cannot
    answer in time or refuses the key."""
    await call(
        RetryPolicy(attempts=1),
        lambda: client.models.list(),
        label="openai probe",
        secret=client.api_key,
        budget=budget,
    )
