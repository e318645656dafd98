"""Configuration from environment variables (and a `.env` file when one exists).

The variable names of the original backend are kept (``NEON_API_KEY`` holds a
PostgreSQL URL; ``OPENAI_MODEL`` names the chat model). Secrets are
``SecretStr``: their values never appear in a repr, a log line or an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict

# The adapter choices per port (see entrypoints/composition.py for what each builds).
VectorIndexChoice = Literal["edge", "qdrant", "memory"]
DatabaseChoice = Literal["sqlite", "postgres", "memory"]
EmbedderChoice = Literal["openai", "local", "none"]
ChatModelChoice = Literal["openai", "none"]

NO_EMBEDDING_KEY = "EMBEDDINGS=openai needs EMBEDDING_API_KEY or OPENAI_API_KEY"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    app_env: Literal["local", "production"] = Field(
        "local",
        description="`production` refuses embedded fallbacks (automatic when SPACE_ID is set).",
    )
    space_id: str | None = Field(
        None, description="Set by Hugging Face Spaces; implies production."
    )
    host: str = Field(
        "127.0.0.1", description="Interface to listen on (the Docker image sets 0.0.0.0)."
    )
    port: int = Field(8080, ge=1, le=65535, description="Port to listen on.")
    data_dir: Path = Field(Path("data"), description="Folder for the embedded index and database.")
    docs_path: str = Field(
        "",
        description="Comma-separated files or folders ingested at start-up (diffed, so cheap when unchanged).",
    )
    log_level: str = Field("INFO", description="Python logging level.")
    log_format: Literal["auto", "json", "text"] = Field(
        "auto",
        description="Log lines: json (one object per line), text, or auto (json in production).",
    )
    trusted_proxy_hops: int | None = Field(
        None,
        ge=0,
        le=10,
        description="Reverse proxies in front that append to X-Forwarded-For (the client is the "
        "N-th entry from the right); 0 ignores the header; unset: 1 on a Space, else 0.",
    )
    rate_limit_enabled: bool = Field(
        True,
        description="Rate limits on chat, transforms and sign-in, per container: its worker "
        "processes count together (in DATA_DIR/rate-limits.db when WORKERS > 1); replicas apart.",
    )
    rate_limit_chat: str = Field(
        "30/minute",
        description="/chat, /chat/stream and /v1/chat/completions per user or client address.",
    )
    rate_limit_transforms: str = Field(
        "60/minute",
        description="Translate and adjust-content routes (a batch counts once) per user or address.",
    )
    rate_limit_sign_in: str = Field(
        "5/minute", description="Sign-in and sign-up attempts per client address."
    )
    rate_limit_sign_in_email: str = Field(
        "5/minute", description="Sign-in attempts per account email, from any address."
    )
    rate_limit_max_keys: int = Field(
        50_000, ge=1, description="Most clients remembered per policy (bounds memory)."
    )

    max_body_bytes: int = Field(
        2 * 1024 * 1024,
        ge=1024,
        description="Largest request body on every route but POST /ingest: a larger one is a 413 "
        "before it is read (from Content-Length, or counted as a chunked body streams in).",
    )
    max_ingest_body_bytes: int = Field(
        64 * 1024 * 1024,
        ge=1024,
        description="Largest POST /ingest body (`rag-backend ingest` sends one folder per "
        "request); the admin key is checked first, and a larger body is a 413 before it is read.",
    )
    max_header_bytes: int = Field(
        16 * 1024,
        ge=1024,
        le=1024 * 1024,
        description="Request line and headers together: more is a 431 and the connection closed.",
    )
    request_head_timeout: float = Field(
        10.0,
        gt=0,
        description="Seconds a client has to send a request's line and headers, counted from "
        "the connection (or the request's first byte on a kept-alive one): then 408 and closed.",
    )
    request_body_timeout: float = Field(
        60.0,
        gt=0,
        description="Seconds a client has to send a whole request body once its headers are in: "
        "then 408 (when no answer has started) and closed. 64 MiB in 60 s needs 9 Mbit/s.",
    )
    keep_alive_timeout: int = Field(
        5, ge=1, description="Seconds an idle kept-alive connection stays open between requests."
    )
    max_connections: int = Field(
        1000,
        ge=1,
        description="Open connections (and requests in flight) at most: one more is answered 503 "
        "and closed at once.",
    )
    workers: int | None = Field(
        None,
        ge=1,
        le=64,
        validation_alias=AliasChoices("WORKERS", "WEB_CONCURRENCY"),
        description="HTTP worker processes. Unset: the CPUs the container may use (its cgroup "
        "quota), but 1 with VECTOR_INDEX=edge (measured faster on 2 cores); with edge and "
        "more than one, an index owner process holds the embedded index for them. "
        "VECTOR_INDEX=memory or DATABASE=memory serves with 1.",
    )

    openai_api_key: SecretStr | None = Field(
        None, description="Enables embeddings and generated answers."
    )
    openai_base_url: str | None = Field(None, description="Any OpenAI-compatible server.")
    openai_chat_model: str = Field(
        "gpt-4o-mini",
        validation_alias=AliasChoices("OPENAI_CHAT_MODEL", "OPENAI_MODEL"),
        description="Chat model (OPENAI_MODEL is accepted too).",
    )
    openai_embedding_model: str = Field("text-embedding-3-small", description="Embedding model.")
    openai_embedding_dimension: int | None = Field(
        None,
        ge=1,
        description="Vector length of the embedding model; known OpenAI models need none, "
        "others are asked once at start-up when unset. A smaller length for a "
        "text-embedding-3 model is requested from the API (smaller index, faster search; "
        "re-index after changing it).",
    )
    chat_model: ChatModelChoice | None = Field(
        None,
        description="The chat model: `openai` (the OPENAI_* server) or `none` (extractive cited "
        "answers; translation and personalisation unavailable); unset: `openai` when "
        "OPENAI_API_KEY is set, else `none`.",
        examples=["none"],
    )
    embeddings: EmbedderChoice | None = Field(
        None,
        description="Dense embeddings for hybrid retrieval: `openai` (the EMBEDDING_* or OPENAI_* "
        "server), `local` (an ONNX model in-process through fastembed: `pip install "
        "rag-backend[local]`, no key), or `none` (lexical BM25 only); unset: `openai` when "
        "EMBEDDING_API_KEY or OPENAI_API_KEY is set, else `none`.",
        examples=["local"],
    )
    embedding_api_key: SecretStr | None = Field(
        None,
        description="Key of the embedding server (EMBEDDINGS=openai); unset: OPENAI_API_KEY.",
        examples=["sk-..."],
    )
    embedding_base_url: str | None = Field(
        None,
        description="OpenAI-compatible embedding server; unset: OPENAI_BASE_URL (so a chat-only "
        "server can be paired with local or lexical retrieval).",
        examples=["https://api.openai.com/v1"],
    )
    local_embedding_model: str = Field(
        "BAAI/bge-small-en-v1.5",
        description="Model for EMBEDDINGS=local: one of fastembed's, downloaded on first use into "
        "DATA_DIR/models. With LOCAL_EMBEDDING_PATH, fastembed's description of it is used "
        "(pooling, vector length); a name fastembed does not know is loaded with mean pooling, "
        "normalised, the length from config.json `hidden_size`.",
        examples=["sentence-transformers/all-MiniLM-L6-v2"],
    )
    local_embedding_path: Path | None = Field(
        None,
        description="Folder holding the local model's ONNX files (model file, tokenizer.json, "
        "tokenizer_config.json, config.json): loaded from there, nothing is downloaded.",
        examples=["/models/all-MiniLM-L6-v2"],
    )
    openai_connect_timeout: float = Field(
        5.0, gt=0, description="Seconds to connect to the model server."
    )
    openai_timeout: float = Field(
        60.0,
        gt=0,
        description="Seconds to wait for each read from the model server (e.g. between two "
        "chunks of a streamed answer).",
    )
    openai_first_token_timeout: float = Field(
        5.0,
        gt=0,
        description="Seconds a chat model call may wait for the first token of its answer, "
        "its retries included: a model server that accepts connections and never answers then "
        "fails (the circuit counts it at once) and /chat, /chat/stream and /v1/chat/completions "
        "answer extractively. Answers are read as streams, which is what makes the first "
        "token visible; raise it for a slow self-hosted model or a reasoning model.",
    )
    openai_answer_timeout: float = Field(
        120.0,
        gt=0,
        description="Seconds a chat model call may take in all, to the end of a long answer "
        "(translations too), its retries included.",
    )
    openai_embedding_timeout: float = Field(
        3.0,
        gt=0,
        description="Seconds an embedding request may take, its retries included, per started "
        "8,000 characters it carries: a question's embedding gets this, a batch at ingest "
        "proportionally more; on timeout retrieval goes on lexical only.",
    )
    openai_retries: int = Field(
        3, ge=1, le=10, description="Tries per model call, the first included."
    )

    vector_index: VectorIndexChoice | None = Field(
        None,
        description="The vector index: `edge` (Qdrant's embedded engine in DATA_DIR), `qdrant` "
        "(the QDRANT_URL server) or `memory` (in the process, lost on exit); unset: `qdrant` when QDRANT_URL is set, else `edge`.",
        examples=["qdrant"],
    )
    qdrant_url: str | None = Field(
        None,
        description="Qdrant server URL; unset: embedded index in DATA_DIR; `:memory:` for tests.",
    )
    qdrant_api_key: SecretStr | None = Field(None, description="Qdrant Cloud API key.")
    qdrant_collection_name: str = Field(
        "documentation", description="Collection holding the chunks."
    )
    qdrant_timeout: float = Field(
        10.0,
        gt=0,
        description="Seconds per Qdrant call (to a server, or to the index owner process).",
    )
    index_owner_socket: Path | None = Field(
        None,
        description="Set by `rag-backend serve` for its worker processes: the Unix socket of "
        "the process that holds the embedded index (VECTOR_INDEX=edge), which they query "
        "instead of opening DATA_DIR's index themselves. Unset: the process opens it.",
    )

    database: DatabaseChoice | None = Field(
        None,
        description="The database of conversations, accounts and the content cache: `sqlite` "
        "(a file in DATA_DIR), `postgres` (DATABASE_URL) or `memory` (lost on exit); unset: "
        "`postgres` when DATABASE_URL (or NEON_API_KEY) is set, else `sqlite`.",
        examples=["postgres"],
    )
    database_url: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("DATABASE_URL", "NEON_API_KEY"),
        description="PostgreSQL URL (NEON_API_KEY is accepted too); unset: SQLite in DATA_DIR.",
    )
    database_timeout: float = Field(5.0, gt=0, description="Seconds to connect to the database.")

    better_auth_secret: SecretStr | None = Field(None, description="Signs access tokens.")
    better_auth_url: str | None = Field(
        None, description="Public URL of the service (token issuer)."
    )
    admin_api_key: SecretStr | None = Field(
        None,
        description="Bearer key for POST /ingest; unset locally: generated into DATA_DIR/admin-key.",
    )

    openai_breaker_threshold: int = Field(
        3, ge=1, description="Consecutive failures that open the OpenAI circuit."
    )
    openai_breaker_recovery: float = Field(
        30.0, gt=0, description="Seconds the OpenAI circuit stays open before a trial call."
    )
    qdrant_breaker_threshold: int = Field(
        5, ge=1, description="Consecutive failures that open the Qdrant circuit."
    )
    qdrant_breaker_recovery: float = Field(
        15.0, gt=0, description="Seconds the Qdrant circuit stays open before a trial call."
    )
    database_breaker_threshold: int = Field(
        5, ge=1, description="Consecutive failures that open the database circuit."
    )
    database_breaker_recovery: float = Field(
        15.0, gt=0, description="Seconds the database circuit stays open before a trial call."
    )
    breaker_half_open_calls: int = Field(
        1, ge=1, description="Trial calls a half-open circuit admits at once."
    )
    outbox_flush_interval: float = Field(
        5.0,
        gt=0,
        description="Seconds between tries to write chat turns kept during a database outage.",
    )
    health_interval: float = Field(
        15.0, gt=0, description="Seconds between background health probes."
    )

    cors_allowed_origins: str = Field("", description="Comma-separated origins allowed by CORS.")
    cors_origin_regex: str | None = Field(
        None, description=r"Origins allowed by pattern, e.g. `https://.*\.hf\.space`."
    )
    site_url: str | None = Field(
        None,
        pattern=r"^\s*(https?://[^\s?#]+)?\s*$",
        description="Public base URL of the documentation site (with its Docusaurus baseUrl): "
        "source links become absolute (`SITE_URL` + the page route) in every answer, stored "
        "message, export and on the chat page; unset: site routes such as `/docs/intro`.",
        examples=["https://your-name.github.io/physical-ai-book"],
    )
    question_log: bool = Field(
        True,
        description="Log each answer for the site's author (rag-backend insights, GET "
        "/admin/insights): the question, its time, how it was answered, whether it was "
        "uncertain, the pages it cited; readers can vote on answers (POST /feedback). "
        "False: nothing is logged and both are off.",
        examples=["false"],
    )
    log_identities: bool = Field(
        False,
        description="Keep the signed-in asker's user id with a logged answer. Off: the log "
        "holds no user id, email or address (votes keep only a keyed hash of the reader).",
        examples=["true"],
    )
    question_log_retention_days: int = Field(
        90,
        ge=1,
        le=3650,
        description="Days a logged answer and its votes are kept; older ones are purged hourly.",
        examples=["30"],
    )
    append_sources: bool = Field(
        True,
        description="POST /chat appends a short linked `Sources:` list (plain text, one "
        "`[n] Title — link` line per cited page) to `response`, for clients that show only "
        "the text, and GET /api/chat/sessions/{id} to each past answer's `content` (the "
        "stored message stays the answer alone); a request's "
        '`"append_sources": false` (or true) decides for that request. /chat/stream and '
        "/v1/chat/completions never append: their clients read the sources.",
        examples=["false"],
    )

    @field_validator(
        "openai_base_url",
        "embedding_base_url",
        "qdrant_url",
        "better_auth_url",
        "cors_origin_regex",
    )
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @field_validator("embeddings", "vector_index", "database", "chat_model", mode="before")
    @classmethod
    def _embeddings_choice(cls, value: object) -> object:
        return value.strip().lower() or None if isinstance(value, str) else value

    @field_validator("local_embedding_path", mode="before")
    @classmethod
    def _blank_path_is_none(cls, value: object) -> object:
        return value.strip() or None if isinstance(value, str) else value

    @property
    def production(self) -> bool:
        return self.app_env == "production" or bool(self.space_id)

    @property
    def vector_index_choice(self) -> VectorIndexChoice:
        """VECTOR_INDEX, or its default: ``qdrant`` when QDRANT_URL is set, else ``edge``."""
        if self.vector_index is not None:
            return self.vector_index
        return "qdrant" if self.qdrant_url else "edge"

    @property
    def database_choice(self) -> DatabaseChoice:
        """DATABASE, or its default: ``postgres`` when DATABASE_URL is set, else ``sqlite``."""
        if self.database is not None:
            return self.database
        return "postgres" if self.database_url else "sqlite"

    @property
    def chat_model_choice(self) -> ChatModelChoice:
        """CHAT_MODEL, or its default: ``openai`` when OPENAI_API_KEY is set, else ``none``."""
        if self.chat_model is not None:
            return self.chat_model
        return "openai" if self.openai_api_key is not None else "none"

    @property
    def embedding_backend(self) -> EmbedderChoice:
        """EMBEDDINGS, or its default: ``openai`` when a key for it is set, else ``none``."""
        if self.embeddings is not None:
            return self.embeddings
        return "openai" if self.embedding_key is not None else "none"

    @property
    def embedding_key(self) -> SecretStr | None:
        """The embedding server's key: EMBEDDING_API_KEY, else OPENAI_API_KEY."""
        return self.embedding_api_key or self.openai_api_key

    @property
    def embedding_url(self) -> str | None:
        """The embedding server's base URL: EMBEDDING_BASE_URL, else OPENAI_BASE_URL."""
        return self.embedding_base_url or self.openai_base_url

    @property
    def cors_origins(self) -> list[str]:
        return [o.strip().rstrip("/") for o in self.cors_allowed_origins.split(",") if o.strip()]

    @property
    def docs_paths(self) -> list[Path]:
        return [Path(p.strip()) for p in self.docs_path.split(",") if p.strip()]

    @property
    def proxy_hops(self) -> int:
        if self.trusted_proxy_hops is not None:
            return self.trusted_proxy_hops
        return 1 if self.space_id else 0

    @property
    def log_output(self) -> Literal["json", "text"]:
        if self.log_format != "auto":
            return self.log_format
        return "json" if self.production else "text"

    def secret_values(self) -> list[str]:
        """Every configured secret (and the database password), for log redaction."""
        values = [
            s.get_secret_value()
            for s in (
                self.openai_api_key,
                self.embedding_api_key,
                self.qdrant_api_key,
                self.database_url,
                self.better_auth_secret,
                self.admin_api_key,
            )
            if s is not None
        ]
        if self.database_url is not None:
            password = urlsplit(self.database_url.get_secret_value()).password
            if password:
                values.append(password)
        return values

    def missing_for_production(self) -> list[str]:
        """Names of the variables production needs and does not have (never their values).

        OPENAI_API_KEY is for the chat model: embeddings may be local or absent
        (EMBEDDINGS=local or none) in production too. QDRANT_URL is needed when the
        vector index is the Qdrant server, the default in production: a production
        index is not an embedded one; another VECTOR_INDEX brings its own needs. The
        database URL likewise, unless DATABASE names another choice than the default."""
        required: dict[str, object] = {"OPENAI_API_KEY": self.openai_api_key}
        if self.vector_index in (None, "qdrant"):
            required["QDRANT_URL"] = self.qdrant_url
        if self.database in (None, "postgres"):
            required["NEON_API_KEY (or DATABASE_URL)"] = self.database_url
        required["BETTER_AUTH_SECRET"] = self.better_auth_secret
        return [name for name, value in required.items() if not value]


class ConfigurationError(Exception):
    """The configuration cannot start the service; the message names what is wrong."""


def env_names(name: str, field: FieldInfo) -> list[str]:
    """The environment variables that set a field, the preferred one first."""
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        names = [c for c in alias.choices if isinstance(c, str)]
    elif isinstance(alias, str):
        names = [alias]
    else:
        names = [field.alias or name]
    return [n.upper() for n in names]


def variable_names() -> frozenset[str]:
    """Every environment variable the settings read (upper case)."""
    return frozenset(
        n for name, field in Settings.model_fields.items() for n in env_names(name, field)
    )
