"""One JSON object per log line, for log collectors (``LOG_FORMAT=json``)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from entrypoints.http.request_id import current_request_id


class JsonFormatter(logging.Formatter):
    """Formats a record as a single-line JSON object.

    Fields: ``time`` (UTC, ISO 8601 with milliseconds), ``level``, ``logger``,
    ``message`` (arguments merged in), ``request_id`` (null outside a request), and
    when present ``exc_type`` and ``exception`` (the formatted traceback) and ``stack``.
    Tracebacks are JSON strings, so a record never spans lines.

    ``request_id`` comes from the record (``RequestIdFilter``) or else from the
    current context. Masking secrets is ``RedactionFilter``'s job, before this runs.
    """

    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", None) or current_request_id.get()
        entry: dict[str, object] = {
            "time": _timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": None if request_id == "-" else request_id,
        }
        if record.exc_info:
            if not record.exc_text:
                record.exc_text = self.formatException(record.exc_info)
            if record.exc_info[0] is not None:
                entry["exc_type"] = record.exc_info[0].__name__
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # ASCII escapes: a lone surrogate from a client's input must not make the
        # stream's encoder fail and lose the line.
        return json.dumps(entry, ensure_ascii=True, default=str)


def _timestamp(created: float) -> str:
    moment = datetime.fromtimestamp(created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
