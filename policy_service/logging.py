"""Structured logging (JSON lines through the standard library) that never writes patient
identifiers: the values of identifying keys are replaced before rendering, and SQL parameters
are hidden from database errors (``hide_parameters`` on the engine)."""

from __future__ import annotations

import logging
import sys
import time
import traceback
from collections.abc import MutableMapping
from typing import Any

import structlog
from flask import Flask, Response, g, request

# Keys that can carry patient identifiers or clinical data; their values never reach a log.
REDACTED_KEYS = frozenset({
    "patient", "patient_id", "external_id", "birth_date", "weight_kg", "diagnosis_codes",
    "diagnoses", "authorization_number", "number", "claim_reference", "email", "password",
    "token",
})
LOGGER_NAME = "policy_service"


def redact_phi(_logger: Any, _method: str,
               event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: replace the value of every identifying key with ``[redacted]``."""
    for key in list(event):
        if key in REDACTED_KEYS:
            event[key] = "[redacted]"
    return event


class ScrubbedExceptions(logging.Filter):
    """Replace a record's exception (its message may carry data) with its safe stack."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep the record, with the exception's frames and types but not its message."""
        if record.exc_info and record.exc_info[1] is not None:
            record.msg = f"{record.getMessage()}\n{safe_traceback(record.exc_info[1])}"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


# Libraries that log exceptions themselves (Flask-Admin logs failed saves with the database's
# message, which on PostgreSQL repeats the offending values).
SCRUBBED_LOGGERS = ("flask-admin", "flask-admin.sqla", "flask_admin")


def init_logging(app: Flask) -> None:
    """Configure structlog once: JSON lines on stderr via the ``policy_service`` logger."""
    if not structlog.is_configured():
        structlog.configure(
            processors=[
                structlog.contextvars.merge_contextvars,
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso"),
                redact_phi,
                structlog.processors.JSONRenderer(),
            ],
            logger_factory=structlog.stdlib.LoggerFactory(),
            wrapper_class=structlog.stdlib.BoundLogger,
            cache_logger_on_first_use=True,
        )
    base = logging.getLogger(LOGGER_NAME)
    if not base.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        base.addHandler(handler)
    base.setLevel(logging.DEBUG if app.debug else app.config.get("LOG_LEVEL", "INFO"))
    for name in SCRUBBED_LOGGERS:
        library = logging.getLogger(name)
        if not any(isinstance(f, ScrubbedExceptions) for f in library.filters):
            library.addFilter(ScrubbedExceptions())


def safe_traceback(exc: BaseException) -> str:
    """The stack of an error and its causes, without their messages.

    Messages can carry data: PostgreSQL's DETAIL repeats the offending key ("Key
    (external_id)=(P001) already exists"), a KeyError names the missing key. Frames and types
    are enough to find the bug; the values stay out of the log.
    """
    blocks: list[str] = []
    current: BaseException | None = exc
    while current is not None:
        statement = getattr(current, "statement", None)
        label = f"{type(current).__module__}.{type(current).__qualname__}"
        if statement:
            label += f" while running: {statement}"
        blocks.append("".join(traceback.format_tb(current.__traceback__)) + label)
        current = current.__cause__ or current.__context__
    # Oldest cause first, as Python prints a chained traceback.
    return "\n\n".join(reversed(blocks))


def init_request_log(app: Flask) -> None:
    """Log every request by its route pattern (``/api/v1/authorizations/<number>``), status
    and duration; never the concrete path, query string or body, which can identify a patient."""
    log = get_logger("requests")

    @app.before_request
    def start_timer() -> None:
        g.request_started = time.perf_counter()

    @app.after_request
    def log_request(response: Response) -> Response:
        started = g.pop("request_started", None)
        log.info("request", method=request.method,
                 route=str(request.url_rule) if request.url_rule else "(no route)",
                 status=response.status_code,
                 ms=round((time.perf_counter() - started) * 1000, 2) if started else None)
        return response


def get_logger(name: str = LOGGER_NAME) -> Any:
    """Return a structlog logger writing under ``policy_service``."""
    if not name.startswith(LOGGER_NAME):
        name = f"{LOGGER_NAME}.{name}"
    return structlog.get_logger(name)
