"""Logging: one line per event, plain or JSON, with the current request or job id."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import UTC, datetime

# Set by the web middleware for each request and by the worker for each job, so every line says what it belongs to.
context_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("context_id", default=None)

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        setattr(record, "context_id", context_id.get())  # noqa: B010 - LogRecord has no such attribute
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        cid = getattr(record, "context_id", None)
        if cid:
            out["id"] = cid
        for key, value in record.__dict__.items():
            if key not in _RESERVED and key != "context_id" and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        cid = getattr(record, "context_id", None)
        if cid:
            line = line.replace(" | ", f" [{cid}] | ", 1)
        # keep one event per line even when a message or traceback spans several
        return line.replace("\n", "\n    ")


def setup_logging(fmt: str = "text", level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_ContextFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)-7s %(name)s | %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiohttp's access log repeats what our middleware logs with the request id
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # pgserver logs every initdb/pg_ctl command line with its output at INFO
    logging.getLogger("pgserver").setLevel(logging.WARNING)
