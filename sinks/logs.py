"""Structured JSON logs, with anything card-shaped redacted before it is written.

Each line is one JSON object: time, level, logger, message, and any ``extra`` keys
(``request_id``, ``payment_id``, ...). A last-line-of-defence filter replaces digit
runs that look like a PAN (13-19 digits, spaces or dashes allowed) with ``[REDACTED]``.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, Final

_PAN_LIKE: Final = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
_STANDARD_ATTRS: Final = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


def redact(text: str) -> str:
    """Replace card-number-shaped digit runs in ``text``."""
    return _PAN_LIKE.sub("[REDACTED]", text)


class JsonFormatter(logging.Formatter):
    """Format a record as one line of JSON, redacted."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value if isinstance(value, int | float | bool | None) else str(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, ensure_ascii=False, default=str))


def configure_logging(level: str = "INFO", stream: Any = None) -> None:
    """Send every logger's records to ``stream`` (stderr) as redacted JSON lines."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiokafka", "kafka"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
