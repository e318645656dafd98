"""Building the production (or embedded-default) container from settings: the
composition table (``composition.py``) says which adapter serves each port, its
factories open them, then :func:`entrypoints.container.assemble` wraps them (breakers,
outbox) and wires the use cases around them."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from pydantic import SecretStr

from adapters.settings import NO_EMBEDDING_KEY, ConfigurationError, Settings
from adapters.system import SystemClock
from entrypoints.composition import Scope, choices
from entrypoints.container import Adapters, Container, assemble
from rag_core.ports import Clock

log = logging.getLogger(__name__)


def check_production(settings: Settings) -> None:
    """Production refuses embedded fallbacks: one error naming every missing variable."""
    if settings.production:
        missing = settings.missing_for_production()
        if missing:
            raise ConfigurationError(
                "production mode (APP_ENV=production or SPACE_ID set) needs: " + ", ".join(missing)
            )
    if settings.embeddings == "openai" and settings.embedding_key is None:
        raise ConfigurationError(NO_EMBEDDING_KEY)
    if settings.chat_model == "openai" and settings.openai_api_key is None:
        raise ConfigurationError("CHAT_MODEL=openai needs OPENAI_API_KEY")
    if settings.vector_index == "qdrant" and settings.qdrant_url is None:
        raise ConfigurationError("VECTOR_INDEX=qdrant needs QDRANT_URL")
    if settings.database == "postgres" and settings.database_url is None:
        raise ConfigurationError("DATABASE=postgres needs DATABASE_URL (or NEON_API_KEY)")
    if "*" in settings.cors_origins:
        raise ConfigurationError(
            "CORS_ALLOWED_ORIGINS=* cannot be combined with credentials; list the origins"
        )


def plan_adapters(settings: Settings) -> dict[str, str]:
    """Which adapter serves each port, without building anything (for `check-config`)."""
    return choices(settings).described(settings)


async def build_container(
    settings: Settings, *, clock: Clock | None = None, for_ingest: bool = False
) -> Container:
    """Build the production or embedded-default container from settings
    (``clock`` drives the circuit breakers; tests pass a fake one). ``for_ingest``:
    no chat model, and the embedder is built on its first embedding."""
    clock = clock or SystemClock()
    check_production(settings)
    chosen = choices(settings)
    if not settings.production:
        for port, adapter in chosen.fallbacks(settings).items():
            log.info("embedded default for %s: %s", port, adapter)
    scope = Scope(settings, for_ingest=for_ingest)
    try:
        index = await chosen.vector_index.build(scope)
        stores = await chosen.database.build(scope)
        embedder = await chosen.embedder.build(scope)
        chat_model = await chosen.chat_model.build(scope)
        adapters = Adapters(
            index=index,
            stores=stores,
            embedder=embedder,
            chat_model=chat_model,
            auth_secret=_secret(settings, settings.better_auth_secret, "auth-secret"),
            admin_key=_secret(settings, settings.admin_api_key, "admin-key") or None,
            plan=chosen.described(settings),
            closers=scope.closers,
        )
        return await assemble(settings, adapters, clock=clock)
    except BaseException:
        for close in reversed(scope.closers):
            await close()
        raise


def _secret(settings: Settings, configured: SecretStr | None, filename: str) -> str:
    """A configured secret, or locally one generated once into DATA_DIR (mode 0600),
    so it survives restarts and the CLI on the same machine can read it. In
    production there is no local fallback (an empty string)."""
    if configured is not None:
        return configured.get_secret_value()
    if settings.production:
        return ""
    path = settings.data_dir / filename
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    generated = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(generated)
    return generated


def admin_key_path(settings: Settings) -> Path:
    return settings.data_dir / "admin-key"
