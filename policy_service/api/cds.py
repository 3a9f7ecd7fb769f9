"""CDS Hooks endpoints for EHRs: GET /cds-services (discovery) and POST /cds-services/{id}.

Not under /api/v1: CDS Hooks fixes these paths, and callers prove who they are with a JWT
signed by their own key (see the README), not with one of our API tokens.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from policy_service.errors import DomainError, NotFound, http_problem, problem_response
from policy_service.extensions import db
from policy_service.logging import get_logger, safe_traceback
from policy_service.services.cds.hooks import SERVICES, answer_hook, discovery
from policy_service.services.cds.security import (
    CdsClient,
    ClientsFileError,
    load_clients,
    verify_caller,
)

bp = Blueprint("cds", __name__, url_prefix="/cds-services")
log = get_logger("cds")


def _clients() -> dict[str, CdsClient]:
    try:
        return load_clients(current_app.config.get("CDS_CLIENTS_FILE"))
    except ClientsFileError as exc:
        # A broken file lets nobody in; the operator reads why in the log.
        log.error("cds_clients_file_unusable", reason=str(exc))
        return {}


def _audience(service_id: str) -> str:
    """The service URL a token must be addressed to, as the EHR sees us (behind a balancer)."""
    base = current_app.config.get("CDS_BASE_URL") or request.url_root
    return f"{base.rstrip('/')}/cds-services/{service_id}"


@bp.get("")
def discover() -> Response:
    """The services we offer, their prefetch templates and CRD configuration options."""
    return jsonify(discovery())


@bp.post("/<service_id>")
def call_service(service_id: str) -> Response:
    """Answer one hook call: 401 without a valid JWT, 400 for a malformed body, else 200."""
    if service_id not in SERVICES:
        raise NotFound(f"There is no CDS service {service_id!r}; see GET /cds-services.")
    caller = verify_caller(request.headers.get("Authorization"), _audience(service_id),
                           _clients())
    # The token's jti is spent whatever the body holds.
    db.session.commit()
    body = request.get_json(silent=True)
    answer = answer_hook(service_id, body, caller.client,
                         current_app.config.get("CDS_PATIENT_IDENTIFIER_SYSTEM") or "")
    return jsonify(answer)


@bp.errorhandler(DomainError)
def domain_error(exc: DomainError) -> Response:
    """400, 401 and 404 as problem+json."""
    db.session.rollback()
    return problem_response(exc.problem())


@bp.errorhandler(HTTPException)
def http_error(exc: HTTPException) -> Response:
    """A request refused before the view (too large, nested too deep, NUL bytes...) is the
    caller's error: its 4xx as problem+json, not the could-not-check card below."""
    db.session.rollback()
    return problem_response(http_problem(exc))


@bp.errorhandler(Exception)
def unexpected_error(exc: Exception) -> tuple[Response, int] | Any:
    """Never a 5xx to the EHR: say coverage could not be checked, and log why (no PHI)."""
    db.session.rollback()
    log.error("cds_unhandled_error", error=type(exc).__name__, stack=safe_traceback(exc))
    return jsonify({"cards": [{
        "summary": "Coverage could not be checked just now",
        "indicator": "info",
        "detail": "The payer policy service could not evaluate this request; it has been "
                  "logged. Check coverage in the policy service directly.",
        "source": {"label": "Payer policy service"}}], "systemActions": []}), 200
