"""SQL adapters (PostgreSQL via psycopg2, SQLite) built on SQLAlchemy Core."""

from adapters.sql.conversations import SqlConversationStore
from adapters.sql.engine import create_engine_for, prepare_schema, redact

__all__ = ["SqlConversationStore", "create_engine_for", "prepare_schema", "redact"]
