"""Schemas of /api/v1/appointments and the authorization forecast (docs/contract.md)."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, post_load, validate

from policy_service.domain.requests import CHECK_DECISIONS, AppointmentInput, Filters
from policy_service.models import APPOINTMENT_STATUSES, DRUG_SUPPLIES, SITES_OF_CARE
from policy_service.schemas.bundle import HcpcsCode, IcdCode, Npi
from policy_service.schemas.common import PackageCountSchema, StrictSchema
from policy_service.schemas.eligibility import DoseSchema
from policy_service.schemas.fields import QueryInteger

# A prefix leaves room for "-200" within the 64 characters of an id.
SERIES_PREFIX = validate.Regexp(r"^[A-Za-z0-9._-]{1,56}$",
                                error="Use 1 to 56 letters, digits, '.', '_' or '-'.")


class AppointmentPatientSchema(StrictSchema):
    """The stored patient, by the practice's id: the standing check reads their stored record,
    so a correction to it reaches every appointment."""

    id = fields.String(required=True, validate=validate.Length(min=1, max=64))


class AppointmentSchema(StrictSchema):
    """One planned infusion: the fields of an eligibility request about a stored patient."""

    patient = fields.Nested(AppointmentPatientSchema, required=True)
    payer = fields.String(required=True, validate=validate.Length(min=1, max=40))
    date_of_service = fields.Date(required=True)
    hcpcs = HcpcsCode(required=True)
    dose = fields.Nested(DoseSchema, required=True)
    site_of_care = fields.String(allow_none=True, validate=validate.OneOf(SITES_OF_CARE))
    diagnosis_codes = fields.List(IcdCode(), load_default=list,
                                  validate=validate.Length(max=12))
    packages = fields.List(fields.Nested(PackageCountSchema), load_default=list,
                           validate=validate.Length(max=20))
    authorization_number = fields.String(allow_none=True,
                                         validate=validate.Length(min=1, max=64))
    drug_supply = fields.String(load_default="buy_and_bill", validate=validate.OneOf(
        DRUG_SUPPLIES, error="Must be one of: {choices}."), metadata={
        "description": "buy_and_bill (default) or specialty_pharmacy (the practice bills the "
                       "administration only)."})
    rendering_npi = Npi(allow_none=True, metadata={
        "description": "NPI of the provider who will give the infusion; checked for "
                       "enrollment with the payer on the date."})

    @post_load
    def to_input(self, data: dict[str, Any], **_: Any) -> AppointmentInput:
        """Build the service's input object."""
        return AppointmentInput(
            patient_id=data["patient"]["id"], payer=data["payer"],
            date_of_service=data["date_of_service"], hcpcs=data["hcpcs"],
            dose_mg=data["dose"].get("mg"), dose_mg_per_kg=data["dose"].get("mg_per_kg"),
            site_of_care=data.get("site_of_care"),
            diagnosis_codes=list(data["diagnosis_codes"]),
            packages=[(p["amount"], p["count"]) for p in data["packages"]],
            authorization_number=data.get("authorization_number"),
            drug_supply=data["drug_supply"],
            rendering_npi=data.get("rendering_npi"),
        )


# One instance for every load (no per-load state; building one costs more than a load).
_APPOINTMENT_SCHEMA = AppointmentSchema()


def load_appointment(item: Any) -> AppointmentInput:
    """Load one appointment body or raise ValidationError naming its bad fields."""
    if not isinstance(item, dict):
        raise ValidationError({"(item)": ["Expected an object."]})
    return _APPOINTMENT_SCHEMA.load(item)


class SeriesSchema(StrictSchema):
    """A recurring course: ``first`` again every ``every_days`` until ``until``."""

    appointment_id_prefix = fields.String(required=True, validate=SERIES_PREFIX)
    first = fields.Nested(AppointmentSchema, required=True)
    every_days = fields.Integer(required=True, validate=validate.Range(min=1, max=365))
    until = fields.Date(required=True)


class ListArgs(StrictSchema):
    """Filters and pagination of the appointment list."""

    date_from = fields.Date(data_key="from")
    date_to = fields.Date(data_key="to")
    decision = fields.String(validate=validate.OneOf(CHECK_DECISIONS))
    payer = fields.String(validate=validate.Length(max=40))
    drug = fields.String(validate=validate.Length(max=5))
    authorization = fields.String(validate=validate.Length(max=64))
    patient = fields.String(validate=validate.Length(max=64))
    status = fields.String(load_default="scheduled",
                           validate=validate.OneOf([*APPOINTMENT_STATUSES, "all"]))
    # Bounded: a page number of 40 digits overflowed the SQL offset (a 500).
    page = QueryInteger(load_default=1, minimum=1, maximum=10_000)
    per_page = QueryInteger(load_default=500, minimum=1, maximum=5000)

    @post_load
    def to_filters(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        """Split the filters from the page."""
        status = data.get("status")
        filters = Filters(
            date_from=data.get("date_from"), date_to=data.get("date_to"),
            decision=data.get("decision"), payer=data.get("payer"), hcpcs=data.get("drug"),
            authorization=data.get("authorization"), patient=data.get("patient"),
            status=None if status == "all" else status)
        return {"filters": filters, "page": data["page"], "per_page": data["per_page"]}


class ForecastArgs(StrictSchema):
    """From which day the forecast counts appointments (default today)."""

    date_from = fields.Date(data_key="from")
