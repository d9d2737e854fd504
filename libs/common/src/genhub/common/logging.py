"""Structured JSON logs, one schema for every service.

Each line is one JSON object with these keys (absent when empty)::

    timestamp    RFC 3339, UTC, milliseconds        "2025-01-31T12:00:00.123Z"
    severity     DEBUG | INFO | WARNING | ERROR | CRITICAL
    service      gateway | taskstore | dispatcher-<provider>
    logger       the Python logger's name
    message      the formatted message
    request_id   the current request (gRPC ``x-request-id`` / REST ``X-Request-Id``)
    task_id, provider, model
                 the task being handled (bound with ``bind_task``)
    error_class  the exception's class name (when logged with one), or an explicit extra
    exception    the traceback, when logged with one
    ...          any ``extra={...}`` keys of the call

Lines go to stdout (the container runtime's log collector reads them). For machines without a
collector, ``GENHUB_LOG_FILE`` also writes them to a file rotated at midnight UTC, keeping
``GENHUB_LOG_RETENTION_DAYS`` (default 7) days.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import logging.handlers
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
task_id: contextvars.ContextVar[str] = contextvars.ContextVar("task_id", default="")
provider: contextvars.ContextVar[str] = contextvars.ContextVar("provider", default="")
model: contextvars.ContextVar[str] = contextvars.ContextVar("model", default="")

_CONTEXT = (
    ("request_id", request_id),
    ("task_id", task_id),
    ("provider", provider),
    ("model", model),
)
_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


@contextlib.contextmanager
def bind_task(task: str, provider_name: str = "", model_name: str = "") -> Iterator[None]:
    """Stamp every line logged inside the block with this task, provider and model."""
    tokens = [task_id.set(task), provider.set(provider_name), model.set(model_name)]
    try:
        yield
    finally:
        for var, token in zip((task_id, provider, model), tokens, strict=True):
            var.reset(token)


class JsonFormatter(logging.Formatter):
    """Formats a record as one line of the schema above."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        """The record as one JSON line (no newline)."""
        entry: dict[str, Any] = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "severity": record.levelname,
            "service": self._service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, var in _CONTEXT:
            if value := var.get():
                entry[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            entry["error_class"] = record.exc_info[0].__name__
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(
    service: str, level: str = "INFO", *, file: str = "", retention_days: int = 7
) -> None:
    """Route every logger to stdout as JSON (and to ``file``, rotated daily, if given); call
    once, in a service's ``main``. ``OSError`` if the file cannot be opened."""
    formatter = JsonFormatter(service)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stdout)]
    if file:
        Path(file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(
            logging.handlers.TimedRotatingFileHandler(
                file, when="midnight", backupCount=retention_days, utc=True, encoding="utf-8"
            )
        )
    root = logging.getLogger()
    for old in root.handlers:
        old.close()
    for handler in handlers:
        handler.setFormatter(formatter)
    root.handlers[:] = handlers
    root.setLevel(level.upper())
    # aiormq and pika log every reconnect attempt at INFO; keep them to warnings.
    for noisy in ("aiormq", "aio_pika", "pymongo"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
