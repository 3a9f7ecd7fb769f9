"""The policy bundle (docs/contract.md): one schema per record kind, for load and dump.

Loading returns only the keys the input gave, so an import can tell "leave as is" from
"set to null". Cross-field rules (date order, used within approved) are plain functions over a
mapping of values, so the admin forms and the API run exactly the same checks.
No database access here: references to other records are checked by the bundle service.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
from collections.abc import Callable, Mapping
from typing import Any

from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates_schema,
)

from policy_service.domain.codes import hcpcs_error, npi_error
from policy_service.domain.documentation import (
    CODE_PATTERN,
    LABEL_MAX_LENGTH,
    MAX_AGE_DAYS_LIMIT,
    documentation_errors,
    documentation_item,
)
from policy_service.domain.icd10 import code_error, normalise_code
from policy_service.models import (
    AUTHORIZATION_STATUSES,
    CHANNELS,
    PAYER_KINDS,
    POLICY_DRUG_SUPPLIES,
    POLICY_STATUSES,
    SITES_OF_CARE,
    THERAPY_OUTCOMES,
)
from policy_service.models.authorization import LEGACY_STATUSES, USABLE_STATUSES
from policy_service.schemas.fields import BoundedDate, BoundedDecimal, StrictInteger
from rulesets.vocabulary import Decision

Messages = dict[str, Any]

# The numeric limits of the bundle fields; the cross-field validators below reuse them so the
# admin forms (which never pass through these field objects) show the very same messages.
AT_LEAST_ONE = "Must be at least 1."
NOT_NEGATIVE = "Must not be negative."
GREATER_THAN_ZERO = "Must be greater than 0."
NO_STEP_DRUGS = "List at least one drug or class."
RXNORM_CODE = re.compile(r"^[0-9]{1,10}$")
DOCUMENTATION_CODE_ERROR = "Not a documentation code (A-Z, 0-9 and _, at most 40 characters)."


class HcpcsCode(fields.String):
    """A HCPCS Level II or CPT code."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        error = hcpcs_error(text)
        if error:
            raise ValidationError(error)
        return text


class IcdCode(fields.String):
    """An ICD-10-CM code or code family that exists in the official code set; stored dotted."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        error = code_error(text)
        if error:
            raise ValidationError(error)
        return normalise_code(text)


class Npi(fields.String):
    """A National Provider Identifier: 10 digits whose last is the Luhn check digit."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        error = npi_error(text)
        if error:
            raise ValidationError(error)
        return text


def normalise_specialty(text: str) -> str:
    """A specialty as policies and providers are compared: trimmed, lower-case, one space."""
    return " ".join(text.split()).lower()


def specialty_error(text: Any) -> str | None:
    """Return why ``text`` cannot be a specialty, or None when it can."""
    if not isinstance(text, str) or not 1 <= len(normalise_specialty(text)) <= 100:
        return "Give a specialty of 1 to 100 characters."
    return None


class Specialty(fields.String):
    """A clinical specialty in words ("rheumatology"), stored normalised for comparison."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if error := specialty_error(text):
            raise ValidationError(error)
        return normalise_specialty(text)


class Amount(BoundedDecimal):
    """A strictly positive quantity, exact on load and a plain JSON number on dump.

    Bounded like every API decimal (at most 1,000,000, written in at most 40 characters), then
    rounded to ``places``: the columns keep 3 decimals, and rounding here keeps a re-import from
    looking like a change.
    """

    def __init__(self, *, places: int = 3, maximum: int = 1_000_000, **kwargs: Any) -> None:
        self.round_places = places
        super().__init__(maximum=maximum, places=9, **kwargs)

    def _validated(self, value: Any) -> decimal.Decimal:
        number = super()._validated(value)
        rounded = number.quantize(decimal.Decimal(1).scaleb(-self.round_places),
                                  rounding=decimal.ROUND_HALF_EVEN)
        if not rounded:
            raise self.make_error("too_small", lower="greater than 0")
        return rounded

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return plain_number(value)


def plain_number(value: Any) -> int | float | None:
    """Return ``value`` as an int when integral, else a float (None stays None)."""
    if value is None:
        return None
    number = decimal.Decimal(str(value))
    if number == number.to_integral_value():
        return int(number)
    return float(number)


def _positive_int(**kwargs: Any) -> fields.Integer:
    return StrictInteger(minimum=1, error_messages={"too_small": AT_LEAST_ONE}, **kwargs)


def _non_negative_int(**kwargs: Any) -> fields.Integer:
    return StrictInteger(minimum=0, error_messages={"too_small": NOT_NEGATIVE}, **kwargs)


def _text(max_length: int, **kwargs: Any) -> fields.String:
    return fields.String(validate=validate.Length(min=1, max=max_length), **kwargs)


def _one_of(choices: tuple[str, ...], **kwargs: Any) -> fields.String:
    return fields.String(
        validate=validate.OneOf(choices, error="Must be one of: {choices}."), **kwargs
    )


def _merge(errors: Messages, field: str, message: str) -> None:
    errors.setdefault(field, []).append(message)


def _is_number(value: Any) -> bool:
    # bool is an int subclass, but a checkbox is never a quantity.
    return isinstance(value, (int, float, decimal.Decimal)) and not isinstance(value, bool)


def range_errors(values: Mapping[str, Any], *, at_least_one: tuple[str, ...] = (),
                 not_negative: tuple[str, ...] = (),
                 positive: tuple[str, ...] = ()) -> Messages:
    """Return an error on each given number below its floor (1, 0, or strictly above 0)."""
    errors: Messages = {}
    limits = ((at_least_one, 1, AT_LEAST_ONE), (not_negative, 0, NOT_NEGATIVE))
    for names, floor, message in limits:
        for name in names:
            number = values.get(name)
            if _is_number(number) and number < floor:
                _merge(errors, name, message)
    for name in positive:
        number = values.get(name)
        if _is_number(number) and number <= 0:
            _merge(errors, name, GREATER_THAN_ZERO)
    return errors


def code_list_errors(values: Mapping[str, Any], name: str,
                     check: Callable[[Any], str | None]) -> Messages:
    """Return ``{name: {position: [message]}}`` for each entry of the list ``check`` refuses."""
    items = values.get(name)
    if not isinstance(items, (list, tuple)):
        return {}
    problems = {position: [message] for position, code in enumerate(items)
                if (message := check(code))}
    return {name: problems} if problems else {}


def _rows_errors(values: Mapping[str, Any], name: str,
                 check: Callable[[Mapping[str, Any]], Messages]) -> Messages:
    """Return ``{name: {position: errors}}`` for each row of the nested list ``name``."""
    problems = {position: row_errors
                for position, row in enumerate(values.get(name) or [])
                if isinstance(row, Mapping) and (row_errors := check(row))}
    return {name: problems} if problems else {}


def date_range_errors(values: Mapping[str, Any], start: str, end: str) -> Messages:
    """Return an error on ``end`` when both dates are given and it falls before ``start``."""
    first, last = values.get(start), values.get(end)
    if isinstance(first, dt.date) and isinstance(last, dt.date) and last < first:
        return {end: [f"Must not be before {start} ({first.isoformat()})."]}
    return {}


def validate_payer_fields(values: Mapping[str, Any]) -> Messages:
    """Return the errors of a payer's settings (each number of days at least one, external ids)."""
    errors = range_errors(values, at_least_one=("timely_filing_days", "decision_days",
                                                "renewal_lead_days", "appeal_days"))
    seen: set[str] = set()
    for item in values.get("external_ids") or []:
        if not isinstance(item, str):
            continue
        key = item.strip().upper()
        if not key:
            _merge(errors, "external_ids", "An external id cannot be blank.")
        elif key in seen:
            _merge(errors, "external_ids", f"{item!r} is given twice.")
        seen.add(key)
    return errors
    """Return the errors of a payer's settings (each number of days at least one)."""
    return range_errors(values, at_least_one=("timely_filing_days", "decision_days",
                                              "renewal_lead_days", "appeal_days"))


def validate_package_fields(values: Mapping[str, Any]) -> Messages:
    """Return the errors of one package size (its amount is positive)."""
    return range_errors(values, positive=("amount",))


def validate_drug_fields(values: Mapping[str, Any]) -> Messages:
    """Return the cross-field errors of a drug (codes, window, limits, biosimilar of itself)."""
    errors = date_range_errors(values, "valid_from", "valid_to")
    for name in ("hcpcs", "biosimilar_of"):
        if values.get(name) is not None and (message := hcpcs_error(values[name])):
            _merge(errors, name, message)
    errors.update(range_errors(values, at_least_one=("mue_units",)))
    billing_unit = values.get("billing_unit")
    if isinstance(billing_unit, Mapping) and (unit_errors := range_errors(
            billing_unit, positive=("amount",))):
        errors["billing_unit"] = unit_errors
    errors.update(_rows_errors(values, "packages", validate_package_fields))
    if values.get("biosimilar_of") and values.get("biosimilar_of") == values.get("hcpcs"):
        _merge(errors, "biosimilar_of", "A drug cannot be a biosimilar of itself.")
    bad_rxnorm = [code for code in values.get("rxnorm") or () if not RXNORM_CODE.match(str(code))]
    if bad_rxnorm:
        _merge(errors, "rxnorm", f"Not an RxNorm code (RXCUI, 1 to 10 digits): "
                                 f"{', '.join(map(str, bad_rxnorm))}.")
    return errors


def validate_step_fields(values: Mapping[str, Any]) -> Messages:
    """Return the errors of one step-therapy step (drugs named, count and days in range)."""
    errors = range_errors(values, at_least_one=("count",), not_negative=("min_days",))
    if "any_of" in values and not values["any_of"]:
        _merge(errors, "any_of", NO_STEP_DRUGS)
    return errors


def validate_policy_version_fields(values: Mapping[str, Any]) -> Messages:
    """Return the cross-field errors of one policy version (codes, dates, ages, limits)."""
    errors = date_range_errors(values, "effective_from", "effective_to")
    errors.update(range_errors(
        values, not_negative=("min_age", "max_age"),
        at_least_one=("version", "min_days_between_doses", "new_starts_only_lookback_days",
                      "approval_days")))
    min_age, max_age = values.get("min_age"), values.get("max_age")
    if _is_number(min_age) and _is_number(max_age) and max_age < min_age and min_age >= 0:
        _merge(errors, "max_age", f"Must not be below min_age ({min_age}).")
    max_dose = values.get("max_dose")
    if isinstance(max_dose, Mapping) and (dose_errors := range_errors(
            max_dose, positive=("mg", "mg_per_kg"), at_least_one=("units",))):
        errors["max_dose"] = dose_errors
    for name in ("hcpcs", "preferred_products"):
        errors.update(code_list_errors(values, name, hcpcs_error))
    errors.update(code_list_errors(values, "covered_diagnoses", code_error))
    errors.update(code_list_errors(values, "prescriber_specialties", specialty_error))
    if values.get("drug_supply") not in (None, *POLICY_DRUG_SUPPLIES):
        _merge(errors, "drug_supply", f"Must be one of: {', '.join(POLICY_DRUG_SUPPLIES)}.")
    if isinstance(documentation := values.get("documentation_required"), list) and (
            problems := documentation_errors(documentation)):
        errors["documentation_required"] = problems
    errors.update(_rows_errors(values, "step_therapy", validate_step_fields))
    return errors


def validate_therapy_fields(values: Mapping[str, Any]) -> Messages:
    """Return the cross-field errors of one therapy course (it cannot end before it starts)."""
    return date_range_errors(values, "start", "end")


def validate_document_fields(values: Mapping[str, Any]) -> Messages:
    """Return the errors of one document on file (its checklist code)."""
    code = values.get("code")
    if isinstance(code, str) and not re.match(CODE_PATTERN, code):
        return {"code": [DOCUMENTATION_CODE_ERROR]}
    return {}


def validate_patient_fields(values: Mapping[str, Any]) -> Messages:
    """Return the cross-field errors of a patient (weight) and their therapies."""
    errors = range_errors(values, positive=("weight_kg",))
    errors.update(_rows_errors(values, "therapies", validate_therapy_fields))
    return errors


APPROVAL_NEEDS_LIMIT = ("An approved authorization needs approved_units or approved_visits "
                        "(at least 1).")


def approval_errors(values: Mapping[str, Any]) -> Messages:
    """Return an error when an approved authorization has no limit, given its whole values.

    Only an approved (or partially approved) one needs a limit: a request, a denial or a
    cancellation may carry 0 or no approved units and visits.
    """
    limits = [values.get(name) for name in ("approved_units", "approved_visits")]
    if values.get("status") not in USABLE_STATUSES or any(
            _is_number(limit) and limit < 0 for limit in limits):
        return {}
    if any(_is_number(limit) and limit >= 1 for limit in limits):
        return {}
    return {"approved_units": [APPROVAL_NEEDS_LIMIT]}


def validate_authorization_fields(values: Mapping[str, Any]) -> Messages:
    """Return the cross-field errors of an authorization (codes, window, units and visits).

    ``approval_errors`` needs the whole record, so callers holding one run it too.
    """
    errors = date_range_errors(values, "valid_from", "valid_to")
    errors.update(date_range_errors(values, "submitted_on", "decided_on"))
    errors.update(range_errors(values, at_least_one=("requested_units", "requested_visits"),
                               not_negative=("used_units", "used_visits", "approved_units",
                                             "approved_visits")))
    npi = values.get("ordering_npi")
    if npi not in (None, "") and (message := npi_error(npi)):
        _merge(errors, "ordering_npi", message)
    for used, approved in (("used_units", "approved_units"), ("used_visits", "approved_visits")):
        used_value, approved_value = values.get(used), values.get(approved)
        if (_is_number(used_value) and _is_number(approved_value)
                and used not in errors and approved not in errors
                and used_value > approved_value):
            _merge(errors, used, f"{used_value} is more than the {approved_value} approved.")
    errors.update(code_list_errors(values, "hcpcs", hcpcs_error))
    errors.update(code_list_errors(values, "diagnoses", code_error))
    return errors


def _period_text(start: dt.date, end: dt.date | None) -> str:
    return f"{start.isoformat()} to {end.isoformat() if end else 'open'}"


def enrollment_overlap_errors(enrollments: Any) -> Messages:
    """Return an error on each enrollment that overlaps an earlier one with the same payer.

    A payer enrolls a provider once at a time; two open periods would make "enrolled on this
    date" ambiguous when one of them is ended.
    """
    if not isinstance(enrollments, (list, tuple)):
        return {}
    problems: Messages = {}
    seen: list[tuple[int, Any, dt.date, dt.date | None]] = []
    for position, row in enumerate(enrollments):
        if not isinstance(row, Mapping):
            continue
        payer, start, end = row.get("payer"), row.get("effective_from"), row.get("effective_to")
        if not isinstance(payer, str) or not isinstance(start, dt.date) or (
                end is not None and not isinstance(end, dt.date)):
            continue
        for other, other_payer, other_start, other_end in seen:
            if other_payer != payer:
                continue
            if (end is None or other_start <= end) and (other_end is None or start <= other_end):
                problems.setdefault(position, {}).setdefault("effective_from", []).append(
                    f"Overlaps enrollments[{other}] with {payer} "
                    f"({_period_text(other_start, other_end)}).")
                break
        seen.append((position, payer, start, end))
    return {"enrollments": problems} if problems else {}


def validate_enrollment_fields(values: Mapping[str, Any]) -> Messages:
    """Return the errors of one enrollment period (it cannot end before it starts)."""
    return date_range_errors(values, "effective_from", "effective_to")


def validate_provider_fields(values: Mapping[str, Any]) -> Messages:
    """Return the cross-field errors of a provider: NPI check digit, periods, overlaps."""
    errors: Messages = {}
    npi = values.get("npi")
    if npi is not None and (message := npi_error(npi)):
        _merge(errors, "npi", message)
    errors.update(_rows_errors(values, "enrollments", validate_enrollment_fields))
    overlaps = enrollment_overlap_errors(values.get("enrollments"))
    for position, row_errors in overlaps.get("enrollments", {}).items():
        target = errors.setdefault("enrollments", {}).setdefault(position, {})
        for name, messages in row_errors.items():
            target.setdefault(name, []).extend(messages)
    return errors


class BundleRecordSchema(Schema):
    """Base of every bundle schema: unknown keys are errors."""

    class Meta:
        unknown = RAISE


class PayerSchema(BundleRecordSchema):
    """A payer and its billing settings; natural key ``id``."""

    id = _text(40, required=True)
    name = _text(200)
    kind = _one_of(PAYER_KINDS)
    requires_jw_jz = fields.Boolean()
    requires_ndc = fields.Boolean()
    timely_filing_days = _positive_int(maximum=3650)
    complex_admin_for_biologics = fields.Boolean()
    external_ids = fields.List(_text(80), metadata={
        "description": "How others name this payer: the payer id in NM1*PR NM109 of X12 "
                       "files, a CDS Hooks Coverage payor identifier."})
    decision_days = _positive_int()
    renewal_lead_days = _positive_int()
    appeal_days = _positive_int()
    notes = fields.String(allow_none=True, validate=validate.Length(max=2000))

    @validates_schema(skip_on_field_errors=False)
    def _cross_fields(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if errors := validate_payer_fields(data):
            raise ValidationError(errors)


class BillingUnitSchema(BundleRecordSchema):
    """What one billed unit of a drug holds (10 mg)."""

    amount = Amount(required=True)
    unit = _text(20, required=True)


class PackageSchema(BundleRecordSchema):
    """One package size a drug is sold in."""

    amount = Amount(required=True)
    unit = _text(20)
    single_dose = fields.Boolean()
    ndc = fields.String(allow_none=True, validate=validate.Length(max=20))


class DrugSchema(BundleRecordSchema):
    """A billable drug product; natural key ``hcpcs``."""

    hcpcs = HcpcsCode(required=True)
    name = _text(200)
    generic = _text(100)
    biosimilar_of = HcpcsCode(allow_none=True)
    billing_unit = fields.Nested(BillingUnitSchema)
    packages = fields.List(fields.Nested(PackageSchema))
    route = fields.String(allow_none=True, validate=validate.Length(max=20))
    admin_class = fields.String(allow_none=True, validate=validate.Length(max=30))
    valid_from = BoundedDate(allow_none=True)
    valid_to = BoundedDate(allow_none=True)
    mue_units = _positive_int(allow_none=True)
    # RxNorm concept ids (RXCUI, digits only) that name this product in EHR orders.
    rxnorm = fields.List(fields.String(validate=validate.Length(max=10)))
    source = fields.String(allow_none=True, validate=validate.Length(max=1000))
    notes = fields.String(allow_none=True, validate=validate.Length(max=2000))

    @validates_schema(skip_on_field_errors=False)
    def _cross_fields(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if errors := validate_drug_fields(data):
            raise ValidationError(errors)


class MaxDoseSchema(BundleRecordSchema):
    """Dose limits per administration; any of them may be null."""

    mg_per_kg = Amount(allow_none=True)
    mg = Amount(allow_none=True)
    units = _positive_int(allow_none=True)


class StepSchema(BundleRecordSchema):
    """One step-therapy step: try ``count`` of ``any_of`` for at least ``min_days``."""

    any_of = fields.List(_text(100), required=True,
                         validate=validate.Length(min=1, error=NO_STEP_DRUGS))
    count = _positive_int()
    min_days = _non_negative_int()
    accepted_outcomes = fields.List(_one_of(THERAPY_OUTCOMES))

    @validates_schema(skip_on_field_errors=False)
    def _cross_fields(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if errors := validate_step_fields(data):
            raise ValidationError(errors)


FINDING_CODE = re.compile(r"^[A-Z][A-Z0-9_]{1,59}$")


class ExpectSchema(BundleRecordSchema):
    """What a test case expects: the decision, codes that must fire, codes that must not."""

    decision = _one_of(tuple(d.value for d in Decision), required=True)
    codes = fields.List(fields.String(validate=validate.Regexp(
        FINDING_CODE, error="Not a finding code (UPPER_CASE).")), load_default=list)
    absent = fields.List(fields.String(validate=validate.Regexp(
        FINDING_CODE, error="Not a finding code (UPPER_CASE).")), load_default=list)


class CaseSchema(BundleRecordSchema):
    """A policy test case: a planned treatment (an eligibility request) and what to expect.

    The request is checked as an eligibility request by the service that stores the case.
    """

    name = _text(200, required=True)
    request = fields.Dict(required=True)
    expect = fields.Nested(ExpectSchema, required=True)


def documentation_code(**kwargs: Any) -> fields.String:
    """A documentation checklist code (``TB_SCREENING``)."""
    return fields.String(validate=validate.Regexp(CODE_PATTERN, error=DOCUMENTATION_CODE_ERROR),
                         **kwargs)


class DocumentationItemSchema(BundleRecordSchema):
    """One item a policy asks to have on file, and how old it may be on the date of service."""

    code = documentation_code(required=True)
    label = _text(LABEL_MAX_LENGTH, required=True)
    max_age_days = StrictInteger(minimum=1, maximum=MAX_AGE_DAYS_LIMIT, allow_none=True,
                                 load_default=None,
                                 error_messages={"too_small": AT_LEAST_ONE})


class DocumentationItemField(fields.Field):
    """A checklist item: ``{code, label, max_age_days}``, or a bare label (older bundles),
    which gets a code made from its words."""

    def _deserialize(self, value: Any, attr: str | None, data: Any,
                     **kwargs: Any) -> dict[str, Any]:
        if isinstance(value, str):
            if not 0 < len(value.strip()) <= LABEL_MAX_LENGTH:
                raise ValidationError(f"Give a label of 1 to {LABEL_MAX_LENGTH} characters.")
            return documentation_item(value.strip()).as_dict()
        if not isinstance(value, Mapping):
            raise ValidationError("Give {code, label, max_age_days} or a label.")
        return DocumentationItemSchema().load(value)

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return None if value is None else documentation_item(value).as_dict()


class DocumentOnFileSchema(BundleRecordSchema):
    """A document the practice has for a patient: its checklist code and its date."""

    code = documentation_code(required=True)
    date = BoundedDate(required=True)


class PolicyVersionSchema(BundleRecordSchema):
    """One effective-dated version of a policy; natural key (``id``, ``effective_from``)."""

    id = _text(120, required=True)
    effective_from = BoundedDate(required=True)
    version = _positive_int()
    payer = _text(40)
    title = fields.String(allow_none=True, validate=validate.Length(max=200))
    hcpcs = fields.List(HcpcsCode())
    effective_to = BoundedDate(allow_none=True)
    status = _one_of(POLICY_STATUSES)
    prior_auth_required = fields.Boolean()
    covered_diagnoses = fields.List(IcdCode())
    preferred_products = fields.List(HcpcsCode())
    sites_of_care = fields.List(_one_of(SITES_OF_CARE))
    max_dose = fields.Nested(MaxDoseSchema)
    min_days_between_doses = _positive_int(allow_none=True)
    min_age = _non_negative_int(allow_none=True)
    max_age = _non_negative_int(allow_none=True)
    step_therapy = fields.List(fields.Nested(StepSchema))
    new_starts_only_lookback_days = _positive_int(allow_none=True)
    approval_days = _positive_int(allow_none=True)
    documentation_required = fields.List(_text(500))
    drug_supply = _one_of(POLICY_DRUG_SUPPLIES, metadata={
        "description": "specialty_pharmacy: the payer requires the drug from a specialty "
                       "pharmacy (the practice bills the administration only); buy_and_bill; "
                       "or either (the default)."})
    prescriber_specialties = fields.List(Specialty(), metadata={
        "description": "Specialties the prescriber must have (e.g. rheumatology); empty: any."})
    documentation_required = fields.List(DocumentationItemField(), metadata={
        "description": "Checklist items {code, label, max_age_days}; a bare label is read "
                       "as an item with a code made from its words."})
    source = fields.String(allow_none=True, validate=validate.Length(max=1000))
    notes = fields.String(allow_none=True, validate=validate.Length(max=4000))
    cases = fields.List(fields.Nested(CaseSchema), metadata={
        "description": "Test cases of this version; activation needs every one to pass."})

    @validates_schema(skip_on_field_errors=False)
    def _cross_fields(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if errors := validate_policy_version_fields(data):
            raise ValidationError(errors)


class TherapySchema(BundleRecordSchema):
    """One course of a drug a patient received."""

    drug = _text(100, required=True)
    start = BoundedDate(required=True)
    end = BoundedDate(allow_none=True)
    outcome = _one_of(THERAPY_OUTCOMES, allow_none=True)

    @validates_schema(skip_on_field_errors=False)
    def _cross_fields(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if errors := validate_therapy_fields(data):
            raise ValidationError(errors)


class PatientSchema(BundleRecordSchema):
    """A patient by the practice's own id, with therapy history; natural key ``id``."""

    id = _text(64, required=True)
    birth_date = BoundedDate(allow_none=True)
    weight_kg = Amount(allow_none=True, places=2)
    therapies = fields.List(fields.Nested(TherapySchema))
    documentation = fields.List(fields.Nested(DocumentOnFileSchema), metadata={
        "description": "Documents on file: each checklist code with the date it was done."})

    @validates_schema(skip_on_field_errors=False)
    def _cross_fields(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if errors := validate_patient_fields(data):
            raise ValidationError(errors)


class AuthorizationSchema(BundleRecordSchema):
    """A prior authorization; natural key ``number``."""

    number = _text(64, required=True)
    payer = _text(40)
    patient = _text(64)
    hcpcs = fields.List(HcpcsCode())
    # Bundles may still say pending / expired / exhausted (read as submitted / approved).
    status = _one_of((*AUTHORIZATION_STATUSES, *LEGACY_STATUSES))
    requested_units = _positive_int(allow_none=True)
    requested_visits = _positive_int(allow_none=True)
    approved_units = _non_negative_int(allow_none=True)
    approved_visits = _non_negative_int(allow_none=True)
    used_units = _non_negative_int()
    used_visits = _non_negative_int()
    valid_from = BoundedDate()
    valid_to = BoundedDate()
    diagnoses = fields.List(IcdCode())
    site_of_care = _one_of(SITES_OF_CARE, allow_none=True)
    notes = fields.String(allow_none=True, validate=validate.Length(max=2000))
    submitted_on = fields.Date(allow_none=True)
    decided_on = fields.Date(allow_none=True)
    payer_reference = fields.String(allow_none=True, validate=validate.Length(min=1, max=64))
    channel = _one_of(CHANNELS, allow_none=True)
    ordering_npi = fields.String(allow_none=True)
    denial_reason = fields.String(allow_none=True, validate=validate.Length(max=2000))
    appeal_due = fields.Date(allow_none=True)
    follow_up_on = fields.Date(allow_none=True)
    owner = fields.String(allow_none=True, validate=validate.Length(min=3, max=255))
    renewal_of = fields.String(allow_none=True, validate=validate.Length(min=1, max=64))

    @post_load
    def _current_status(self, data: dict[str, Any], **_kwargs: Any) -> dict[str, Any]:
        if data.get("status") in LEGACY_STATUSES:
            data["status"] = LEGACY_STATUSES[data["status"]]
        return data

    @validates_schema(skip_on_field_errors=False)
    def _cross_fields(self, data: dict[str, Any], **_kwargs: Any) -> None:
        values = {**data}
        if values.get("status") in LEGACY_STATUSES:
            values["status"] = LEGACY_STATUSES[values["status"]]
        if errors := validate_authorization_fields(values):
            raise ValidationError(errors)


class EnrollmentSchema(BundleRecordSchema):
    """A period in which a provider is enrolled with a payer."""

    payer = _text(40, required=True)
    effective_from = BoundedDate(required=True)
    effective_to = BoundedDate(allow_none=True)

    @validates_schema(skip_on_field_errors=False)
    def _cross_fields(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if errors := validate_enrollment_fields(data):
            raise ValidationError(errors)


class ProviderSchema(BundleRecordSchema):
    """A clinician by NPI, with a specialty and the payers they are enrolled with."""

    npi = Npi(required=True)
    name = _text(200)
    specialty = Specialty(allow_none=True)
    enrollments = fields.List(fields.Nested(EnrollmentSchema))

    @validates_schema(skip_on_field_errors=False)
    def _cross_fields(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if errors := enrollment_overlap_errors(data.get("enrollments")):
            raise ValidationError(errors)


class BundleSchema(BundleRecordSchema):
    """A whole bundle: every section optional."""

    payers = fields.List(fields.Nested(PayerSchema))
    drugs = fields.List(fields.Nested(DrugSchema))
    policies = fields.List(fields.Nested(PolicyVersionSchema))
    patients = fields.List(fields.Nested(PatientSchema))
    authorizations = fields.List(fields.Nested(AuthorizationSchema))
    providers = fields.List(fields.Nested(ProviderSchema))


BUNDLE_KINDS = ("payers", "drugs", "policies", "patients", "authorizations", "providers")
