"""Structured logs: one JSON object per line, with the request id when there is one.

The middleware sets `request_id` for the duration of a request, so every line logged while
serving it (errors, URL refusals, Triton failures) carries the id, not only the access line.
uvicorn's own loggers are routed through the same handler, so the whole stream is JSON.
"""

from __future__ import annotations

import logging
import sys
import time
from contextvars import ContextVar

import orjson

# uvicorn adds `color_message` (ANSI-coloured copy of msg) to its records: not a field worth keeping.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "color_message"}
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


class JsonFormatter(logging.Formatter):
    _second, _stamp = -1, ""  # strftime once per second, not once per line

    def _ts(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        if second != self._second:
            self._second, self._stamp = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._stamp}.{int(record.msecs):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": self._ts(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        current = request_id.get()
        if current is not None:
            entry["request_id"] = current
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure(level: str, json_lines: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    # No formatter here prints the caller's file/line: skip the stack walk logging does for every record.
    logging._srcfile = None  # type: ignore[attr-defined]  # noqa: SLF001 - the documented way to turn it off
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):  # uvicorn configured these before the factory ran
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    # uvicorn.access would log query strings (`api_key=...`): our own access line logs the path only.
    for noisy in ("uvicorn.access", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
