"""POST /api/v1/claims/check."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from policy_service.auth import Permission, token_required
from policy_service.domain.requests import Claim
from policy_service.schemas.claims import ClaimRequestSchema, ClaimResponseSchema
from policy_service.services.claims import check_claim

blp = Blueprint("claims", __name__, url_prefix="/claims",
                description="Does this claim match its authorization and the coding rules?")


@blp.route("/check", methods=["POST"])
@token_required(Permission.CHECK_CLAIMS)
@blp.arguments(ClaimRequestSchema())
@blp.response(200, ClaimResponseSchema)
def check(claim: Claim) -> dict[str, Any]:
    """Check one claim: findings per line and the lines the administration facts support."""
    return check_claim(claim)
