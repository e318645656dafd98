"""Logging set-up for the service and the CLI: one handler on the root logger (text
for people, JSON for collectors), request ids on every line, secrets masked.

uvicorn's loggers (``uvicorn.error``, ``uvicorn.access``) are made to propagate to
that handler, so access lines get the same format, request id and masking (the CLI
runs uvicorn with ``log_config=None``, which leaves them alone otherwise).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Literal, TextIO

from entrypoints.http.request_id import RequestIdFilter
from entrypoints.json_logs import JsonFormatter

FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
LogFormat = Literal["text", "json"]
MASK = "***"
# Known secret values shorter than this are not masked verbatim (too many false hits).
MIN_SECRET_LENGTH = 8

# No word boundary before: PGPASSWORD= and OPENAI_API_KEY= are secrets too (the one
# after keeps max_tokens= and token_id= readable).
_SECRET_KEY = (
    r"(?:password|passwd|pwd|secret|api[_-]?key|access[_-]?key|token|authorization|credentials?)"
)
_SECRETS: list[tuple[re.Pattern[str], str]] = [
    # Credentials in a URL: postgres://user:password@host -> postgres://***@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]{0,30}://)[^\s/@:]{0,256}:\S{0,256}@"), rf"\1{MASK}@"),
    # Bearer credentials (8+ characters: "the bearer of" is English)
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/-]{8,}=*"), rf"\1 {MASK}"),
    # JSON Web Tokens (our access tokens among them)
    (re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), MASK),
    # Provider keys by shape: OpenAI (sk-, sk-proj-), Hugging Face, GitHub
    (re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"), f"sk-{MASK}"),
    (re.compile(r"\bhf_[A-Za-z0-9]{20,}"), f"hf_{MASK}"),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"), f"gh_{MASK}"),
    # key=value, key: value, "key": "value" for secret-looking keys (DSNs, query
    # strings, headers, dict reprs)
    (
        re.compile(
            rf"""(?i)({_SECRET_KEY}\b["']?\s*[:=]\s*(?:(?:basic|bearer|digest)\s+)?)"""
            r"""("[^"]*"|'[^']*'|[^\s&,;"'}]+)"""
        ),
        rf"\1{MASK}",
    ),
]
# Every pattern above (and the SQL blocks below) needs one of these to match: a text
# without any is left as it is, which is most log lines (access lines among them).
_MAYBE_SECRET = re.compile(
    rf"(?i)://|@|eyJ|sk-|hf_|gh[pousr]_|bearer|{_SECRET_KEY}|\[(?:SQL|parameters): "
)
# SQLAlchemy puts the statement and its parameters (user data) into its messages,
# each on a line of its own.
_SQL_START = re.compile(r"^\[(SQL|parameters): ", re.MULTILINE)


class RedactionFilter(logging.Filter):
    """Masks secrets in a record's message, arguments, traceback and stack.

    Masked: URL credentials, Bearer credentials, JWTs, provider keys by shape
    (``sk-``, ``hf_``, ``ghp_``), values of secret-looking keys (``password=``,
    ``api_key: ``, ``"token": ...``), and the exact ``secrets`` given (e.g. the
    configured keys, whatever their shape). At INFO and above, SQLAlchemy's
    ``[SQL: ...]`` and ``[parameters: ...]`` too. The arguments are merged into the
    message first (then dropped), so a secret inside any argument's ``str()`` is
    caught. Install it on the handler: a logger's filters do not see records
    propagated from its children.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        known = sorted({s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)
        self._known = re.compile("|".join(map(re.escape, known))) if known else None

    def redact(self, text: str, *, hide_sql: bool = True) -> str:
        """``text`` with every secret it holds masked."""
        if _MAYBE_SECRET.search(text) is None and (
            self._known is None or self._known.search(text) is None
        ):
            return text
        return self.mask_all(text, hide_sql=hide_sql)

    def mask_all(self, text: str, *, hide_sql: bool = True) -> str:
        """What ``redact`` returns, without its shortcut for texts that cannot hold a secret."""
        if self._known is not None:
            text = self._known.sub(MASK, text)
        for pattern, replacement in _SECRETS:
            text = pattern.sub(replacement, text)
        if hide_sql:
            text = _hide_sql(text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        hide_sql = record.levelno >= logging.INFO
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: the handler reports it when it formats
            return True
        record.msg, record.args = self.redact(message, hide_sql=hide_sql), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text, hide_sql=hide_sql)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info, hide_sql=hide_sql)
        return True


def _hide_sql(text: str) -> str:
    """Each ``[SQL: ...]`` / ``[parameters: ...]`` block up to the first ``]`` ending a
    line becomes ``[SQL: (hidden)]``; in one pass (a regex would rescan the rest of
    the text for each unclosed block)."""
    parts: list[str] = []
    done = 0
    for found in _SQL_START.finditer(text):
        if found.start() < done:
            continue
        close = text.find("]\n", found.end())
        if close < 0 and text.endswith("]"):
            close = len(text) - 1
        if close < 0:
            break  # no block after this one can close either
        parts += [text[done : found.start()], f"[{found[1]}: (hidden)]"]
        done = close + 1
    parts.append(text[done:])
    return "".join(parts)


def configure(
    level: str = "INFO",
    fmt: LogFormat = "text",
    *,
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> logging.Handler:
    """Route every log record to one handler on ``stream`` (stderr by default) in
    ``fmt``, with request ids and masking (``secrets``: values to mask verbatim).
    Returns the handler."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(FORMAT))
    handler.addFilter(RequestIdFilter())
    handler.addFilter(RedactionFilter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    # httpx logs every request URL at INFO; keep it quiet (URLs may carry hosts we do not print).
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # Alembic says which dialect it uses on every start; adapters.sql logs what it migrated.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    return handler
