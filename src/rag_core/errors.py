"""The core's error family. Adapters translate vendor errors into these
(``raise DependencyUnavailable(...) from exc``); the HTTP layer maps each to a status."""

from __future__ import annotations


class RagError(Exception):
    """Base of every error the core and its adapters raise on purpose."""


class InvalidInput(RagError):
    """The caller's input cannot be used (HTTP 400/422)."""


class Unauthenticated(RagError):
    """Missing, invalid, expired or revoked credentials (HTTP 401)."""


class NotFound(RagError):
    """The thing asked for does not exist (HTTP 404)."""


class Forbidden(RagError):
    """The thing exists but belongs to someone else (HTTP 403)."""


class Conflict(RagError):
    """The request conflicts with stored state (HTTP 409)."""


class DependencyUnavailable(RagError):
    """An outside system failed, timed out, or its circuit is open (HTTP 503).

    ``retry_after`` is a hint in seconds when one is known (an open circuit's
    remaining recovery time).
    """

    def __init__(self, dependency: str, reason: str, retry_after: float | None = None) -> None:
        super().__init__(f"{dependency} unavailable: {reason}")
        self.dependency = dependency
        self.reason = reason
        self.retry_after = retry_after


class IndexMismatch(RagError):
    """The vector index was built with another layout (dense dimension or model)
    than the one configured; a re-index is needed."""
