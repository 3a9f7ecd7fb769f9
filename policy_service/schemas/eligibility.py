"""Request and response schemas of POST /api/v1/eligibility (docs/contract.md)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from marshmallow import (
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates_schema,
)

from policy_service.domain.documentation import DocumentOnFile, DocumentStatus
from policy_service.domain.requests import EligibilityRequest, TherapyFact
from policy_service.errors import Invalid
from policy_service.models import DRUG_SUPPLIES, SITES_OF_CARE, THERAPY_OUTCOMES
from policy_service.schemas.bundle import DocumentOnFileSchema, HcpcsCode, IcdCode, Npi
from policy_service.schemas.common import (
    MAX_BATCH_ITEMS,
    MAX_LIST_ITEMS,
    PackageCountSchema,
    PatientRefSchema,
    StrictSchema,
    dose_mg,
    dose_mg_per_kg,
)
from policy_service.schemas.fields import BoundedDate
from rulesets.vocabulary import Category, Decision, Severity


class DoseSchema(StrictSchema):
    mg = dose_mg()
    mg_per_kg = dose_mg_per_kg()

    @validates_schema
    def exactly_one(self, data: dict[str, Any], **_: Any) -> None:
        """A dose is given in mg or in mg/kg, not both and not neither."""
        if ("mg" in data) == ("mg_per_kg" in data):
            raise ValidationError("Give the dose as exactly one of mg or mg_per_kg.", "mg")


class TherapySchema(StrictSchema):
    drug = fields.String(required=True, validate=validate.Length(min=1, max=100))
    start = BoundedDate(required=True)
    end = BoundedDate(allow_none=True)
    outcome = fields.String(allow_none=True, validate=validate.OneOf(THERAPY_OUTCOMES))

    @validates_schema
    def ends_after_start(self, data: dict[str, Any], **_: Any) -> None:
        """A therapy cannot end before it starts."""
        if data.get("end") and data["end"] < data["start"]:
            raise ValidationError("Ends before it starts.", "end")


class EligibilityRequestSchema(StrictSchema):
    """One planned treatment."""

    patient = fields.Nested(PatientRefSchema, required=True)
    payer = fields.String(required=True, validate=validate.Length(min=1, max=40))
    date_of_service = BoundedDate(required=True)
    site_of_care = fields.String(validate=validate.OneOf(SITES_OF_CARE))
    diagnosis_codes = fields.List(IcdCode(), load_default=list,
                                  validate=validate.Length(max=MAX_LIST_ITEMS))
    hcpcs = HcpcsCode(required=True)
    dose = fields.Nested(DoseSchema, required=True)
    packages = fields.List(fields.Nested(PackageCountSchema),
                           validate=validate.Length(max=MAX_LIST_ITEMS))
    prior_therapies = fields.List(fields.Nested(TherapySchema), load_default=list,
                                  validate=validate.Length(max=MAX_LIST_ITEMS))
    authorization_number = fields.String(validate=validate.Length(min=1, max=64))
    last_dose_date = BoundedDate(metadata={"description": "Date of the previous dose, if known "
                                                          "and not recorded as authorization use."})
    documentation_on_file = fields.List(
        fields.Nested(DocumentOnFileSchema), load_default=list,
        validate=validate.Length(max=MAX_LIST_ITEMS),
        metadata={"description": "Documents on file ({code, date}), added to the patient's "
                                 "stored ones for the documentation checklist."})
    drug_supply = fields.String(load_default="buy_and_bill", validate=validate.OneOf(
        DRUG_SUPPLIES, error="Must be one of: {choices}."), metadata={
        "description": "buy_and_bill (default): the practice buys and bills the drug; "
                       "specialty_pharmacy: a pharmacy dispenses it, the practice bills the "
                       "administration only."})
    rendering_npi = Npi(metadata={"description": "NPI of the provider giving the infusion; "
                                                 "checked for enrollment with the payer."})
    ordering_npi = Npi(metadata={"description": "NPI of the prescriber when not the rendering "
                                                "provider; checked against the policy's "
                                                "prescriber specialties."})

    @post_load
    def to_request(self, data: dict[str, Any], **_: Any) -> EligibilityRequest:
        """Build the service's request object."""
        patient = data["patient"]
        return EligibilityRequest(
            patient_id=patient["id"],
            birth_date=patient.get("birth_date"),
            weight_kg=patient.get("weight_kg"),
            payer=data["payer"],
            date_of_service=data["date_of_service"],
            hcpcs=data["hcpcs"],
            diagnosis_codes=list(data["diagnosis_codes"]),
            site_of_care=data.get("site_of_care"),
            dose_mg=data["dose"].get("mg"),
            dose_mg_per_kg=data["dose"].get("mg_per_kg"),
            packages=[(p["amount"], p["count"]) for p in data["packages"]]
            if data.get("packages") else None,
            prior_therapies=[TherapyFact(t["drug"], t["start"], t.get("end"), t.get("outcome"))
                             for t in data["prior_therapies"]],
            authorization_number=data.get("authorization_number"),
            last_dose_date=data.get("last_dose_date"),
            documentation_on_file=[DocumentOnFile(d["code"], d["date"])
                                   for d in data["documentation_on_file"]],
            drug_supply=data["drug_supply"],
            rendering_npi=data.get("rendering_npi"),
            ordering_npi=data.get("ordering_npi"),
        )


# One instance for every load: a schema holds no per-load state, and building one (with its
# nested schemas and copied fields) cost more than loading a request with it.
_REQUEST_SCHEMA = EligibilityRequestSchema()


def load_request(item: Any) -> EligibilityRequest | Invalid:
    """Load one request, or return the Invalid naming its bad fields (batches keep going)."""
    if not isinstance(item, dict):
        return Invalid({"(item)": ["Expected an object."]})
    try:
        return _REQUEST_SCHEMA.load(item)
    except ValidationError as exc:
        return Invalid(exc.messages)


class BatchRequestSchema(StrictSchema):
    """A whole schedule; each item is validated on its own so one bad item fails alone."""

    items = fields.List(fields.Raw(), required=True, validate=validate.Length(
        min=1, max=MAX_BATCH_ITEMS,
        error=f"Give 1 to {MAX_BATCH_ITEMS:,} appointments per batch; split a longer schedule."),
        metadata={"description": f"At most {MAX_BATCH_ITEMS:,} items."})


class PolicyRefSchema(Schema):
    id = fields.String()
    version = fields.Integer()
    source = fields.String(allow_none=True)
    effective_from = fields.String()


def one_of(enum: type[StrEnum]) -> dict[str, Any]:
    """OpenAPI metadata naming the values a dumped vocabulary field takes."""
    return {"enum": [member.value for member in enum]}


class MissingFactSchema(Schema):
    field = fields.String(metadata={"description": "the request field that would decide"})
    reason = fields.String(allow_none=True)


class ChecklistItemSchema(Schema):
    code = fields.String()
    label = fields.String()
    max_age_days = fields.Integer(allow_none=True)
    status = fields.String(metadata=one_of(DocumentStatus))
    on_file_date = fields.String(allow_none=True, metadata={
        "description": "date of the newest document of this code on or before the date of "
                       "service"})


class FindingSchema(Schema):
    code = fields.String()
    severity = fields.String(metadata=one_of(Severity))
    category = fields.String(metadata=one_of(Category))
    rule = fields.String()
    message = fields.String()
    policy = fields.Nested(PolicyRefSchema, allow_none=True)
    missing = fields.List(fields.Nested(MissingFactSchema), metadata={
        "description": "MISSING_INFORMATION only: each missing fact as data"})
    documentation = fields.List(fields.Nested(ChecklistItemSchema), metadata={
        "description": "DOCUMENTATION_MISSING only: each item missing or out of date"})


class LineSchema(Schema):
    code = fields.String()
    units = fields.Integer()
    modifiers = fields.List(fields.String())


class BillingSchema(Schema):
    administered_units = fields.Integer()
    discarded_units = fields.Integer()
    lines = fields.List(fields.Nested(LineSchema))


class AuthorizationRefSchema(Schema):
    number = fields.String()
    status = fields.String()
    remaining_units = fields.Integer(allow_none=True)
    remaining_visits = fields.Integer(allow_none=True)
    valid_from = fields.String()
    valid_to = fields.String()


class EligibilityResponseSchema(Schema):
    """The decision with every reason, the billing lines and the authorization drawn on."""

    decision = fields.String(metadata=one_of(Decision))
    findings = fields.List(fields.Nested(FindingSchema))
    billing = fields.Nested(BillingSchema, allow_none=True)
    authorization = fields.Nested(AuthorizationRefSchema, allow_none=True)
    policy = fields.Nested(PolicyRefSchema, allow_none=True)
    documentation = fields.List(fields.Nested(ChecklistItemSchema), metadata={
        "description": "The policy's documentation checklist on the date of service: every "
                       "item with its status (empty when the policy lists none)"})


class BatchResponseSchema(Schema):
    results = fields.List(fields.Dict())
