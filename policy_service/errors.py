"""Domain errors and their one mapping to application/problem+json (RFC 9457)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from flask import Flask, Response, json, request
from werkzeug.exceptions import HTTPException

from policy_service.logging import get_logger, safe_traceback

PROBLEM_MIMETYPE = "application/problem+json"


def problem_type(code: str) -> str:
    """The problem type URI of a stable error code."""
    return f"https://policy-service.local/problems/{code.lower().replace('_', '-')}"


class DomainError(Exception):
    """Base of every error a service raises; carries a stable machine-readable code."""

    status = 400
    code = "BAD_REQUEST"
    title = "Bad request"

    def __init__(self, detail: str, *, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if code:
            self.code = code

    def problem(self) -> dict[str, Any]:
        """Return the problem+json body for this error."""
        return {
            "type": problem_type(self.code),
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }


class NotFound(DomainError):
    status = 404
    code = "NOT_FOUND"
    title = "Not found"


class Conflict(DomainError):
    status = 409
    code = "CONFLICT"
    title = "Conflict"


class StaleRecord(DomainError):
    """The If-Match sent names an older state of the record than the stored one."""

    status = 412
    code = "STALE_RECORD"
    title = "Precondition failed"


class PreconditionRequired(DomainError):
    """A write that must name the state it changes (If-Match) came without it."""

    status = 428
    code = "PRECONDITION_REQUIRED"
    title = "Precondition required"


class Forbidden(DomainError):
    status = 403
    code = "FORBIDDEN"
    title = "Forbidden"


class Unauthorized(DomainError):
    status = 401
    code = "UNAUTHORIZED"
    title = "Authentication required"


class Invalid(DomainError):
    """Input failed validation; ``errors`` maps each bad field's path to its messages."""

    status = 422
    code = "VALIDATION_FAILED"
    title = "Validation failed"

    def __init__(self, errors: Mapping[str, Iterable[str]] | list[dict[str, str]],
                 detail: str | None = None) -> None:
        self.errors = normalise_errors(errors)
        fields = ", ".join(dict.fromkeys(e["field"] for e in self.errors))
        super().__init__(detail or f"Invalid input: {fields}")

    def problem(self) -> dict[str, Any]:
        body = super().problem()
        body["errors"] = self.errors
        return body

    def lines(self) -> list[str]:
        """Return one human-readable line per bad field, for the command line."""
        return [f"{e['field']}: {e['message']}" for e in self.errors]


def normalise_errors(errors: Mapping[str, Any] | list[dict[str, str]]) -> list[dict[str, str]]:
    """Flatten marshmallow-style nested messages into ``[{"field", "message"}]``."""
    if isinstance(errors, list):
        return errors
    flat: list[dict[str, str]] = []
    _flatten(errors, "", flat)
    return flat


def _join(prefix: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    if key == "_schema":
        return prefix or "(body)"
    return f"{prefix}.{key}" if prefix else str(key)


def _flatten(messages: Any, prefix: str, out: list[dict[str, str]]) -> None:
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            _flatten(value, _join(prefix, key), out)
    elif isinstance(messages, (list, tuple)):
        if all(isinstance(m, str) for m in messages):
            for message in messages:
                out.append({"field": prefix or "(body)", "message": message})
        else:
            for message in messages:
                _flatten(message, prefix, out)
    else:
        out.append({"field": prefix or "(body)", "message": str(messages)})


def problem_response(body: dict[str, Any]) -> Response:
    """Return ``body`` as an application/problem+json response."""
    return Response(json.dumps(body), status=body["status"], mimetype=PROBLEM_MIMETYPE)


def http_problem(exc: HTTPException) -> dict[str, Any]:
    """Return the problem+json body for an HTTP error (validation messages become errors)."""
    status = exc.code or 500
    code = getattr(exc, "problem_code", None) or (exc.name or "error").upper().replace(" ", "_")
    body: dict[str, Any] = {
        "type": problem_type(code) if getattr(exc, "problem_code", None) else "about:blank",
        "title": exc.name,
        "status": status,
        "detail": exc.description,
        "code": code,
    }
    # webargs (via flask-smorest) attaches the marshmallow messages of a rejected body here.
    data = getattr(exc, "data", None)
    if status == 422 and data and "messages" in data:
        messages = data["messages"]
        if isinstance(messages, Mapping) and set(messages) <= {"json", "query", "form", "files"}:
            messages = {k: v for part in messages.values() for k, v in part.items()}
        body["code"] = "VALIDATION_FAILED"
        body["type"] = problem_type("VALIDATION_FAILED")
        body["title"] = "Validation failed"
        body["errors"] = normalise_errors(messages)
        fields = ", ".join(dict.fromkeys(e["field"] for e in body["errors"]))
        body["detail"] = f"Invalid input: {fields}"
    return body


def wants_problem() -> bool:
    """Return whether the current request is an API request (answers in problem+json)."""
    return request.path.startswith("/api/")


def init_errors(app: Flask) -> None:
    """Register the handlers that turn errors into problem+json on the API."""

    @app.errorhandler(DomainError)
    def handle_domain_error(exc: DomainError) -> Response | tuple[str, int]:
        if wants_problem():
            return problem_response(exc.problem())
        return exc.detail, exc.status

    @app.errorhandler(HTTPException)
    def handle_http_error(exc: HTTPException) -> Response | HTTPException:
        if wants_problem():
            return problem_response(http_problem(exc))
        return exc

    @app.errorhandler(Exception)
    def handle_unexpected(exc: Exception) -> Response | tuple[str, int]:
        get_logger("errors").error("unhandled_error", method=request.method,
                                   route=str(request.url_rule), error=type(exc).__name__,
                                   stack=safe_traceback(exc))
        body = {
            "type": "about:blank",
            "title": "Internal server error",
            "status": 500,
            "detail": "The service could not complete this request; it has been logged.",
            "code": "INTERNAL_ERROR",
        }
        if wants_problem():
            return problem_response(body)
        return body["detail"], 500
