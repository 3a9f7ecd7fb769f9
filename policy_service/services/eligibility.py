"""Eligibility: can this planned infusion go ahead? Builds one case, evaluates the rules.

The flow of one check: look up the policy version in effect on the date of service (from the
in-memory index), the patient's history and the authorization it would draw on (loaded for a
whole batch in a few queries), derive every fact in plain Python, evaluate the eligibility
ruleset once, then turn findings into a decision, billing lines and an explanation.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from flask import current_app
from sqlalchemy import func, or_, select
from sqlalchemy.orm import joinedload

from policy_service.billing.units import Package, PackageCount, drug_billing
from policy_service.engine import evaluate
from policy_service.errors import Invalid
from policy_service.extensions import db
from policy_service.logging import get_logger
from policy_service.models import Authorization, AuthorizationUsage, Patient, Payer
from policy_service.models.authorization import USABLE_STATUSES
from policy_service.services.icd10 import diagnosis_matches
from policy_service.services.policy_index import DrugView, PolicyIndex, PolicyView, index_cache
from rulesets import render_message
from rulesets.eligibility import RULES

COVERAGE_CODES = frozenset({
    "DIAGNOSIS_NOT_COVERED", "STEP_THERAPY_NOT_MET", "NON_PREFERRED_PRODUCT",
    "SITE_OF_CARE_NOT_ALLOWED", "DOSE_EXCEEDS_LIMIT", "DOSE_TOO_SOON", "AGE_NOT_COVERED",
})
# Findings that come from the payer's policy, so they cite it; the others (the authorization,
# missing data) have no policy source to show.
POLICY_SOURCED_CODES = COVERAGE_CODES | {"AUTH_REQUIRED"}
# Outcomes that satisfy a step whatever the trial's length: the drug could not be given longer.
OUTCOMES_WITHOUT_MIN_DAYS = frozenset({"intolerance", "contraindication"})
SEVERITY_ORDER = {"block": 0, "warn": 1, "info": 2}

log = get_logger("eligibility")


@dataclass(frozen=True)
class TherapyFact:
    """A course of a drug: from the stored history or the request's prior_therapies."""

    drug: str
    start: dt.date
    end: dt.date | None
    outcome: str | None


@dataclass
class EligibilityRequest:
    """One planned treatment, as loaded by the eligibility schema."""

    patient_id: str
    payer: str
    date_of_service: dt.date
    hcpcs: str
    diagnosis_codes: list[str] = field(default_factory=list)
    site_of_care: str | None = None
    birth_date: dt.date | None = None
    weight_kg: Decimal | None = None
    dose_mg: Decimal | None = None
    dose_mg_per_kg: Decimal | None = None
    packages: list[tuple[Decimal, int]] | None = None
    prior_therapies: list[TherapyFact] = field(default_factory=list)
    authorization_number: str | None = None
    last_dose_date: dt.date | None = None


@dataclass
class StoredContext:
    """What a batch loaded from the database, keyed for the checks."""

    patients: dict[str, Patient]
    authorizations: dict[tuple[int, int], list[Authorization]]
    by_number: dict[str, Authorization]
    last_doses: dict[tuple[int, str], dt.date]
    payer_ids: dict[str, int]


def _plain_number(value: Decimal | int | float) -> int | float:
    value = Decimal(value)
    return int(value) if value == value.to_integral_value() else float(value)


def _age_on(birth_date: dt.date, day: dt.date) -> int:
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))


def load_context(requests: Sequence[EligibilityRequest],
                 index: PolicyIndex | None = None) -> StoredContext:
    """Load patients, authorizations and last doses for a whole batch in a few queries.

    Two queries, whatever the batch size: patients with their therapy history (joined), and
    the authorizations each with the date of its last recorded use. Payer ids come from the
    policy index when given (it already decides which payers exist), else from one query.
    """
    patient_ids = {r.patient_id for r in requests}
    numbers = {r.authorization_number for r in requests if r.authorization_number}
    patients = {
        p.external_id: p for p in db.session.scalars(
            select(Patient).where(Patient.external_id.in_(patient_ids))
            .options(joinedload(Patient.therapies))).unique()
    } if patient_ids else {}
    if index is not None:
        payer_ids = index.payer_ids
    else:
        payer_codes = {r.payer for r in requests}
        payer_ids = dict(db.session.execute(
            select(Payer.code, Payer.id).where(Payer.code.in_(payer_codes))).tuples().all())
    internal_ids = {p.id for p in patients.values()}
    authorizations: dict[tuple[int, int], list[Authorization]] = defaultdict(list)
    by_number: dict[str, Authorization] = {}
    last_doses: dict[tuple[int, str], dt.date] = {}
    if internal_ids or numbers:
        # The last non-voided use of each authorization, in the same query (a correlated
        # subquery on the usage table's authorization_id index), not one more round trip.
        last_use = (
            select(func.max(AuthorizationUsage.date_of_service))
            .where(AuthorizationUsage.authorization_id == Authorization.id,
                   AuthorizationUsage.voided_at.is_(None))
            .correlate(Authorization).scalar_subquery()
        )
        conditions = []
        if internal_ids:
            conditions.append(Authorization.patient_id.in_(internal_ids))
        if numbers:
            conditions.append(Authorization.number.in_(numbers))
        rows = db.session.execute(select(Authorization, last_use).where(or_(*conditions)))
        for auth, day in rows.tuples():
            authorizations[(auth.patient_id, auth.payer_id)].append(auth)
            by_number[auth.number] = auth
            if day is None or auth.patient_id not in internal_ids:
                continue
            for code in auth.hcpcs or ():
                key = (auth.patient_id, code)
                if key not in last_doses or day > last_doses[key]:
                    last_doses[key] = day
    return StoredContext(patients, authorizations, by_number, last_doses, payer_ids)


def _validate_references(request: EligibilityRequest, index: PolicyIndex,
                         context: StoredContext) -> None:
    errors: dict[str, list[str]] = {}
    if request.payer not in index.payers:
        errors["payer"] = [f"Unknown payer {request.payer!r}."]
    if request.hcpcs not in index.drugs:
        errors["hcpcs"] = [f"Unknown drug code {request.hcpcs!r}."]
    number = request.authorization_number
    if number:
        auth = context.by_number.get(number)
        if auth is None:
            errors["authorization_number"] = [f"No authorization {number!r}."]
        # Compared by id: the request's patient and payer are already loaded, so no lazy load.
        elif (auth.patient_id != getattr(context.patients.get(request.patient_id), "id", None)
              or auth.payer_id != context.payer_ids.get(request.payer)):
            errors["authorization_number"] = [
                f"Authorization {number!r} belongs to another patient or payer."]
    if errors:
        raise Invalid(errors)


def _therapies(request: EligibilityRequest, patient: Patient | None) -> list[TherapyFact]:
    stored = [TherapyFact(t.drug, t.start, t.end, t.outcome) for t in patient.therapies] \
        if patient else []
    return stored + list(request.prior_therapies)


def _step_met(step: Any, therapies: Iterable[TherapyFact], day: dt.date,
              index: PolicyIndex) -> bool:
    wanted: set[str] = set()
    for name in step.any_of:
        wanted |= index.names_for(name) if name in index.drugs else {name.lower()}
    tried = set()
    for therapy in therapies:
        if therapy.drug.lower() not in wanted or therapy.start > day:
            continue
        accepted = not step.accepted_outcomes or therapy.outcome in step.accepted_outcomes
        if not accepted:
            continue
        # Only the part of the trial before the date of service counts.
        length = (min(therapy.end or day, day) - therapy.start).days
        if length >= step.min_days or therapy.outcome in OUTCOMES_WITHOUT_MIN_DAYS:
            tried.add(therapy.drug.lower())
    return len(tried) >= step.count


def _received_within(therapies: Iterable[TherapyFact], names: set[str], day: dt.date,
                     lookback_days: int, last_dose: dt.date | None) -> bool:
    since = day - dt.timedelta(days=lookback_days)
    if last_dose is not None and since <= last_dose <= day:
        return True
    return any(t.drug.lower() in names and t.start <= day and (t.end is None or t.end >= since)
               for t in therapies)


def _auth_problems(auth: Authorization, request: EligibilityRequest) -> dict[str, Any]:
    day = request.date_of_service
    window = "before" if day < auth.valid_from else "after" if day > auth.valid_to else "within"
    # No diagnosis given is MISSING_INFORMATION, not a mismatch.
    diagnosis_ok = not auth.diagnoses or not request.diagnosis_codes or any(
        diagnosis_matches(code, auth.diagnoses) for code in request.diagnosis_codes)
    site_ok = not auth.site_of_care or not request.site_of_care \
        or auth.site_of_care == request.site_of_care
    return {
        "auth_status_ok": auth.status in USABLE_STATUSES,
        "auth_window": window,
        "auth_drug_matches": request.hcpcs in (auth.hcpcs or ()),
        "auth_diagnosis_matches": diagnosis_ok,
        "auth_site_matches": site_ok,
    }


def _problems(auth: Authorization, facts: dict[str, Any], units_needed: int | None) -> int:
    mismatches = sum(1 for key, ok in facts.items() if key != "auth_window" and not ok)
    used_up = (auth.remaining_visits == 0) + (
        units_needed is not None and auth.remaining_units is not None
        and auth.remaining_units < units_needed)
    return mismatches + (facts["auth_window"] != "within") + used_up


def _choose_authorization(request: EligibilityRequest, patient: Patient | None,
                          context: StoredContext, units_needed: int | None,
                          required: bool) -> tuple[Authorization | None, dict[str, Any]]:
    """The authorization this infusion would draw on.

    Without a number: the one that fully matches (and still has the units and a visit), else,
    when the policy requires one, the nearest candidate, so its findings say why it does not
    do. When no authorization is required only a full match is shown, never a stranger's.
    """
    if request.authorization_number:
        auth = context.by_number[request.authorization_number]
        return auth, _auth_problems(auth, request)
    payer_id = context.payer_ids.get(request.payer)
    if patient is None or payer_id is None:
        return None, {}
    candidates = context.authorizations.get((patient.id, payer_id), [])
    ranked = sorted(
        ((_problems(auth, facts, units_needed), not facts["auth_drug_matches"],
          facts["auth_window"] != "within", -auth.valid_to.toordinal(), auth.number, auth, facts)
         for auth in candidates
         for facts in [_auth_problems(auth, request)]),
        key=lambda row: row[:5],
    )
    if not ranked or (not required and ranked[0][0]):
        return None, {}
    return ranked[0][5], ranked[0][6]


def _dose_words(dose_mg: Decimal | None, case: dict[str, Any], policy: PolicyView,
                weight: Decimal | None) -> dict[str, str]:
    """The dose and the policy's limit in words, for the DOSE_EXCEEDS_LIMIT message."""
    words: dict[str, str] = {}
    if dose_mg is not None:
        units = case.get("administered_units")
        words["dose_summary"] = f"{_plain_number(dose_mg)} mg" + (
            f" ({units} units)" if units is not None else "")
    limits = []
    if policy.max_dose_mg is not None:
        limits.append(f"{_plain_number(policy.max_dose_mg)} mg")
    if policy.max_dose_mg_per_kg is not None:
        per_kg = f"{_plain_number(policy.max_dose_mg_per_kg)} mg/kg"
        if weight is not None:
            total = _plain_number(policy.max_dose_mg_per_kg * Decimal(weight))
            per_kg = f"{total} mg ({per_kg} at {_plain_number(weight)} kg)"
        limits.append(per_kg)
    if policy.max_dose_units is not None:
        limits.append(f"{policy.max_dose_units} units")
    if limits:
        words["dose_limit"] = " and ".join(limits)
    return words


def _age_range(min_age: int | None, max_age: int | None) -> str:
    if min_age is not None and max_age is not None:
        return f"{min_age} to {max_age}"
    return f"{min_age} and over" if min_age is not None else f"up to {max_age}"


@dataclass
class BuiltCase:
    """The case fact for the engine, and what is needed to explain and bill it."""

    case: dict[str, Any]
    context: dict[str, Any]
    policy: PolicyView | None
    drug: DrugView
    billing: Any
    authorization: Authorization | None


def build_case(request: EligibilityRequest, index: PolicyIndex,
               context: StoredContext) -> BuiltCase:
    """Derive every fact of one eligibility case from the request and stored data."""
    _validate_references(request, index, context)
    config = current_app.config
    day = request.date_of_service
    drug = index.drugs[request.hcpcs]
    payer = index.payers[request.payer]
    patient = context.patients.get(request.patient_id)
    policy = index.policy_for(request.payer, request.hcpcs, day)
    therapies = _therapies(request, patient)
    birth_date = request.birth_date or (patient.birth_date if patient else None)
    weight = request.weight_kg or (patient.weight_kg if patient else None)
    missing: list[str] = []
    case: dict[str, Any] = {"policy_found": policy is not None}
    explain: dict[str, Any] = {
        "product": drug.hcpcs, "drug_label": f"{drug.generic} ({drug.hcpcs})",
        "payer_name": payer.name,
        "diagnosis_codes": ", ".join(request.diagnosis_codes) or "none given",
        "site_of_care": (request.site_of_care or "not given").replace("_", " "),
        "date_of_service": day.isoformat(),
    }

    dose_mg: Decimal | None = request.dose_mg
    if dose_mg is None and request.dose_mg_per_kg is not None:
        if weight is None:
            missing.append("weight_kg (the dose is in mg/kg)")
        else:
            dose_mg = (request.dose_mg_per_kg * Decimal(weight)).quantize(
                Decimal("0.001"), rounding=ROUND_HALF_UP)

    billing = None
    if dose_mg is not None and drug.billing_unit == "mg":
        given = [PackageCount(amount, count) for amount, count in request.packages or []]
        try:
            billing = drug_billing(
                drug.hcpcs, dose_mg, drug.billing_unit_amount,
                [Package(p.amount, p.single_dose, p.unit) for p in drug.packages],
                packages_used=given or None, payer_uses_jw_jz=payer.requires_jw_jz,
                date_of_service=day)
        except ValueError as exc:
            # The vials given do not cover the dose, or are sizes the drug does not come in.
            raise Invalid({"packages" if given else "dose": [str(exc)]}) from None
        case["administered_units"] = billing.administered_units
        case["dose_units"] = billing.administered_units
        explain["dose_mg"] = _plain_number(dose_mg)

    if policy is not None:
        explain.update({
            "policy_label": policy.label,
            "covered_diagnoses": ", ".join(policy.covered_diagnoses),
            "preferred_products": ", ".join(policy.preferred_products),
            "allowed_sites": ", ".join(s.replace("_", " ") for s in policy.sites_of_care),
        })
        case["prior_auth_required"] = policy.prior_auth_required
        if policy.covered_diagnoses:
            if request.diagnosis_codes:
                case["diagnosis_covered"] = any(
                    diagnosis_matches(code, policy.covered_diagnoses)
                    for code in request.diagnosis_codes)
            else:
                missing.append("diagnosis_codes")
        if policy.steps:
            case["step_therapy_required"] = True
            met = [_step_met(step, therapies, day, index) for step in policy.steps]
            case["step_therapy_met"] = all(met)
            explain["step_therapy_summary"] = "; ".join(
                f"{step.count} of {', '.join(step.any_of)} for {step.min_days}+ days"
                for step, ok in zip(policy.steps, met, strict=True) if not ok) or "met"
        lookback = policy.new_starts_only_lookback_days
        names = index.names_for(drug.hcpcs)
        last_dose = context.last_doses.get((patient.id, drug.hcpcs)) if patient else None
        last_dose = max(filter(None, [last_dose, request.last_dose_date]), default=None)
        case["new_start_exempt"] = bool(lookback) and _received_within(
            therapies, names, day, lookback, last_dose)
        if policy.preferred_products:
            case["product_preferred"] = drug.hcpcs in policy.preferred_products
        if policy.sites_of_care:
            if request.site_of_care:
                case["site_allowed"] = request.site_of_care in policy.sites_of_care
            else:
                missing.append("site_of_care")
        limits = []
        if policy.max_dose_mg is not None:
            limits.append(policy.max_dose_mg)
        if policy.max_dose_mg_per_kg is not None:
            if weight is None:
                missing.append("weight_kg (the policy limits mg/kg)")
            else:
                limits.append(policy.max_dose_mg_per_kg * Decimal(weight))
        if limits and dose_mg is not None:
            case["dose_mg"] = _plain_number(dose_mg)
            case["max_dose_mg"] = _plain_number(min(limits).quantize(Decimal("0.001")))
        if policy.max_dose_units is not None and "dose_units" in case:
            case["max_dose_units"] = policy.max_dose_units
        else:
            case.pop("dose_units", None)
        explain.update(_dose_words(dose_mg, case, policy, weight))
        if policy.min_days_between_doses is not None and last_dose is not None and last_dose < day:
            case["days_since_last_dose"] = (day - last_dose).days
            case["min_days_between_doses"] = policy.min_days_between_doses
        if policy.min_age is not None or policy.max_age is not None:
            if birth_date is None:
                missing.append("birth_date (the policy has an age limit)")
            else:
                case["age"] = _age_on(birth_date, day)
                explain["age_range"] = _age_range(policy.min_age, policy.max_age)
                if policy.min_age is not None:
                    case["min_age"] = policy.min_age
                if policy.max_age is not None:
                    case["max_age"] = policy.max_age
    else:
        case.pop("dose_units", None)

    required = policy is None or policy.prior_auth_required
    auth, auth_facts = _choose_authorization(request, patient, context,
                                             case.get("administered_units"), required)
    case["auth_found"] = auth is not None
    if auth is not None:
        case.update(auth_facts)
        explain.update({"auth_number": auth.number, "auth_status": auth.status,
                        "auth_valid_from": auth.valid_from.isoformat(),
                        "auth_valid_to": auth.valid_to.isoformat(),
                        "auth_hcpcs": ", ".join(auth.hcpcs or ()),
                        "auth_diagnoses": ", ".join(auth.diagnoses or ()),
                        "auth_site_of_care": (auth.site_of_care or "any").replace("_", " ")})
        if auth.approved_units is not None:
            case["auth_remaining_units"] = auth.remaining_units
            case["auth_remaining_fraction"] = round(
                auth.remaining_units / auth.approved_units, 4) if auth.approved_units else 0.0
            case["auth_units_low_fraction"] = float(config["AUTH_UNITS_LOW_FRACTION"])
        if auth.approved_visits is not None:
            case["auth_remaining_visits"] = auth.remaining_visits
        if auth_facts["auth_window"] == "within":
            case["auth_days_to_expiry"] = (auth.valid_to - day).days
            case["auth_expiring_soon_days"] = int(config["AUTH_EXPIRING_SOON_DAYS"])

    if missing:
        missing = list(dict.fromkeys(missing))
        case["missing_information"] = True
        case["missing"] = ", ".join(missing)
        explain["missing"] = case["missing"]
    return BuiltCase(case, explain, policy, drug, billing, auth)


RULE_BY_CODE = {rule["code"]: rule for rule in RULES if rule.get("code")}


def finding_message(code: str, case: dict[str, Any], explain: dict[str, Any]) -> str:
    """Return the message of a fired eligibility rule, filled from the case and explanation."""
    return render_message(RULE_BY_CODE[code], {**case, **explain})


def decide(findings: Sequence[dict[str, Any]]) -> str:
    """Return the decision for a set of findings (the contract's order of precedence)."""
    blocking = {f["code"] for f in findings if f["severity"] == "block"}
    if blocking & COVERAGE_CODES:
        return "not_eligible"
    if "MISSING_INFORMATION" in blocking or any(f["code"] == "NO_POLICY" for f in findings):
        return "needs_information"
    if any(code.startswith("AUTH_") for code in blocking):
        return "needs_authorization"
    return "eligible"


def explain_result(built: BuiltCase, fired: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Turn fired rules into the response: decision, findings, billing, authorization."""
    policy = built.policy
    policy_ref = {"id": policy.code, "version": policy.number, "source": policy.source} \
        if policy else None
    findings = sorted(
        ({"code": f["code"], "severity": f["severity"], "rule": f["rule"],
          "message": finding_message(f["code"], built.case, built.context),
          "policy": policy_ref if f["code"] in POLICY_SOURCED_CODES else None}
         for f in fired),
        key=lambda f: (SEVERITY_ORDER.get(f["severity"], 9), f["code"]),
    )
    billing = None
    if built.billing is not None:
        billing = {
            "administered_units": built.billing.administered_units,
            "discarded_units": built.billing.discarded_units,
            "lines": [{"code": line.code, "units": line.units, "modifiers": list(line.modifiers)}
                      for line in built.billing.lines],
        }
    auth = built.authorization
    return {
        "decision": decide(findings),
        "findings": findings,
        "billing": billing,
        "authorization": {
            "number": auth.number, "status": auth.status,
            "remaining_units": auth.remaining_units, "remaining_visits": auth.remaining_visits,
            "valid_from": auth.valid_from.isoformat(), "valid_to": auth.valid_to.isoformat(),
        } if auth else None,
        "policy": {"id": policy.code, "version": policy.number, "source": policy.source,
                   "effective_from": policy.effective_from.isoformat()} if policy else None,
    }


def check_one(request: EligibilityRequest, index: PolicyIndex,
              context: StoredContext) -> dict[str, Any]:
    """Evaluate one request against already-loaded data."""
    built = build_case(request, index, context)
    return explain_result(built, evaluate("eligibility", built.case))


def check_eligibility(request: EligibilityRequest) -> dict[str, Any]:
    """Check one planned treatment."""
    return check_batch([request])[0]


def check_batch(requests: Sequence[EligibilityRequest | Invalid]) -> list[dict[str, Any] | Invalid]:
    """Check many planned treatments with a few queries; a bad item does not fail the others.

    Items that failed to load arrive as ``Invalid`` and are returned as they are; an item whose
    references are bad (unknown payer, drug or authorization) comes back as ``Invalid`` too.
    """
    index = index_cache.current()
    good = [r for r in requests if isinstance(r, EligibilityRequest)]
    context = load_context(good, index)
    results: list[dict[str, Any] | Invalid] = []
    for request in requests:
        if isinstance(request, Invalid):
            results.append(request)
            continue
        try:
            results.append(check_one(request, index, context))
        except Invalid as exc:
            results.append(exc)
    decisions = Counter("error" if isinstance(r, Invalid) else r["decision"] for r in results)
    log.info("eligibility_checked", items=len(results), decisions=dict(decisions))
    return results
