"""Structured logging that never writes patient identifiers."""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

import structlog
from flask import Flask

# Keys that can carry patient identifiers or clinical data; their values never reach a log.
REDACTED_KEYS = frozenset(
    {
        "patient",
        "patient_id",
        "external_id",
        "birth_date",
        "weight_kg",
        "diagnosis_codes",
        "diagnoses",
        "authorization_number",
        "number",
        "claim_reference",
        "email",
        "password",
        "token",
    }
)


def redact_phi(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: replace the value of every identifying key with ``[redacted]``."""
    for key in list(event):
        if key in REDACTED_KEYS:
            event[key] = "[redacted]"
    return event


def init_logging(app: Flask) -> None:
    """Configure structlog once: JSON lines, PHI redacted."""
    if structlog.is_configured():
        return
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            redact_phi,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.DEBUG if app.debug else logging.INFO
        ),
        cache_logger_on_first_use=True,
    )


def get_logger(name: str) -> Any:
    """Return a structlog logger for ``name``."""
    return structlog.get_logger(name)
