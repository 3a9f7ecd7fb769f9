"""Reason code records, remittance results and denials as the API and the seed file show them."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from policy_service.models.remittance import ADJUSTMENT_GROUPS, CLAIM_OUTCOMES, REASON_CODE_KINDS
from policy_service.schemas.common import StrictSchema

REASON_CODE = validate.Regexp(r"^[A-Z0-9]{1,10}$", error="Use 1 to 10 capital letters or digits.")


class ReasonCodeSchema(StrictSchema):
    """One CARC or RARC of seed_data/codes/reason_codes.yaml."""

    kind = fields.String(required=True, validate=validate.OneOf(REASON_CODE_KINDS))
    code = fields.String(required=True, validate=REASON_CODE)
    description = fields.String(required=True, validate=validate.Length(min=1, max=500))
    source = fields.String(required=True, validate=validate.Length(min=1, max=500))
    denial = fields.Boolean(required=True)
    preventable_by = fields.List(fields.String(), required=True)
    why = fields.String(required=True, validate=validate.Length(min=1, max=1000))


class ReasonCodeFileSchema(StrictSchema):
    """The reason code seed file."""

    reason_codes = fields.List(fields.Nested(ReasonCodeSchema), required=True)


class DenialsQuerySchema(StrictSchema):
    """Filters of GET /api/v1/denials."""

    payer = fields.String(validate=validate.Length(min=1, max=40))
    from_ = fields.Date(data_key="from")
    to = fields.Date()
    group = fields.String(validate=validate.OneOf(ADJUSTMENT_GROUPS))
    carc = fields.String(validate=REASON_CODE)
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=100_000))
    per_page = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))


class DenialSchema(Schema):
    """One denial as the API shows it."""

    id = fields.Integer()
    claim_reference = fields.String()
    payer = fields.String()
    group = fields.String()
    carc = fields.String()
    rarc = fields.String(allow_none=True)
    rarcs = fields.List(fields.String())
    description = fields.String()
    rarc_descriptions = fields.Dict(keys=fields.String(), values=fields.String())
    amount = fields.Decimal(as_string=True)
    service_code = fields.String(allow_none=True)
    date_of_service = fields.Date(allow_none=True)
    adjudicated_on = fields.Date()
    authorization = fields.String(allow_none=True)
    appeal_due = fields.Date(allow_none=True)
    preventable_by = fields.List(fields.String())


class DenialListSchema(Schema):
    """A page of denials."""

    items = fields.List(fields.Nested(DenialSchema))
    total = fields.Integer()
    page = fields.Integer()
    per_page = fields.Integer()


class ClaimResultSchema(Schema):
    """What importing one claim payment (CLP) did."""

    claim_reference = fields.String()
    outcome = fields.String(validate=validate.OneOf(CLAIM_OUTCOMES))
    status_code = fields.String()
    charged = fields.Decimal(as_string=True)
    paid = fields.Decimal(as_string=True)
    authorization = fields.String(allow_none=True)
    units_recorded = fields.Integer()
    visits_recorded = fields.Integer()
    usage_voided = fields.Boolean()
    usage_problem = fields.String(allow_none=True)
    denials = fields.List(fields.Nested(DenialSchema))


class RemittanceResultSchema(Schema):
    """What importing one 835 did (or, for a repeat, what the first import did)."""

    payer = fields.String()
    trace_number = fields.String()
    paid_on = fields.Date(allow_none=True)
    adjudicated_on = fields.Date()
    total_paid = fields.Decimal(as_string=True)
    already_imported = fields.Boolean()
    imported_at = fields.DateTime()
    imported_by = fields.String()
    claims = fields.List(fields.Nested(ClaimResultSchema))
