"""One logging setup for every service and the CLI.

In gcp mode (or whenever stdout is not a terminal and ``log_format=auto``) each record is
one JSON object in Cloud Logging's structured format, with the trace id taken from the
request's ``traceparent`` / ``X-Cloud-Trace-Context`` header so that a run's lines join
up across services. On a terminal, short readable lines.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

from sfpipe.config import Mode, Settings, get_settings

_service: contextvars.ContextVar[str] = contextvars.ContextVar("sfpipe_service", default="sfpipe")
_run_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("sfpipe_run_id", default=None)
_trace: contextvars.ContextVar[str | None] = contextvars.ContextVar("sfpipe_trace", default=None)

_LEVEL_TO_SEVERITY = {
    "DEBUG": "DEBUG",
    "INFO": "INFO",
    "WARNING": "WARNING",
    "ERROR": "ERROR",
    "CRITICAL": "CRITICAL",
}


def trace_from_headers(headers: Mapping[str, str], project: str) -> str | None:
    """The Cloud Logging trace resource for a request, from W3C or Google's own header."""
    lower = {k.lower(): v for k, v in headers.items()}
    trace_id = None
    if parent := lower.get("traceparent"):
        parts = parent.split("-")
        if len(parts) >= 3 and len(parts[1]) == 32:
            trace_id = parts[1]
    if trace_id is None and (cloud := lower.get("x-cloud-trace-context")):
        trace_id = cloud.split("/", 1)[0] or None
    return f"projects/{project}/traces/{trace_id}" if trace_id else None


@contextlib.contextmanager
def log_context(*, run_id: str | None = None, trace: str | None = None, service: str | None = None) -> Iterator[None]:
    """Label every record logged inside the block with a run id, trace and service."""
    tokens: list[tuple[contextvars.ContextVar[Any], contextvars.Token[Any]]] = []
    if run_id is not None:
        tokens.append((_run_id, _run_id.set(run_id)))
    if trace is not None:
        tokens.append((_trace, _trace.set(trace)))
    if service is not None:
        tokens.append((_service, _service.set(service)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def current_run_id() -> str | None:
    """The run id that the current context logs under, if any."""
    return _run_id.get()


class CloudLoggingFormatter(logging.Formatter):
    """One JSON object per line, in the shape Cloud Logging parses from stdout."""

    def format(self, record: logging.LogRecord) -> str:
        """Render the record with severity, message, trace and labels."""
        entry: dict[str, Any] = {
            "severity": _LEVEL_TO_SEVERITY.get(record.levelname, "DEFAULT"),
            "message": record.getMessage(),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "logger": record.name,
            "logging.googleapis.com/labels": {"service": _service.get()},
            "logging.googleapis.com/sourceLocation": {
                "file": record.pathname,
                "line": record.lineno,
                "function": record.funcName,
            },
        }
        run_id = getattr(record, "run_id", None) or _run_id.get()
        if run_id:
            entry["logging.googleapis.com/labels"]["run_id"] = run_id
        if trace := _trace.get():
            entry["logging.googleapis.com/trace"] = trace
        extra = getattr(record, "fields", None)
        if isinstance(extra, Mapping):
            entry.update(extra)
        if record.exc_info:
            entry["stack_trace"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class ConsoleFormatter(logging.Formatter):
    """Short lines for a person at a terminal: time, level, service, run, message."""

    def format(self, record: logging.LogRecord) -> str:
        """Render the record as one readable line."""
        when = datetime.fromtimestamp(record.created, UTC).strftime("%H:%M:%S")
        run_id = getattr(record, "run_id", None) or _run_id.get()
        run = f" [{run_id}]" if run_id else ""
        line = f"{when} {record.levelname:<7} {_service.get()}{run}: {record.getMessage()}"
        extra = getattr(record, "fields", None)
        if isinstance(extra, Mapping) and extra:
            line += " " + " ".join(f"{k}={v}" for k, v in extra.items())
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def use_json(settings: Settings, stream: TextIO) -> bool:
    """Whether log lines should be JSON for this process."""
    if settings.log_format == "json":
        return True
    if settings.log_format == "text":
        return False
    return settings.mode is Mode.GCP or not stream.isatty()


def setup_logging(service: str, settings: Settings | None = None, stream: TextIO | None = None) -> None:
    """Configure the root logger once for a process; calling it again replaces the handler."""
    settings = settings or get_settings()
    stream = stream or sys.stderr
    _service.set(service)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(CloudLoggingFormatter() if use_json(settings, stream) else ConsoleFormatter())
    handler.set_name("sfpipe")
    root = logging.getLogger()
    for existing in list(root.handlers):
        if existing.get_name() == "sfpipe":
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    for noisy in ("urllib3", "google", "grpc", "werkzeug", "apache_beam", "great_expectations"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
