"""POST /api/v1/eligibility and /api/v1/eligibility/batch."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from policy_service.auth import Permission, token_required
from policy_service.domain.requests import EligibilityRequest
from policy_service.errors import Invalid
from policy_service.schemas.eligibility import (
    BatchRequestSchema,
    BatchResponseSchema,
    EligibilityRequestSchema,
    EligibilityResponseSchema,
    load_request,
)
from policy_service.services.eligibility import check_batch

blp = Blueprint("eligibility", __name__, url_prefix="/eligibility",
                description="Can this planned infusion go ahead?")


@blp.route("", methods=["POST"])
@token_required(Permission.CHECK_ELIGIBILITY)
@blp.arguments(EligibilityRequestSchema())
# Documented, not dumped: the result is already the response in plain JSON values, exactly as
# EligibilityResponseSchema would dump it (tests hold the two equal for every finding code).
# A schema dump cost as much as the check's own reads.
@blp.alt_response(200, schema=EligibilityResponseSchema, description="OK", success=True)
def check(request: EligibilityRequest) -> dict[str, Any]:
    """Check one planned treatment: decision, findings, billing lines, authorization."""
    result = check_batch([request])[0]
    if isinstance(result, Invalid):
        raise result
    return result


@blp.route("/batch", methods=["POST"])
@token_required(Permission.CHECK_ELIGIBILITY)
@blp.arguments(BatchRequestSchema())
@blp.response(200, BatchResponseSchema)
def check_many(body: dict[str, Any]) -> dict[str, Any]:
    """Check a whole schedule; results come back in order, a bad item as its own problem."""
    results = check_batch([load_request(item) for item in body["items"]])
    return {"results": [r.problem() if isinstance(r, Invalid) else r for r in results]}
