"""Request and response schemas of POST /api/v1/claims/check (docs/contract.md)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validate

from policy_service.billing.administration import KINDS, Infusion
from policy_service.domain.requests import Claim, ClaimAdministration, ClaimLine
from policy_service.models import DRUG_SUPPLIES
from policy_service.schemas.bundle import HcpcsCode, IcdCode, Npi
from policy_service.schemas.common import (
    MAX_LIST_ITEMS,
    PackageCountSchema,
    PatientRefSchema,
    StrictSchema,
    dose_mg,
)
from policy_service.schemas.eligibility import AuthorizationRefSchema, one_of
from policy_service.schemas.fields import EARLIEST_DATE, LATEST_DATE, BoundedDate, StrictInteger
from rulesets.vocabulary import Category, ClaimStatus, Severity

MODIFIER_PATTERN = re.compile(r"^[A-Z0-9]{2}$")
NDC_PATTERN = re.compile(r"^(?:\d{4,5}-\d{3,4}-\d{1,2}|\d{11})$")


class Clock(fields.Field):
    """A local clock time ("10:00") or, for an infusion past midnight, a date and time.

    Documented infusion times are wall-clock times at the site; an offset (``+02:00``, ``Z``)
    is refused because times with and without one cannot be compared.
    """

    def _deserialize(self, value: Any, attr: str | None, data: Any,
                     **kwargs: Any) -> dt.time | dt.datetime:
        if not isinstance(value, str) or len(value) > 40:
            raise ValidationError("Give a time as HH:MM (or YYYY-MM-DDTHH:MM).")
        try:
            clock = dt.datetime.fromisoformat(value) if "T" in value \
                else dt.time.fromisoformat(value)
        except ValueError:
            raise ValidationError(f"{value!r} is not a time (HH:MM) or date-time "
                                  "(YYYY-MM-DDTHH:MM).") from None
        if clock.tzinfo is not None:
            raise ValidationError("Give the local clock time without a time zone offset.")
        if isinstance(clock, dt.datetime) and not (
                EARLIEST_DATE <= clock.date() <= LATEST_DATE):
            raise ValidationError(f"The date must be between {EARLIEST_DATE} and "
                                  f"{LATEST_DATE}.")
        return clock

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return value.isoformat() if value is not None else None


class Modifier(fields.String):
    """A two-character HCPCS modifier (JW, JZ, 25, RT, 50...)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs).upper()
        if not MODIFIER_PATTERN.match(text):
            raise ValidationError("A modifier is two letters or digits (JW, 25, RT).")
        return text


class InfusionSchema(StrictSchema):
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    start = Clock(allow_none=True)
    stop = Clock(allow_none=True)
    drug = fields.String(validate=validate.Length(min=1, max=100))


class AdministrationSchema(StrictSchema):
    # None for hydration only or a patient-supplied (white-bagged) drug: no drug line is billed.
    hcpcs = HcpcsCode(allow_none=True, load_default=None)
    administered_mg = dose_mg(allow_none=True)
    packages = fields.List(fields.Nested(PackageCountSchema), allow_none=True,
                           validate=validate.Length(max=MAX_LIST_ITEMS))
    infusions = fields.List(fields.Nested(InfusionSchema), allow_none=True,
                            validate=validate.Length(max=MAX_LIST_ITEMS))


class LineSchema(StrictSchema):
    code = HcpcsCode(required=True)
    units = StrictInteger(required=True, minimum=1, maximum=100_000)
    modifiers = fields.List(Modifier(), load_default=list, validate=validate.Length(max=4))
    ndc = fields.String(allow_none=True, validate=validate.Regexp(
        NDC_PATTERN, error="An NDC is 5-4-2 with dashes (57894-0030-01) or 11 digits."))


class ClaimRequestSchema(StrictSchema):
    """One claim, before it leaves the practice."""

    payer = fields.String(required=True, validate=validate.Length(min=1, max=40))
    patient = fields.Nested(PatientRefSchema, required=True)
    date_of_service = BoundedDate(required=True)
    submitted_on = BoundedDate(allow_none=True, metadata={
        "description": "Day the payer receives the claim (default: today)."})
    diagnosis_codes = fields.List(IcdCode(), load_default=list,
                                  validate=validate.Length(max=MAX_LIST_ITEMS))
    authorization_number = fields.String(allow_none=True,
                                         validate=validate.Length(min=1, max=64))
    place_of_service = fields.String(
        allow_none=True,
        validate=validate.Regexp(r"^\d{2}$", error="A place of service is two digits (11)."),
        metadata={"description": "CMS POS code: 11 office, 12 home, 19/22 hospital "
                                 "outpatient, 49 independent clinic (infusion center)."})
    administration = fields.Nested(AdministrationSchema, allow_none=True)
    lines = fields.List(fields.Nested(LineSchema), required=True,
                        validate=validate.Length(min=1, max=50))
    drug_supply = fields.String(allow_none=True, validate=validate.OneOf(
        DRUG_SUPPLIES, error="Must be one of: {choices}."), metadata={
        "description": "specialty_pharmacy: the drug came from a specialty pharmacy, so no drug "
                       "line may be billed. Left out: as the lines and the payer's policy say."})
    rendering_npi = Npi(allow_none=True, metadata={
        "description": "NPI of the rendering provider (loop 2310B); checked for enrollment."})
    ordering_npi = Npi(allow_none=True, metadata={
        "description": "NPI of the ordering provider (loop 2420E): the prescriber whose "
                       "specialty the policy may require."})

    @post_load
    def to_claim(self, data: dict[str, Any], **_: Any) -> Claim:
        """Build the service's claim object."""
        admin = data.get("administration")
        return Claim(
            payer=data["payer"],
            patient_id=data["patient"]["id"],
            birth_date=data["patient"].get("birth_date"),
            weight_kg=data["patient"].get("weight_kg"),
            date_of_service=data["date_of_service"],
            submitted_on=data.get("submitted_on"),
            diagnosis_codes=list(data["diagnosis_codes"]),
            authorization_number=data.get("authorization_number"),
            place_of_service=data.get("place_of_service"),
            administration=ClaimAdministration(
                hcpcs=admin.get("hcpcs"),
                administered_mg=admin.get("administered_mg"),
                packages=[(p["amount"], p["count"]) for p in admin["packages"]]
                if admin.get("packages") else None,
                infusions=[Infusion(i["kind"], i.get("start"), i.get("stop"), i.get("drug"))
                           for i in admin.get("infusions") or []],
            ) if admin else None,
            lines=[ClaimLine(line["code"], line["units"], tuple(line["modifiers"]),
                             line.get("ndc")) for line in data["lines"]],
            drug_supply=data.get("drug_supply"),
            rendering_npi=data.get("rendering_npi"),
            ordering_npi=data.get("ordering_npi"),
        )


class FindingSchema(Schema):
    code = fields.String()
    severity = fields.String(metadata=one_of(Severity))
    category = fields.String(metadata=one_of(Category))
    line = fields.Integer(allow_none=True)
    message = fields.String()
    rule = fields.String()


class ExpectedLineSchema(Schema):
    code = fields.String()
    units = fields.Integer()
    modifiers = fields.List(fields.String())
    ndc = fields.String()


class ClaimResponseSchema(Schema):
    """The status, every finding naming its line, and the lines the facts support."""

    status = fields.String(metadata=one_of(ClaimStatus))
    findings = fields.List(fields.Nested(FindingSchema))
    expected_lines = fields.List(fields.Nested(ExpectedLineSchema))
    authorization = fields.Nested(AuthorizationRefSchema, allow_none=True, metadata={
        "description": "the authorization the check chose for the claim's drug"})
