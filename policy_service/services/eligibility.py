"""Eligibility: can this planned infusion go ahead? Builds one case, evaluates the rules.

The flow of one check: look up the policy version in effect on the date of service (from the
in-memory index), the patient's history and the authorization it would draw on (loaded for a
whole batch in a few queries), derive every fact in plain Python, evaluate the eligibility
ruleset once, then turn findings into a decision (from the rules' categories), billing lines and
an explanation.

Each rule family has its own small fact builder (``_diagnosis_facts``, ``_step_therapy_facts``,
... ``_authorization_facts``); ``build_case`` runs them in turn. ``assess`` is the one public
check of a request that the API, the claim check, appointments and CDS Hooks all call.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from flask import current_app
from sqlalchemy import Integer, String, bindparam, func, literal, null, or_, select, union_all

from policy_service.billing.units import DrugBilling, Package, PackageCount, drug_billing
from policy_service.database import PreparedRead, in_slices
from policy_service.domain.documentation import (
    ChecklistEntry,
    DocumentOnFile,
    DocumentStatus,
    checklist,
    describe_item,
)
from policy_service.domain.fields import field_words
from policy_service.domain.icd10 import diagnosis_matches, not_billable_text
from policy_service.domain.requests import EligibilityRequest, TherapyFact
from policy_service.engine import evaluate
from policy_service.errors import Invalid
from policy_service.extensions import db
from policy_service.logging import get_logger
from policy_service.models import (
    Authorization,
    AuthorizationUsage,
    Patient,
    PatientDocument,
    Payer,
    Therapy,
)
from policy_service.models.authorization import USABLE_STATUSES, UnitsLeft
from policy_service.services.policy_index import (
    DrugView,
    PayerView,
    PolicyIndex,
    PolicyView,
    index_cache,
)
from policy_service.services.provider_facts import (
    pharmacy_supplied,
    prescriber_specialty,
    rendering_enrollment,
)
from rulesets import render_message
from rulesets.eligibility import RULESET
from rulesets.vocabulary import Decision, decide

# Outcomes that satisfy a step whatever the trial's length: the drug could not be given longer.
OUTCOMES_WITHOUT_MIN_DAYS = frozenset({"intolerance", "contraindication"})

log = get_logger("eligibility")


@dataclass(frozen=True, slots=True)
class PatientRecord:
    """A stored patient as the checks read it: plain values, detached from the session."""

    id: int
    external_id: str
    birth_date: dt.date | None
    weight_kg: Decimal | None
    therapies: tuple[TherapyFact, ...]
    documents: tuple[DocumentOnFile, ...]


@dataclass(frozen=True, slots=True)
class AuthorizationRecord(UnitsLeft):
    """A stored authorization as the checks read it: plain values, detached from the session."""

    id: int
    number: str
    patient_id: int
    payer_id: int
    hcpcs: tuple[str, ...]
    status: str
    approved_units: int | None
    approved_visits: int | None
    used_units: int
    used_visits: int
    valid_from: dt.date
    valid_to: dt.date
    diagnoses: tuple[str, ...]
    site_of_care: str | None


@dataclass
class StoredContext:
    """What a batch loaded from the database, keyed for the checks."""

    patients: dict[str, PatientRecord]
    authorizations: dict[tuple[int, int], list[AuthorizationRecord]]
    by_number: dict[str, AuthorizationRecord]
    last_doses: dict[tuple[int, str], dt.date]
    payer_ids: dict[str, int]


def _plain_number(value: Decimal | int | float) -> int | float:
    value = Decimal(value)
    return int(value) if value == value.to_integral_value() else float(value)


def _age_on(birth_date: dt.date, day: dt.date) -> int:
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))


# The context queries are built once (building a statement cost as much as running it) and
# select plain columns of the tables: no objects to hydrate or track. Each comes in two forms:
# for a batch, IN lists of up to ``_IN_LIMIT`` keys; for one request (every API check and
# appointment), single keys run as prepared reads. Both flush pending changes first, as an
# ORM query would, so a check inside a writing transaction sees its own writes.
_patients, _therapies_table = Patient.__table__, Therapy.__table__
_documents, _authorizations = PatientDocument.__table__, Authorization.__table__
_usages = AuthorizationUsage.__table__


def _patients_query(chosen: Any) -> Any:
    """Each chosen patient with their therapies and documents on file, in one round trip: a
    therapy row names its drug, start, end and outcome; a document row its code and date."""
    return union_all(
        select(_patients.c.id, _patients.c.external_id, _patients.c.birth_date,
               _patients.c.weight_kg, literal("therapy").label("kind"),
               _therapies_table.c.drug.label("name"), _therapies_table.c.start.label("day"),
               _therapies_table.c.end, _therapies_table.c.outcome)
        .outerjoin(_therapies_table, _therapies_table.c.patient_id == _patients.c.id)
        .where(chosen),
        select(_patients.c.id, _patients.c.external_id, _patients.c.birth_date,
               _patients.c.weight_kg, literal("document"), _documents.c.code,
               _documents.c.on_date, null(), null())
        .join(_documents, _documents.c.patient_id == _patients.c.id)
        .where(chosen),
    )


# The last non-voided use of each authorization, in the same query (a correlated subquery on
# the usage table's authorization_id index), not one more round trip.
_LAST_USE = (
    select(func.max(_usages.c.date_of_service))
    .where(_usages.c.authorization_id == _authorizations.c.id, _usages.c.voided_at.is_(None))
    .correlate(_authorizations).scalar_subquery()
)


def _authorizations_query(chosen: Any) -> Any:
    """The chosen authorizations, each with the date of its last recorded use."""
    return select(
        _authorizations.c.id, _authorizations.c.number, _authorizations.c.patient_id,
        _authorizations.c.payer_id, _authorizations.c.hcpcs, _authorizations.c.status,
        _authorizations.c.approved_units, _authorizations.c.approved_visits,
        _authorizations.c.used_units, _authorizations.c.used_visits,
        _authorizations.c.valid_from, _authorizations.c.valid_to,
        _authorizations.c.diagnoses, _authorizations.c.site_of_care, _LAST_USE,
    ).where(chosen)


_PATIENTS = _patients_query(
    _patients.c.external_id.in_(bindparam("external_ids", expanding=True)))
_AUTHORIZATIONS = _authorizations_query(or_(
    _authorizations.c.patient_id.in_(bindparam("patient_ids", expanding=True)),
    _authorizations.c.number.in_(bindparam("numbers", expanding=True)),
))
_ONE_PATIENT = PreparedRead(_patients_query(
    _patients.c.external_id == bindparam("external_id", type_=String)))
# A request without an authorization number passes None: ``number = NULL`` matches nothing.
_ONE_PATIENTS_AUTHORIZATIONS = PreparedRead(_authorizations_query(or_(
    _authorizations.c.patient_id == bindparam("patient_id", type_=Integer),
    _authorizations.c.number == bindparam("number", type_=String),
)))


def _execute(statement: Any, params: dict[str, Any]) -> Any:
    if db.session.autoflush:
        db.session.flush()
    return db.session.connection().execute(statement, params)


def _patient_rows(external_ids: set[str]) -> Iterator[Any]:
    if len(external_ids) == 1:
        [external_id] = external_ids
        yield from _ONE_PATIENT.rows(external_id=external_id)
        return
    for part in in_slices(external_ids):
        yield from _execute(_PATIENTS, {"external_ids": part})


def _authorization_rows(patient_ids: set[int], numbers: set[str]) -> Iterator[Any]:
    if not patient_ids and not numbers:
        return
    if len(patient_ids) <= 1 and len(numbers) <= 1:
        yield from _ONE_PATIENTS_AUTHORIZATIONS.rows(
            patient_id=next(iter(patient_ids), None), number=next(iter(numbers), None))
        return
    id_parts = list(in_slices(patient_ids))
    number_parts = list(in_slices(numbers))
    for i in range(max(len(id_parts), len(number_parts))):
        yield from _execute(_AUTHORIZATIONS, {
            "patient_ids": id_parts[i] if i < len(id_parts) else [],
            "numbers": number_parts[i] if i < len(number_parts) else []})


def _load_patients(external_ids: set[str]) -> dict[str, PatientRecord]:
    found: dict[str, tuple[Any, ...]] = {}
    therapies: dict[str, list[TherapyFact]] = defaultdict(list)
    documents: dict[str, list[DocumentOnFile]] = defaultdict(list)
    for (patient_id, external_id, birth_date, weight, kind, name, day, end,
         outcome) in _patient_rows(external_ids):
        found[external_id] = (patient_id, birth_date, weight)
        if name is None:
            continue
        if kind == "therapy":
            therapies[external_id].append(TherapyFact(name, day, end, outcome))
        else:
            documents[external_id].append(DocumentOnFile(name, day))
    # In the order the patient's relationships keep them.
    return {external_id: PatientRecord(
        patient_id, external_id, birth_date, weight,
        tuple(sorted(therapies[external_id], key=lambda t: (t.start, t.drug))),
        tuple(sorted(documents[external_id], key=lambda d: (d.code, d.on))))
        for external_id, (patient_id, birth_date, weight) in found.items()}


def _authorization(row: Any) -> AuthorizationRecord:
    (auth_id, number, patient_id, payer_id, hcpcs, status, approved_units, approved_visits,
     used_units, used_visits, valid_from, valid_to, diagnoses, site_of_care) = row
    return AuthorizationRecord(
        auth_id, number, patient_id, payer_id, tuple(hcpcs or ()), status, approved_units,
        approved_visits, used_units or 0, used_visits or 0, valid_from, valid_to,
        tuple(diagnoses or ()), site_of_care)


def load_context(requests: Sequence[EligibilityRequest],
                 index: PolicyIndex | None = None) -> StoredContext:
    """Load patients, authorizations and last doses for a whole batch in a few queries.

    Two queries, whatever the batch size (up to 2,000 patients each): patients with their
    therapy history (joined), and the authorizations each with the date of its last recorded
    use. Payer ids come from the policy index when given (it already decides which payers
    exist), else from one query.
    """
    numbers = {r.authorization_number for r in requests if r.authorization_number}
    patients = _load_patients({r.patient_id for r in requests})
    if index is not None:
        payer_ids = index.payer_ids
    else:
        payer_codes = {r.payer for r in requests}
        payer_ids = dict(db.session.execute(
            select(Payer.code, Payer.id).where(Payer.code.in_(payer_codes))).tuples().all())
    internal_ids = {p.id for p in patients.values()}
    authorizations: dict[tuple[int, int], list[AuthorizationRecord]] = defaultdict(list)
    by_number: dict[str, AuthorizationRecord] = {}
    last_doses: dict[tuple[int, str], dt.date] = {}
    for row in _authorization_rows(internal_ids, numbers):
        auth, day = _authorization(row[:-1]), row[-1]
        if auth.number in by_number:
            continue  # matched by patient in one slice and by number in another
        authorizations[(auth.patient_id, auth.payer_id)].append(auth)
        by_number[auth.number] = auth
        if day is None or auth.patient_id not in internal_ids:
            continue
        for code in auth.hcpcs:
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


def _therapies(request: EligibilityRequest, patient: PatientRecord | None) -> list[TherapyFact]:
    stored = list(patient.therapies) if patient else []
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


def _auth_problems(auth: AuthorizationRecord, request: EligibilityRequest) -> dict[str, Any]:
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


def _problems(auth: AuthorizationRecord, facts: dict[str, Any], units_needed: int | None) -> int:
    mismatches = sum(1 for key, ok in facts.items() if key != "auth_window" and not ok)
    used_up = (auth.remaining_visits == 0) + (
        units_needed is not None and auth.remaining_units is not None
        and auth.remaining_units < units_needed)
    return mismatches + (facts["auth_window"] != "within") + used_up


def _choose_authorization(request: EligibilityRequest, patient: PatientRecord | None,
                          context: StoredContext, units_needed: int | None,
                          required: bool) -> tuple[AuthorizationRecord | None, dict[str, Any]]:
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


@dataclass(frozen=True)
class MissingFact:
    """A fact the policy needs that the request and the stored data do not give."""

    field: str
    reason: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        """Return the fact as the API shows it: the request field and why it is needed."""
        return {"field": self.field, "reason": self.reason}

    def __str__(self) -> str:
        words = field_words(self.field)
        return f"{words} ({self.reason})" if self.reason else words


@dataclass
class CaseInputs:
    """What the fact builders read: the request and everything looked up for it."""

    request: EligibilityRequest
    index: PolicyIndex
    context: StoredContext
    drug: DrugView
    payer: PayerView
    patient: PatientRecord | None
    policy: PolicyView | None
    therapies: list[TherapyFact]
    birth_date: dt.date | None
    weight: Decimal | None
    dose_mg: Decimal | None = None
    last_dose: dt.date | None = None

    @property
    def day(self) -> dt.date:
        """The date of service."""
        return self.request.date_of_service


@dataclass
class CaseParts:
    """What the fact builders produce: case fields, message context and missing facts."""

    case: dict[str, Any]
    explain: dict[str, Any]
    missing: list[MissingFact] = field(default_factory=list)
    checklist: list[ChecklistEntry] = field(default_factory=list)

    def need(self, name: str, reason: str | None = None) -> None:
        """Note a missing fact (once)."""
        fact = MissingFact(name, reason)
        if fact not in self.missing:
            self.missing.append(fact)


def _inputs(request: EligibilityRequest, index: PolicyIndex,
            context: StoredContext) -> CaseInputs:
    """Look up the drug, payer, patient, policy and history a request refers to."""
    patient = context.patients.get(request.patient_id)
    return CaseInputs(
        request=request, index=index, context=context,
        drug=index.drugs[request.hcpcs], payer=index.payers[request.payer], patient=patient,
        policy=index.policy_for(request.payer, request.hcpcs, request.date_of_service),
        therapies=_therapies(request, patient),
        birth_date=request.birth_date or (patient.birth_date if patient else None),
        weight=request.weight_kg or (patient.weight_kg if patient else None),
    )


def _request_words(inputs: CaseInputs) -> dict[str, Any]:
    """The request in words, for every message."""
    request, drug = inputs.request, inputs.drug
    return {
        "product": drug.hcpcs, "drug_label": f"{drug.generic} ({drug.hcpcs})",
        "payer_name": inputs.payer.name,
        "diagnosis_codes": ", ".join(request.diagnosis_codes) or "none given",
        "site_of_care": (request.site_of_care or "not given").replace("_", " "),
        "date_of_service": inputs.day.isoformat(),
    }


def _planned_dose(inputs: CaseInputs, parts: CaseParts) -> None:
    """The dose in mg: as given, or mg/kg times the patient's weight."""
    request = inputs.request
    inputs.dose_mg = request.dose_mg
    if inputs.dose_mg is None and request.dose_mg_per_kg is not None:
        if inputs.weight is None:
            parts.need("weight_kg", "the dose is in mg/kg")
        else:
            inputs.dose_mg = (request.dose_mg_per_kg * Decimal(inputs.weight)).quantize(
                Decimal("0.001"), rounding=ROUND_HALF_UP)


def _drug_unit_facts(inputs: CaseInputs, parts: CaseParts) -> DrugBilling | None:
    """Drug units: the billing units and package lines for the dose (mg-billed drugs)."""
    drug, dose_mg = inputs.drug, inputs.dose_mg
    if dose_mg is None or drug.billing_unit != "mg":
        return None
    given = [PackageCount(amount, count) for amount, count in inputs.request.packages or []]
    try:
        billing = drug_billing(
            drug.hcpcs, dose_mg, drug.billing_unit_amount,
            [Package(p.amount, p.single_dose, p.unit) for p in drug.packages],
            packages_used=given or None, payer_uses_jw_jz=inputs.payer.requires_jw_jz,
            date_of_service=inputs.day)
    except ValueError as exc:
        # The vials given do not cover the dose, or are sizes the drug does not come in.
        raise Invalid({"packages" if given else "dose": [str(exc)]}) from None
    parts.case["administered_units"] = billing.administered_units
    parts.explain["dose_mg"] = _plain_number(dose_mg)
    return billing


def _policy_words(policy: PolicyView) -> dict[str, str]:
    """The policy in words, for the coverage messages."""
    return {
        "policy_label": policy.label,
        "covered_diagnoses": ", ".join(policy.covered_diagnoses),
        "preferred_products": ", ".join(policy.preferred_products),
        "allowed_sites": ", ".join(s.replace("_", " ") for s in policy.sites_of_care),
    }


def _diagnosis_facts(inputs: CaseInputs, parts: CaseParts) -> None:
    """Diagnosis: billable codes, and covered by the policy's families."""
    codes = inputs.request.diagnosis_codes
    if codes:
        not_billable = not_billable_text(codes)
        parts.case["diagnosis_billable"] = not not_billable
        if not_billable:
            parts.explain["not_billable"] = not_billable
    policy = inputs.policy
    if policy is None or not policy.covered_diagnoses:
        return
    if not codes:
        parts.need("diagnosis_codes")
        return
    parts.case["diagnosis_covered"] = any(
        diagnosis_matches(code, policy.covered_diagnoses) for code in codes)


def _step_therapy_facts(inputs: CaseInputs, parts: CaseParts, policy: PolicyView) -> None:
    """Step therapy: every step documented, or the patient exempt as already on the drug."""
    if policy.steps:
        parts.case["step_therapy_required"] = True
        met = [_step_met(step, inputs.therapies, inputs.day, inputs.index)
               for step in policy.steps]
        parts.case["step_therapy_met"] = all(met)
        parts.explain["step_therapy_summary"] = "; ".join(
            f"{step.count} of {', '.join(step.any_of)} for {step.min_days}+ days"
            for step, ok in zip(policy.steps, met, strict=True) if not ok) or "met"
    lookback = policy.new_starts_only_lookback_days
    names = inputs.index.names_for(inputs.drug.hcpcs)
    parts.case["new_start_exempt"] = bool(lookback) and _received_within(
        inputs.therapies, names, inputs.day, lookback, inputs.last_dose)


def _product_facts(inputs: CaseInputs, parts: CaseParts, policy: PolicyView) -> None:
    """Product: the requested product is one the policy prefers."""
    if policy.preferred_products:
        parts.case["product_preferred"] = inputs.drug.hcpcs in policy.preferred_products


def _site_facts(inputs: CaseInputs, parts: CaseParts, policy: PolicyView) -> None:
    """Site of care: the requested site is one the policy allows."""
    if not policy.sites_of_care:
        return
    if inputs.request.site_of_care:
        parts.case["site_allowed"] = inputs.request.site_of_care in policy.sites_of_care
    else:
        parts.need("site_of_care")


def _dose_facts(inputs: CaseInputs, parts: CaseParts, policy: PolicyView) -> None:
    """Dose: the planned mg and units against the policy's limits."""
    limits = []
    if policy.max_dose_mg is not None:
        limits.append(policy.max_dose_mg)
    if policy.max_dose_mg_per_kg is not None:
        if inputs.weight is None:
            parts.need("weight_kg", "the policy limits mg/kg")
        else:
            limits.append(policy.max_dose_mg_per_kg * Decimal(inputs.weight))
    if limits and inputs.dose_mg is not None:
        parts.case["dose_mg"] = _plain_number(inputs.dose_mg)
        parts.case["max_dose_mg"] = _plain_number(min(limits).quantize(Decimal("0.001")))
    units = parts.case.get("administered_units")
    if policy.max_dose_units is not None and units is not None:
        parts.case["dose_units"] = units
        parts.case["max_dose_units"] = policy.max_dose_units
    parts.explain.update(_dose_words(inputs.dose_mg, units, policy, inputs.weight))


def _dose_words(dose_mg: Decimal | None, units: int | None, policy: PolicyView,
                weight: Decimal | None) -> dict[str, str]:
    """The dose and the policy's limit in words, for the DOSE_EXCEEDS_LIMIT message."""
    words: dict[str, str] = {}
    if dose_mg is not None:
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


def _interval_facts(inputs: CaseInputs, parts: CaseParts, policy: PolicyView) -> None:
    """Interval: days since the last dose against the policy's minimum."""
    last_dose, day = inputs.last_dose, inputs.day
    if policy.min_days_between_doses is not None and last_dose is not None and last_dose < day:
        parts.case["days_since_last_dose"] = (day - last_dose).days
        parts.case["min_days_between_doses"] = policy.min_days_between_doses


def _age_facts(inputs: CaseInputs, parts: CaseParts, policy: PolicyView) -> None:
    """Age: the patient's age on the date of service against the policy's limits."""
    if policy.min_age is None and policy.max_age is None:
        return
    if inputs.birth_date is None:
        parts.need("birth_date", "the policy has an age limit")
        return
    parts.case["age"] = _age_on(inputs.birth_date, inputs.day)
    parts.explain["age_range"] = _age_range(policy.min_age, policy.max_age)
    if policy.min_age is not None:
        parts.case["min_age"] = policy.min_age
    if policy.max_age is not None:
        parts.case["max_age"] = policy.max_age


def _age_range(min_age: int | None, max_age: int | None) -> str:
    if min_age is not None and max_age is not None:
        return f"{min_age} to {max_age}"
    return f"{min_age} and over" if min_age is not None else f"up to {max_age}"


def _last_dose(inputs: CaseInputs) -> dt.date | None:
    """The last dose of this drug: from recorded authorization use or the request."""
    patient = inputs.patient
    stored = inputs.context.last_doses.get((patient.id, inputs.drug.hcpcs)) if patient else None
    return max(filter(None, [stored, inputs.request.last_dose_date]), default=None)


def _supply_facts(inputs: CaseInputs, parts: CaseParts, policy: PolicyView) -> None:
    """Drug supply: how the practice plans to get the drug against what the policy allows."""
    parts.case["policy_drug_supply"] = policy.drug_supply
    parts.case["drug_supply"] = inputs.request.drug_supply


def _prescriber_facts(inputs: CaseInputs, parts: CaseParts, policy: PolicyView) -> None:
    """Prescriber: their specialty on file against the specialties the policy requires."""
    if not policy.prescriber_specialties:
        return
    request = inputs.request
    judged = prescriber_specialty(inputs.index, request.prescriber_npi, policy)
    parts.explain["prescriber_specialties"] = ", ".join(policy.prescriber_specialties)
    parts.explain["prescriber"] = judged.words
    if judged.covered is None:
        parts.need("ordering_npi" if request.ordering_npi else "rendering_npi",
                   judged.missing_reason)
    else:
        parts.case["prescriber_specialty_covered"] = judged.covered


def _provider_facts(inputs: CaseInputs, parts: CaseParts) -> None:
    """Rendering provider: enrolled with the payer on the date of service (when one is named)."""
    npi = inputs.request.rendering_npi
    if npi is None:
        return
    enrollment = rendering_enrollment(inputs.index, npi, inputs.request.payer, inputs.day)
    parts.case["rendering_enrollment"] = enrollment.state
    parts.explain["enrollment"] = enrollment.words


# The coverage families, in the order their facts (and missing facts) are reported.
def _documentation_facts(inputs: CaseInputs, parts: CaseParts, policy: PolicyView) -> None:
    """Documentation: the policy's checklist against what is on file on the date of service."""
    if not policy.documentation:
        return
    on_file = [*inputs.request.documentation_on_file,
               *(inputs.patient.documents if inputs.patient else ())]
    parts.checklist = checklist(policy.documentation, on_file, inputs.day)
    lacking = [entry for entry in parts.checklist if entry.status != DocumentStatus.ON_FILE]
    parts.case["documentation_missing"] = len(lacking)
    if lacking:
        parts.explain["missing_documentation"] = "; ".join(
            describe_item(entry.item) + (" (out of date)"
                                         if entry.status == DocumentStatus.OUT_OF_DATE else "")
            for entry in lacking)


POLICY_FACTS = (_step_therapy_facts, _product_facts, _site_facts, _dose_facts, _interval_facts,
                _age_facts, _documentation_facts, _supply_facts, _prescriber_facts)


def _authorization_facts(inputs: CaseInputs, parts: CaseParts) -> AuthorizationRecord | None:
    """Authorization: the one this infusion draws on, its status, window, match and balance."""
    policy = inputs.policy
    required = policy is None or policy.prior_auth_required
    auth, auth_facts = _choose_authorization(inputs.request, inputs.patient, inputs.context,
                                             parts.case.get("administered_units"), required)
    parts.case["auth_found"] = auth is not None
    if auth is None:
        return None
    parts.case.update(auth_facts)
    parts.explain.update(_authorization_words(auth))
    _authorization_balance(auth, parts.case)
    if auth_facts["auth_window"] == "within":
        parts.case["auth_days_to_expiry"] = (auth.valid_to - inputs.day).days
        parts.case["auth_expiring_soon_days"] = int(
            current_app.config["AUTH_EXPIRING_SOON_DAYS"])
    return auth


def _authorization_words(auth: AuthorizationRecord) -> dict[str, str]:
    """The authorization in words, for its messages."""
    return {"auth_number": auth.number, "auth_status": auth.status,
            "auth_valid_from": auth.valid_from.isoformat(),
            "auth_valid_to": auth.valid_to.isoformat(),
            "auth_hcpcs": ", ".join(auth.hcpcs or ()),
            "auth_diagnoses": ", ".join(auth.diagnoses or ()),
            "auth_site_of_care": (auth.site_of_care or "any").replace("_", " ")}


def _authorization_balance(auth: AuthorizationRecord, case: dict[str, Any]) -> None:
    """The units and visits left on the authorization (only where it caps them)."""
    if auth.approved_units is not None:
        case["auth_remaining_units"] = auth.remaining_units
        case["auth_remaining_fraction"] = round(
            auth.remaining_units / auth.approved_units, 4) if auth.approved_units else 0.0
        case["auth_units_low_fraction"] = float(current_app.config["AUTH_UNITS_LOW_FRACTION"])
    if auth.approved_visits is not None:
        case["auth_remaining_visits"] = auth.remaining_visits


@dataclass
class BuiltCase:
    """The case fact for the engine, and what is needed to explain and bill it."""

    case: dict[str, Any]
    context: dict[str, Any]
    policy: PolicyView | None
    drug: DrugView
    billing: DrugBilling | None
    authorization: AuthorizationRecord | None
    missing: list[MissingFact] = field(default_factory=list)
    checklist: list[ChecklistEntry] = field(default_factory=list)
    # False when a specialty pharmacy supplies the drug: the practice bills no drug line.
    drug_billed: bool = True


def build_case(request: EligibilityRequest, index: PolicyIndex,
               context: StoredContext) -> BuiltCase:
    """Derive every fact of one eligibility case from the request and stored data."""
    _validate_references(request, index, context)
    inputs = _inputs(request, index, context)
    parts = CaseParts({"policy_found": inputs.policy is not None}, _request_words(inputs))
    _planned_dose(inputs, parts)
    billing = _drug_unit_facts(inputs, parts)
    _diagnosis_facts(inputs, parts)
    if inputs.policy is not None:
        inputs.last_dose = _last_dose(inputs)
        parts.explain.update(_policy_words(inputs.policy))
        parts.case["prior_auth_required"] = inputs.policy.prior_auth_required
        for facts in POLICY_FACTS:
            facts(inputs, parts, inputs.policy)
    _provider_facts(inputs, parts)
    auth = _authorization_facts(inputs, parts)
    if parts.missing:
        parts.case["missing_information"] = True
        parts.explain["missing"] = ", ".join(str(fact) for fact in parts.missing)
    return BuiltCase(parts.case, parts.explain, inputs.policy, inputs.drug, billing, auth,
                     parts.missing, parts.checklist,
                     drug_billed=not pharmacy_supplied(request.drug_supply, inputs.policy))


def finding_message(rule_name: str, built: BuiltCase) -> str:
    """Return the message of a fired eligibility rule, filled from the case and explanation."""
    return render_message(RULESET.rule(rule_name), {**built.case, **built.context})


def authorization_summary(auth: AuthorizationRecord) -> dict[str, Any]:
    """The authorization a check drew on, as the eligibility and claim responses show it."""
    return {
        "number": auth.number, "status": auth.status,
        "remaining_units": auth.remaining_units, "remaining_visits": auth.remaining_visits,
        "valid_from": auth.valid_from.isoformat(), "valid_to": auth.valid_to.isoformat(),
    }


def sort_findings(findings: list[dict[str, Any]]) -> None:
    """Order findings for people: blocking first, then by line (if any), then by code."""
    findings.sort(key=lambda f: (f["severity"].rank, -1 if f.get("line") is None else f["line"],
                                 f["code"]))


@dataclass
class Assessment:
    """One evaluated eligibility case: its facts, findings and decision."""

    built: BuiltCase
    findings: list[dict[str, Any]]
    decision: Decision

    def as_result(self) -> dict[str, Any]:
        """The eligibility response of the contract (POST /api/v1/eligibility)."""
        built, policy, auth = self.built, self.built.policy, self.built.authorization
        billing = None
        if built.billing is not None:
            billing = {
                "administered_units": built.billing.administered_units,
                "discarded_units": built.billing.discarded_units,
                "lines": [line.as_dict() for line in built.billing.lines]
                if built.drug_billed else [],
            }
        return {
            "decision": self.decision,
            "findings": self.findings,
            "billing": billing,
            "authorization": authorization_summary(auth) if auth else None,
            "policy": {"id": policy.code, "version": policy.number, "source": policy.source,
                       "effective_from": policy.effective_from.isoformat()} if policy else None,
            "documentation": [entry.as_dict() for entry in built.checklist],
        }


def _finding(fired: dict[str, Any], built: BuiltCase) -> dict[str, Any]:
    """One finding of the response: the fired rule's code, words and (where it applies)
    the policy it cites and the facts that are missing."""
    rule = RULESET.rule(fired["rule"])
    policy = built.policy
    finding = {**fired, "message": finding_message(rule.name, built),
               "policy": {"id": policy.code, "version": policy.number, "source": policy.source}
               if policy and rule.cites_policy else None}
    if "missing_information" in rule.reads:
        finding["missing"] = [fact.as_dict() for fact in built.missing]
    if "documentation_missing" in rule.reads:
        finding["documentation"] = [entry.as_dict() for entry in built.checklist
                                    if entry.status != DocumentStatus.ON_FILE]
    return finding


def assess(request: EligibilityRequest, index: PolicyIndex | None = None,
           context: StoredContext | None = None) -> Assessment:
    """Check one planned treatment: the public eligibility check every caller uses.

    ``index`` defaults to the current policy index (a policy test passes its own); ``context``
    to the stored data for this one request (a batch loads it once for all its requests).
    Raises ``Invalid`` when the request names an unknown payer, drug or authorization.
    """
    index = index if index is not None else index_cache.current()
    context = context if context is not None else load_context([request], index)
    built = build_case(request, index, context)
    findings = [_finding(fired, built) for fired in evaluate("eligibility", built.case)]
    sort_findings(findings)
    return Assessment(built, findings, decide(findings))


def check_batch(requests: Sequence[EligibilityRequest | Invalid],
                index: PolicyIndex | None = None) -> list[dict[str, Any] | Invalid]:
    """Check many planned treatments with a few queries; a bad item does not fail the others.

    Items that failed to load arrive as ``Invalid`` and are returned as they are; an item whose
    references are bad (unknown payer, drug or authorization) comes back as ``Invalid`` too.
    """
    index = index if index is not None else index_cache.current()
    good = [r for r in requests if isinstance(r, EligibilityRequest)]
    context = load_context(good, index)
    results: list[dict[str, Any] | Invalid] = []
    for request in requests:
        if isinstance(request, Invalid):
            results.append(request)
            continue
        try:
            results.append(assess(request, index, context).as_result())
        except Invalid as exc:
            results.append(exc)
    decisions = Counter("error" if isinstance(r, Invalid) else r["decision"] for r in results)
    log.info("eligibility_checked", items=len(results),
             decisions={str(key): n for key, n in decisions.items()})
    return results
