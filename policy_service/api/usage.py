"""POST /api/v1/authorizations/{number}/usage and DELETE .../usage/{claim_reference}."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask_smorest import Blueprint
from marshmallow import fields, validate

from policy_service.audit import current_actor
from policy_service.auth import Permission, token_required
from policy_service.database import run_serialized
from policy_service.models import Authorization
from policy_service.schemas.common import StrictSchema
from policy_service.schemas.fields import BoundedDate, StrictInteger
from policy_service.services.usage import (
    CLAIM_REFERENCE,
    CLAIM_REFERENCE_RULE,
    record_usage,
    void_usage,
)

blp = Blueprint("usage", __name__, url_prefix="/authorizations",
                description="Units and visits paid claims draw from an authorization.")


class UsageSchema(StrictSchema):
    """What one claim used."""

    claim_reference = fields.String(required=True, validate=validate.Regexp(
        CLAIM_REFERENCE, error=CLAIM_REFERENCE_RULE))
    date_of_service = BoundedDate(required=True)
    units = StrictInteger(required=True, minimum=0, maximum=100_000)
    visits = StrictInteger(load_default=1, minimum=0, maximum=1000)


def totals(auth: Authorization) -> dict[str, Any]:
    """The authorization's use and what remains."""
    return {"number": auth.number, "used_units": auth.used_units,
            "used_visits": auth.used_visits, "remaining_units": auth.remaining_units,
            "remaining_visits": auth.remaining_visits}


@blp.route("/<number>/usage", methods=["POST"])
@token_required(Permission.RECORD_USAGE)
@blp.arguments(UsageSchema())
def record(body: dict[str, Any], number: str) -> tuple[dict[str, Any], int]:
    """Record what a claim used: 201 when recorded, 200 when this claim was already recorded."""
    actor = current_actor()
    day: dt.date = body["date_of_service"]
    result = run_serialized(lambda: record_usage(number, body["claim_reference"], day,
                                                 body["units"], body["visits"], actor))
    payload = {**totals(result.authorization), "claim_reference": body["claim_reference"],
               "recorded": result.created}
    return payload, 201 if result.created else 200


@blp.route("/<number>/usage/<claim_reference>", methods=["DELETE"])
@token_required(Permission.RECORD_USAGE)
def void(number: str, claim_reference: str) -> dict[str, Any]:
    """Void one recorded use and give its units and visit back."""
    actor = current_actor()
    auth = run_serialized(lambda: void_usage(number, claim_reference, actor))
    return totals(auth)
