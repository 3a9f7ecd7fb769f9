"""Read endpoints for providers: NPI, name, specialty and payer enrollments (bundle shape)."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from marshmallow import RAISE, fields, validate
from sqlalchemy import func, select

from policy_service.api.reference import PageArgs, _page
from policy_service.auth import Permission, token_required
from policy_service.models import Payer, Provider, ProviderEnrollment
from policy_service.schemas.bundle import ProviderSchema, normalise_specialty
from policy_service.schemas.fields import BoundedDate
from policy_service.services.providers import get_provider, provider_query, provider_record

blp = Blueprint("providers", __name__, url_prefix="",
                description="Providers and their payer enrollments (read-only).")


class ProviderArgs(PageArgs):
    specialty = fields.String(validate=validate.Length(min=1, max=100))
    payer = fields.String(validate=validate.Length(min=1, max=40), metadata={
        "description": "Only providers with an enrollment with this payer."})
    enrolled_on = BoundedDate(metadata={
        "description": "With payer: only providers enrolled with it on this date."})


# One dump schema for every row and request (building one costs more than the dump).
PROVIDER_SCHEMA = ProviderSchema()


def _item(provider: Provider) -> dict[str, Any]:
    return PROVIDER_SCHEMA.dump(provider_record(provider))


@blp.route("/providers", methods=["GET"])
@token_required(Permission.READ)
@blp.arguments(ProviderArgs, location="query", unknown=RAISE)
def list_providers(args: dict[str, Any]) -> dict[str, Any]:
    """List providers with their specialty and enrollments."""
    query = provider_query()
    if "specialty" in args:
        query = query.where(func.lower(Provider.specialty)
                            == normalise_specialty(args["specialty"]))
    if "payer" in args or "enrolled_on" in args:
        enrolled = select(ProviderEnrollment.provider_id).join(ProviderEnrollment.payer)
        if "payer" in args:
            enrolled = enrolled.where(Payer.code == args["payer"])
        if "enrolled_on" in args:
            day = args["enrolled_on"]
            enrolled = enrolled.where(ProviderEnrollment.effective_from <= day,
                                      ProviderEnrollment.effective_to.is_(None)
                                      | (ProviderEnrollment.effective_to >= day))
        query = query.where(Provider.id.in_(enrolled))
    return _page(query, args, _item)


@blp.route("/providers/<npi>", methods=["GET"])
@token_required(Permission.READ)
def get_provider_by_npi(npi: str) -> dict[str, Any]:
    """One provider by NPI."""
    return _item(get_provider(npi))

