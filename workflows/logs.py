"""The one logging setup of every Signoff process: JSON lines or human-readable text
(`SIGNOFF_LOG_FORMAT`), and the context each line carries.

A JSON line is one event: `time`, `level`, `logger`, `message`, and, when known, `request_id`
(the API call being served), `workflow_id` (the request's workflow, from the API's context or
from Temporal's activity and workflow loggers), `trace_id` and `span_id` (when tracing is on),
and `exception`. Nothing else from the record is copied, so an `extra=` never smuggles a body
or a header into the log.

What never reaches a log line: a token, a secret, an `Authorization` header, a webhook body.
Code does not log them (the settings keep secrets out of `repr`, webhook bodies are kept in the
ledger only); as a second line of defence every message and traceback is scrubbed of what
looks like a JWT, a bearer or basic credential, a Standard Webhooks secret or signature, and a
`secret=`/`token=`/`password=` value before it is written.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Literal

from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)

LogFormat = Literal["json", "text"]

_CONTEXT: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "signoff_log_context", default=None
)
"""The context of what is being served: one mutable dict per API call (so a workflow id bound
deep in a handler is seen by the access line the middleware writes after it)."""


@contextmanager
def log_context(**fields: str) -> Iterator[dict[str, str]]:
    """Bind `fields` (request_id, workflow_id) to every line logged inside the block."""
    parent = _CONTEXT.get() or {}
    token = _CONTEXT.set(parent | fields)
    try:
        yield _CONTEXT.get() or {}
    finally:
        _CONTEXT.reset(token)


def bind_workflow(workflow_id: str) -> None:
    """Say which workflow the current API call acts on (a no-op outside a `log_context`)."""
    context = _CONTEXT.get()
    if context is not None:
        context["workflow_id"] = workflow_id


def current_context() -> dict[str, str]:
    return dict(_CONTEXT.get() or {})


_REDACTIONS = [
    # A JWT (three base64url parts, the first an encoded JSON header).
    (re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*"), "[redacted jwt]"),
    (re.compile(r"(?i)\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 [redacted]"),
    (re.compile(r"whsec_[A-Za-z0-9+/=]+"), "whsec_[redacted]"),
    (re.compile(r"\bv1,[A-Za-z0-9+/=]{20,}"), "v1,[redacted]"),
    (
        re.compile(
            r"(?i)\b(authorization|secret|token|password|api[_-]?key|signature)"
            r"(['\"]?\s*[:=]\s*['\"]?)[^\s'\",&}]+"
        ),
        r"\1\2[redacted]",
    ),
]


def scrub(text: str) -> str:
    """`text` without anything that looks like a credential."""
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


def _temporal_workflow_id(record: logging.LogRecord) -> str | None:
    """The workflow id Temporal's activity and workflow loggers attach as `extra`."""
    for attribute in ("temporal_activity", "temporal_workflow"):
        details = getattr(record, attribute, None)
        if isinstance(details, dict) and details.get("workflow_id"):
            return str(details["workflow_id"])
    return None


def _trace_fields() -> dict[str, str]:
    try:
        from opentelemetry import trace
    except ImportError:  # pragma: no cover (a dependency; absent only in odd installs)
        return {}
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return {}
    return {
        "trace_id": format(span_context.trace_id, "032x"),
        "span_id": format(span_context.span_id, "016x"),
    }


def event_fields(record: logging.LogRecord) -> dict[str, Any]:
    """What one log line says, scrubbed, in the order it is written."""
    fields: dict[str, Any] = {
        "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
        "level": record.levelname,
        "logger": record.name,
        "message": scrub(record.getMessage()),
    }
    context = current_context()
    workflow_id = _temporal_workflow_id(record) or getattr(record, "workflow_id", None)
    if workflow_id:
        context.setdefault("workflow_id", str(workflow_id))
    fields |= {key: scrub(value) for key, value in context.items()}
    fields |= _trace_fields()
    if record.exc_info:
        fields["exception"] = scrub(logging.Formatter().formatException(record.exc_info))
    return fields


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(event_fields(record), ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """`2026-01-01T12:00:00.000+00:00 INFO api.access: POST … 200 [request_id=…]`."""

    def format(self, record: logging.LogRecord) -> str:
        fields = event_fields(record)
        head = f"{fields.pop('time')} {fields.pop('level')} {fields.pop('logger')}: "
        line = head + fields.pop("message")
        exception = fields.pop("exception", None)
        fields.pop("span_id", None)
        if fields:
            line += " [" + " ".join(f"{key}={value}" for key, value in fields.items()) + "]"
        return f"{line}\n{exception}" if exception else line


QUIET_LOGGERS = ("httpx", "httpcore", "uvicorn.access", "alembic")
"""Libraries whose INFO lines are per call (httpx logs each request's full URL) or noise."""


def configure_logging(log_format: LogFormat, level: int = logging.INFO) -> None:
    """Send every logger's lines to stderr as `log_format`; called once by each process's
    entry point (`signoff api`, `signoff worker`, `signoff dev`)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)  # Python's warnings are log lines too, in the same format
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        # uvicorn's own handlers would write plain text beside ours: propagate to the root.
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    _forward_temporal_core_logs()


def _forward_temporal_core_logs() -> None:
    """The Temporal SDK's core (Rust) writes its warnings straight to stderr in a format of its
    own; send them through Python's logging instead (before any client is made)."""
    forwarding = LogForwardingConfig(logger=logging.getLogger("temporalio.core"))
    filter_ = TelemetryFilter(core_level="WARN", other_level="ERROR")  # the SDK's default
    telemetry = TelemetryConfig(logging=LoggingConfig(filter=filter_, forwarding=forwarding))
    Runtime.set_default(Runtime(telemetry=telemetry), error_if_already_set=False)
