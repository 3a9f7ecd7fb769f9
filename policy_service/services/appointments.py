"""The stored schedule: the one write path for appointments, and their standing checks.

Each appointment keeps its last eligibility result with the revisions it was computed from:
the policy revision marker, the patient's and the authorization's revision counters (moved in
the same transaction as any change to them or their use, see policy_service.revisions) and a
fingerprint of the check logic itself. A read compares those keys with the stored revisions in
the same query that lists the appointments, and recomputes only the ones that moved, all in
one ``check_batch`` call. Revisions are read before the data a check uses, so a concurrent
change can only make a stored result look older than it is, never newer: it is never stale.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from flask import current_app
from sqlalchemy import Select, func, select, update
from sqlalchemy.orm.attributes import set_committed_value

import rulesets
from policy_service import billing, engine
from policy_service.database import in_slices
from policy_service.domain import documentation, icd10
from policy_service.domain.requests import (
    ERROR_DECISION,
    AppointmentInput,
    EligibilityRequest,
    Filters,
)
from policy_service.errors import Invalid, NotFound
from policy_service.extensions import db
from policy_service.logging import get_logger
from policy_service.models import (
    Appointment,
    Authorization,
    Patient,
    PatientDocument,
    Payer,
    Therapy,
)
from policy_service.models.appointment import APPOINTMENT_ID, APPOINTMENT_ID_RULE
from policy_service.models.authorization import remaining as remaining_of
from policy_service.services import eligibility, policy_index, provider_facts
from policy_service.services.eligibility import check_batch
from policy_service.services.policy_index import index_cache, stored_revision

log = get_logger("appointments")

# A decision that changed within this window is marked on the scheduler's list.
CHANGED_WINDOW = dt.timedelta(days=1)


@dataclass(frozen=True)
class StandingCheck:
    """An appointment's eligibility result as of now, and when its decision last changed."""

    result: dict[str, Any]
    decision: str
    checked_at: dt.datetime
    previous_decision: str | None
    decision_changed_at: dt.datetime | None
    recomputed: bool

    @property
    def units(self) -> int | None:
        """Billing units the infusion draws (None when the dose cannot be priced yet)."""
        billing_result = self.result.get("billing") or {}
        return billing_result.get("administered_units")

    @property
    def authorization_number(self) -> str | None:
        """The authorization the check draws on, if any."""
        return (self.result.get("authorization") or {}).get("number")

    def changed_since(self, moment: dt.datetime) -> bool:
        """Return whether the decision changed at or after ``moment``."""
        return self.decision_changed_at is not None and self.decision_changed_at >= moment


@dataclass(frozen=True)
class CheckedAppointment:
    """An appointment with its check as of now, and its patient's id and payer's code."""

    appointment: Appointment
    check: StandingCheck
    patient: str
    payer: str


@dataclass(frozen=True)
class Saved(CheckedAppointment):
    """An appointment after a write, and whether the write created it."""

    created: bool = False


class ItemsInvalid(Invalid):
    """Some items of a many-appointment write were bad; nothing was stored."""

    def __init__(self, by_item: dict[int, Invalid], labels: Sequence[str]) -> None:
        self.by_item = by_item
        errors = [{"field": f"{labels[i]}.{e['field']}", "message": e["message"]}
                  for i, problem in sorted(by_item.items()) for e in problem.errors]
        super().__init__(errors)


def now() -> dt.datetime:
    """The current time, naive UTC as stored."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


# --- what a stored result is keyed on ------------------------------------------------------

def _source_files(module: Any) -> list[Path]:
    path = Path(module.__file__)
    return sorted(path.parent.rglob("*.py")) if path.name == "__init__.py" else [path]


@functools.cache
def logic_fingerprint() -> str:
    """A short hash of the code that decides eligibility: a deploy that changes it moves it."""
    digest = hashlib.sha256()
    for module in (rulesets, billing, eligibility, icd10, documentation, policy_index,
                   provider_facts, engine):
        for path in _source_files(module):
            digest.update(path.read_bytes())
    # Which diagnoses are valid and billable: the code list the ICD-10-CM library ships.
    digest.update(icd10.code_list_path().read_bytes())
    return digest.hexdigest()[:16]


def _logic_key() -> str:
    config = current_app.config
    settings = f"{config['AUTH_EXPIRING_SOON_DAYS']}|{config['AUTH_UNITS_LOW_FRACTION']}"
    return hashlib.sha256(f"{logic_fingerprint()}|{settings}".encode()).hexdigest()[:16]


@dataclass
class Revisions:
    """The revisions a batch of checks is computed from, read before the data they use."""

    policy: int
    logic: str
    patients: dict[int, int]
    authorizations: dict[str, tuple[int, int]]

    @classmethod
    def read(cls, patient_ids: Iterable[int]) -> Revisions:
        """Read the policy marker and the counters of these patients and their authorizations."""
        patients: dict[int, int] = {}
        authorizations: dict[str, tuple[int, int]] = {}
        for part in in_slices(set(patient_ids)):
            for patient_id, revision in db.session.execute(
                    select(Patient.id, Patient.revision).where(Patient.id.in_(part))).tuples():
                patients[patient_id] = revision
            for number, auth_id, revision in db.session.execute(
                    select(Authorization.number, Authorization.id, Authorization.revision)
                    .where(Authorization.patient_id.in_(part))).tuples():
                authorizations[number] = (auth_id, revision)
        return cls(stored_revision(), _logic_key(), patients, authorizations)


def _is_current(appointment: Appointment, patient_revision: int,
                authorization_revision: int | None, policy: int, logic: str) -> bool:
    return (appointment.check_result is not None
            and appointment.check_policy_revision == policy
            and appointment.check_logic == logic
            and appointment.check_patient_revision == patient_revision
            and appointment.check_authorization_revision == authorization_revision)


def _stored_check(appointment: Appointment, recomputed: bool = False) -> StandingCheck:
    return StandingCheck(
        result=appointment.check_result or {}, decision=appointment.check_decision or "",
        checked_at=appointment.checked_at or now(),
        previous_decision=appointment.previous_decision,
        decision_changed_at=appointment.decision_changed_at, recomputed=recomputed)


# --- computing checks ------------------------------------------------------------------------

def _request(appointment: Appointment | AppointmentInput, patient_external_id: str,
             payer_code: str) -> EligibilityRequest:
    if isinstance(appointment, Appointment):
        packages = [(Decimal(str(p["amount"])), int(p["count"]))
                    for p in appointment.packages or []]
    else:
        packages = list(appointment.packages)
    return EligibilityRequest(
        patient_id=patient_external_id, payer=payer_code,
        date_of_service=appointment.date_of_service, hcpcs=appointment.hcpcs,
        diagnosis_codes=list(appointment.diagnosis_codes or []),
        site_of_care=appointment.site_of_care,
        dose_mg=Decimal(appointment.dose_mg) if appointment.dose_mg is not None else None,
        dose_mg_per_kg=Decimal(appointment.dose_mg_per_kg)
        if appointment.dose_mg_per_kg is not None else None,
        packages=packages or None,
        authorization_number=appointment.authorization_number,
        drug_supply=appointment.drug_supply or "buy_and_bill",
        rendering_npi=appointment.rendering_npi,
    )


def appointment_request(appointment: Appointment) -> EligibilityRequest:
    """The eligibility request a stored appointment stands for (patient and payer loaded)."""
    return _request(appointment, appointment.patient.external_id, appointment.payer.code)


def _as_result(outcome: dict[str, Any] | Invalid) -> dict[str, Any]:
    if isinstance(outcome, Invalid):
        return {"decision": ERROR_DECISION, "findings": [], "billing": None,
                "authorization": None, "policy": None, "errors": outcome.errors}
    return outcome


def _check_values(result: dict[str, Any], revisions: Revisions, patient_id: int,
                  old_decision: str | None, old_changed: tuple[str | None, dt.datetime | None],
                  moment: dt.datetime) -> dict[str, Any]:
    """The columns that store ``result`` with the revisions it was computed from."""
    number = (result.get("authorization") or {}).get("number")
    auth_id, auth_revision = revisions.authorizations.get(number, (None, None)) \
        if number else (None, None)
    previous, changed_at = old_changed
    if old_decision is not None and old_decision != result["decision"]:
        previous, changed_at = old_decision, moment
    return {
        "check_result": result, "check_decision": result["decision"],
        "check_units": (result.get("billing") or {}).get("administered_units"),
        "check_authorization_id": auth_id, "check_authorization_revision": auth_revision,
        "check_policy_revision": revisions.policy, "check_logic": revisions.logic,
        "check_patient_revision": revisions.patients.get(patient_id),
        "checked_at": moment, "previous_decision": previous, "decision_changed_at": changed_at,
    }


def _forget_loaded_facts() -> None:
    """Expire loaded patients, therapies and authorizations, so a check reads them after
    their revisions are read (a key may then be older than the data, never newer)."""
    db.session.flush()
    for obj in list(db.session.identity_map.values()):
        if isinstance(obj, (Patient, Therapy, PatientDocument, Authorization)):
            db.session.expire(obj)


def _recompute(rows: Sequence[tuple[Appointment, str]]) -> dict[int, StandingCheck]:
    """Recompute the checks of ``(appointment, patient external id)`` rows in one batch."""
    if not rows:
        return {}
    _forget_loaded_facts()
    revisions = Revisions.read(a.patient_id for a, _ in rows)
    index = index_cache.current()
    payer_codes = {payer_id: code for code, payer_id in index.payer_ids.items()}
    outcomes = check_batch([_request(a, external_id, payer_codes.get(a.payer_id, ""))
                            for a, external_id in rows])
    moment = now()
    updates: list[dict[str, Any]] = []
    checks: dict[int, StandingCheck] = {}
    for (appointment, _), outcome in zip(rows, outcomes, strict=True):
        values = _check_values(_as_result(outcome), revisions, appointment.patient_id,
                               appointment.check_decision,
                               (appointment.previous_decision, appointment.decision_changed_at),
                               moment)
        updates.append({"id": appointment.id, **values})
        # Written with a bulk UPDATE below: show the loaded object the stored values too.
        for name, value in values.items():
            set_committed_value(appointment, name, value)
        checks[appointment.id] = _stored_check(appointment, recomputed=True)
    # In id order, so concurrent readers refreshing overlapping rows lock them in one order.
    updates.sort(key=lambda values: values["id"])
    db.session.execute(update(Appointment), updates)
    log.info("standing_checks_recomputed", count=len(rows))
    return checks


def _with_revisions(query: Select[Any]) -> Select[Any]:
    return (query.add_columns(Patient.external_id, Patient.revision, Authorization.revision)
            .join(Patient, Patient.id == Appointment.patient_id)
            .outerjoin(Authorization, Authorization.id == Appointment.check_authorization_id))


def checks_for(query: Select[Any]) -> list[CheckedAppointment]:
    """Run an appointment query and return each row with its check as of now.

    One query reads the appointments with the live revisions their results are keyed on;
    the moved ones are recomputed in one batch and stored.
    """
    rows = db.session.execute(_with_revisions(query)).tuples().all()
    policy, logic = stored_revision(), _logic_key()
    moved = [(a, external_id) for a, external_id, patient_revision, auth_revision in rows
             if not _is_current(a, patient_revision, auth_revision, policy, logic)]
    fresh = {a.id: _stored_check(a) for a, _, patient_revision, auth_revision in rows
             if _is_current(a, patient_revision, auth_revision, policy, logic)}
    fresh.update(_recompute(moved))
    payer_codes = {payer_id: code for code, payer_id in index_cache.current().payer_ids.items()}
    return [CheckedAppointment(a, fresh[a.id], external_id, payer_codes.get(a.payer_id, ""))
            for a, external_id, *_ in rows]


def current_check(appointment: Appointment) -> StandingCheck:
    """Return this appointment's eligibility result as of now."""
    [checked] = checks_for(select(Appointment).where(Appointment.id == appointment.id))
    return checked.check


# --- reads -----------------------------------------------------------------------------------

def get(appointment_id: str) -> Appointment:
    """Return the appointment with this id or raise NotFound."""
    appointment = db.session.scalar(
        select(Appointment).where(Appointment.appointment_id == appointment_id))
    if appointment is None:
        raise NotFound(f"No appointment {appointment_id}.")
    return appointment


def get_with_check(appointment_id: str) -> CheckedAppointment:
    """Return the appointment and its eligibility result as of now."""
    appointment = get(appointment_id)
    [checked] = checks_for(select(Appointment).where(Appointment.id == appointment.id))
    return checked


def _filtered(filters: Filters) -> Select[Any]:
    query = select(Appointment)
    if filters.status:
        query = query.where(Appointment.status == filters.status)
    if filters.date_from:
        query = query.where(Appointment.date_of_service >= filters.date_from)
    if filters.date_to:
        query = query.where(Appointment.date_of_service <= filters.date_to)
    if filters.payer:
        payer_id = index_cache.current().payer_ids.get(filters.payer)
        query = query.where(Appointment.payer_id == (payer_id or -1))
    if filters.hcpcs:
        query = query.where(Appointment.hcpcs == filters.hcpcs.upper())
    if filters.patient:
        query = query.where(Appointment.patient.has(Patient.external_id == filters.patient))
    if filters.authorization:
        # The ones that may draw on it: its patient's and payer's; the checks say which do.
        auth = db.session.scalar(
            select(Authorization).where(Authorization.number == filters.authorization))
        if auth is None:
            return query.where(Appointment.id.is_(None))
        query = query.where(Appointment.patient_id == auth.patient_id,
                            Appointment.payer_id == auth.payer_id)
    return query.order_by(Appointment.date_of_service, Appointment.appointment_id)


def list_with_checks(filters: Filters, limit: int | None = None,
                     offset: int = 0) -> tuple[list[CheckedAppointment], int]:
    """Return the page of appointments matching ``filters``, each with its check as of now,
    and how many match in all.

    A decision or authorization filter reads current checks, so those filter after refreshing;
    otherwise only the requested page is refreshed.
    """
    query = _filtered(filters)
    if filters.decision is None and filters.authorization is None:
        if limit is None:
            rows = checks_for(query)
            return rows, len(rows)
        rows = checks_for(query.limit(limit).offset(offset))
        if offset == 0 and len(rows) < limit:
            # The whole list fits on this page: no second query to count it.
            return rows, len(rows)
        total = db.session.scalar(select(func.count()).select_from(query.subquery())) or 0
        return rows, total
    rows = checks_for(query)
    if filters.decision is not None:
        rows = [r for r in rows if r.check.decision == filters.decision]
    if filters.authorization is not None:
        rows = [r for r in rows if filters.authorization in (
            r.check.authorization_number, r.appointment.authorization_number)]
    total = len(rows)
    end = None if limit is None else offset + limit
    return rows[offset:end], total


# --- the write path --------------------------------------------------------------------------

def _reference_errors(items: Sequence[AppointmentInput], ids: Sequence[str],
                      patients: dict[str, Patient]) -> dict[int, Invalid]:
    index = index_cache.current()
    problems: dict[int, Invalid] = {}
    for i, (item, appointment_id) in enumerate(zip(items, ids, strict=True)):
        errors: dict[str, list[str]] = {}
        if not APPOINTMENT_ID.fullmatch(appointment_id or ""):
            errors["appointment_id"] = [APPOINTMENT_ID_RULE]
        if item.patient_id not in patients:
            errors["patient.id"] = [f"Unknown patient {item.patient_id!r}."]
        if item.payer not in index.payers:
            errors["payer"] = [f"Unknown payer {item.payer!r}."]
        if item.hcpcs not in index.drugs:
            errors["hcpcs"] = [f"Unknown drug code {item.hcpcs!r}."]
        if (item.dose_mg is None) == (item.dose_mg_per_kg is None):
            errors["dose"] = ["Give the dose as exactly one of mg or mg_per_kg."]
        if errors:
            problems[i] = Invalid(errors)
    return problems


def _assign(appointment: Appointment, item: AppointmentInput, patient: Patient, payer: Payer,
            actor: str, moment: dt.datetime) -> None:
    appointment.patient = patient
    appointment.payer = payer
    appointment.hcpcs = item.hcpcs
    appointment.date_of_service = item.date_of_service
    appointment.dose_mg = item.dose_mg
    appointment.dose_mg_per_kg = item.dose_mg_per_kg
    appointment.site_of_care = item.site_of_care
    appointment.diagnosis_codes = list(item.diagnosis_codes)
    appointment.packages = [{"amount": str(amount), "count": count}
                            for amount, count in item.packages]
    appointment.authorization_number = item.authorization_number
    appointment.drug_supply = item.drug_supply
    appointment.rendering_npi = item.rendering_npi
    appointment.status = "scheduled"
    appointment.updated_at, appointment.updated_by = moment, actor


def upsert_many(items: Sequence[tuple[str, AppointmentInput]], actor: str,
                series: str | None = None, labels: Sequence[str] | None = None,
                validate_only: bool = False) -> list[Saved]:
    """Create or replace many appointments, all or none; each is checked as it is stored.

    A bad item (malformed id, unknown patient, payer, drug or authorization, vials that do
    not cover the dose) raises ``ItemsInvalid`` naming every bad item's fields, and nothing
    is stored. ``labels`` name the items in those errors (default: their appointment ids).
    ``validate_only`` finds those errors and stores nothing even when there are none.
    """
    ids = [appointment_id for appointment_id, _ in items]
    inputs = [item for _, item in items]
    labels = list(labels) if labels is not None else ids
    seen: set[str] = set()
    duplicates: dict[int, Invalid] = {}
    for i, appointment_id in enumerate(ids):
        if appointment_id in seen:
            duplicates[i] = Invalid({"appointment_id": [
                f"{appointment_id!r} appears more than once."]})
        seen.add(appointment_id)
    patients: dict[str, Patient] = {}
    for part in in_slices({item.patient_id for item in inputs}):
        patients.update((p.external_id, p) for p in db.session.scalars(
            select(Patient).where(Patient.external_id.in_(part))))
    problems = {**_reference_errors(inputs, ids, patients), **duplicates}
    good = [i for i in range(len(items)) if i not in problems]
    patient_ids = {external_id: patient.id for external_id, patient in patients.items()}
    _forget_loaded_facts()
    revisions = Revisions.read(patient_ids[inputs[i].patient_id] for i in good)
    outcomes = check_batch([_request(inputs[i], inputs[i].patient_id, inputs[i].payer)
                            for i in good])
    for i, outcome in zip(good, outcomes, strict=True):
        if isinstance(outcome, Invalid):
            problems[i] = outcome
    if problems:
        raise ItemsInvalid(problems, labels)
    if validate_only:
        return []

    # The records themselves (a strong reference, so the change history names them without
    # one query per appointment).
    people = {p.id: p for part in in_slices({patient_ids[inputs[i].patient_id] for i in good})
              for p in db.session.scalars(select(Patient).where(Patient.id.in_(part)))}
    payers = {p.code: p for p in db.session.scalars(
        select(Payer).where(Payer.code.in_({item.payer for item in inputs})))}
    existing = {a.appointment_id: a for part in in_slices(set(ids))
                for a in db.session.scalars(select(Appointment).where(
                    Appointment.appointment_id.in_(part)))}
    moment = now()
    saved: list[Saved] = []
    for appointment_id, item, outcome in zip(ids, inputs, outcomes, strict=True):
        patient_id = patient_ids[item.patient_id]
        appointment = existing.get(appointment_id)
        created = appointment is None
        if appointment is None:
            appointment = Appointment(appointment_id=appointment_id, created_at=moment,
                                      created_by=actor, series=series)
            db.session.add(appointment)
        old_decision = None if created else appointment.check_decision
        old_changed = (None, None) if created else (appointment.previous_decision,
                                                    appointment.decision_changed_at)
        _assign(appointment, item, people[patient_id], payers[item.payer], actor, moment)
        values = _check_values(_as_result(outcome), revisions, patient_id, old_decision,
                               old_changed, moment)
        for name, value in values.items():
            setattr(appointment, name, value)
        saved.append(Saved(appointment, StandingCheck(
            result=values["check_result"], decision=values["check_decision"],
            checked_at=moment, previous_decision=values["previous_decision"],
            decision_changed_at=values["decision_changed_at"], recomputed=True),
            item.patient_id, item.payer, created))
    db.session.flush()
    log.info("appointments_stored", count=len(saved),
             created=sum(1 for s in saved if s.created))
    return saved


def upsert(appointment_id: str, item: AppointmentInput, actor: str) -> Saved:
    """Create or replace one appointment (idempotent by its id) and return it checked."""
    try:
        [saved] = upsert_many([(appointment_id, item)], actor, labels=[""])
    except ItemsInvalid as exc:
        raise Invalid(exc.by_item[0].errors) from None
    return saved


def cancel(appointment_id: str, actor: str) -> Appointment:
    """Cancel an appointment: it stays on record but leaves the schedule."""
    appointment = get(appointment_id)
    appointment.status = "cancelled"
    appointment.updated_at, appointment.updated_by = now(), actor
    db.session.flush()
    return appointment


def series_items(first: AppointmentInput, every_days: int,
                 until: dt.date) -> list[AppointmentInput]:
    """The appointments of a recurring course: ``first`` again every ``every_days`` until
    ``until`` (inclusive)."""
    if every_days < 1:
        raise Invalid({"every_days": ["Must be at least 1."]})
    if until < first.date_of_service:
        raise Invalid({"until": ["Ends before the first appointment."]})
    count = (until - first.date_of_service).days // every_days + 1
    if count > 200:
        raise Invalid({"until": [f"That is {count} appointments; a series has at most 200."]})
    step = dt.timedelta(days=every_days)
    return [AppointmentInput(**{**first.__dict__,
                                "date_of_service": first.date_of_service + n * step})
            for n in range(count)]


def create_series(prefix: str, first: AppointmentInput, every_days: int, until: dt.date,
                  actor: str) -> list[Saved]:
    """Create ``prefix-1``, ``prefix-2``... for a recurring course; each stands alone after."""
    items = series_items(first, every_days, until)
    ids = [f"{prefix}-{n}" for n in range(1, len(items) + 1)]
    if len(ids[-1]) > 64 or not APPOINTMENT_ID.fullmatch(ids[-1]):
        raise Invalid({"appointment_id_prefix": [APPOINTMENT_ID_RULE]})
    taken = db.session.scalars(select(Appointment.appointment_id)
                               .where(Appointment.appointment_id.in_(ids))).all()
    if taken:
        raise Invalid({"appointment_id_prefix": [
            f"{', '.join(sorted(taken))} already exist; choose another prefix."]})
    try:
        return upsert_many(list(zip(ids, items, strict=True)), actor, series=prefix)
    except ItemsInvalid as exc:
        # Every item shares the first's fields: name them once, as the request does.
        first_bad = min(exc.by_item)
        raise Invalid([{"field": f"first.{e['field']}",
                        "message": f"{ids[first_bad]}: {e['message']}"}
                       for e in exc.by_item[first_bad].errors]) from None


# --- the record as reads show it ---------------------------------------------------------------

def _number(value: Decimal | None) -> int | float | None:
    if value is None:
        return None
    value = Decimal(value)
    return int(value) if value == value.to_integral_value() else float(value)


def appointment_record(checked: CheckedAppointment,
                       moment: dt.datetime | None = None) -> dict[str, Any]:
    """The appointment as the API shows it: its fields, its check as of now, and whether its
    decision changed within the last day."""
    appointment, check = checked.appointment, checked.check
    moment = moment or now()
    dose = {"mg": _number(appointment.dose_mg)} if appointment.dose_mg is not None \
        else {"mg_per_kg": _number(appointment.dose_mg_per_kg)}
    return {
        "appointment_id": appointment.appointment_id,
        "status": appointment.status,
        "series": appointment.series,
        "patient": {"id": checked.patient},
        "payer": checked.payer,
        "date_of_service": appointment.date_of_service.isoformat(),
        "hcpcs": appointment.hcpcs,
        "dose": dose,
        "site_of_care": appointment.site_of_care,
        "diagnosis_codes": list(appointment.diagnosis_codes or []),
        "packages": [{"amount": _number(Decimal(str(p["amount"]))), "count": p["count"]}
                     for p in appointment.packages or []],
        "authorization_number": appointment.authorization_number,
        "drug_supply": appointment.drug_supply,
        "rendering_npi": appointment.rendering_npi,
        "check": check.result,
        "checked_at": check.checked_at.isoformat(),
        "previous_decision": check.previous_decision,
        "decision_changed_at": check.decision_changed_at.isoformat()
        if check.decision_changed_at else None,
        "decision_changed_recently": check.changed_since(moment - CHANGED_WINDOW),
    }


# --- what an authorization's future appointments will draw -----------------------------------

def drawn_number(row: CheckedAppointment) -> str | None:
    """The authorization an appointment draws on: the one its check chose, else the one typed
    on it (a check that found none still leaves the scheduler's choice on the books)."""
    return row.check.authorization_number or row.appointment.authorization_number


@dataclass(frozen=True)
class UnitBalance:
    """An authorization's units (or visits) as used / scheduled / free, for pages that show many.

    ``free`` is never below zero: what the schedule needs beyond it is ``short``. ``approved``
    is None when the payer set no limit; ``is_approved`` is False for a request, a denial
    or a cancellation, which have no units to draw whatever their numbers say.
    """

    is_approved: bool
    approved: int | None
    used: int
    scheduled: int
    free: int | None
    short: int

    @property
    def remaining(self) -> int | None:
        """What the schedule may still draw after what was used; None without a limit."""
        return remaining_of(self.approved, self.used)


def _balance(approved: int | None, used: int, scheduled: int) -> dict[str, int | None]:
    left = remaining_of(approved, used)
    return {
        "approved": approved, "used": used, "scheduled": scheduled,
        "free": None if left is None else max(left - scheduled, 0),
        "short": 0 if left is None else max(scheduled - left, 0),
    }


def forecast(number: str, today: dt.date | None = None) -> dict[str, Any]:
    """The scheduled appointments from ``today`` that draw on an authorization, in date order,
    with cumulative units and visits, the first one it cannot cover and those after its end.

    Units are shown as used / scheduled / free: used is what paid claims drew, scheduled is
    what the appointments up to its end date will draw, free is what remains after both.
    """
    today = today or dt.date.today()
    auth = db.session.scalar(select(Authorization).where(Authorization.number == number))
    if auth is None:
        raise NotFound(f"No authorization {number}.")
    patient_id, payer_id = auth.patient_id, auth.payer_id
    query = (select(Appointment)
             .where(Appointment.status == "scheduled", Appointment.patient_id == patient_id,
                    Appointment.payer_id == payer_id, Appointment.date_of_service >= today)
             .order_by(Appointment.date_of_service, Appointment.appointment_id))
    rows = [row for row in checks_for(query) if drawn_number(row) == number]
    # Read after the checks: the checks may have expired the loaded authorization.
    remaining_units, remaining_visits = auth.remaining_units, auth.remaining_visits
    units = 0
    items: list[dict[str, Any]] = []
    runs_out: dict[str, Any] | None = None
    after_valid_to: list[str] = []
    for visits, row in enumerate(rows, start=1):
        appointment = row.appointment
        beyond = appointment.date_of_service > auth.valid_to
        drawn = row.check.units
        units += drawn or 0
        covered = not beyond and (remaining_units is None or units <= remaining_units) and (
            remaining_visits is None or visits <= remaining_visits)
        if beyond:
            after_valid_to.append(appointment.appointment_id)
        elif not covered and runs_out is None:
            runs_out = {"on": appointment.date_of_service.isoformat(),
                        "appointment_id": appointment.appointment_id}
        items.append({
            "appointment_id": appointment.appointment_id,
            "date_of_service": appointment.date_of_service.isoformat(),
            "units": drawn, "visits": 1,
            "cumulative_units": units, "cumulative_visits": visits,
            "decision": row.check.decision, "covered": covered, "after_valid_to": beyond,
        })
    in_window = [item for item in items if not item["after_valid_to"]]
    scheduled_units = sum(item["units"] or 0 for item in in_window)
    return {
        "authorization": auth.number, "status": auth.status,
        "valid_from": auth.valid_from.isoformat(), "valid_to": auth.valid_to.isoformat(),
        "as_of": today.isoformat(),
        "remaining_units": remaining_units, "remaining_visits": remaining_visits,
        "units": _balance(auth.approved_units, auth.used_units or 0, scheduled_units),
        "visits": _balance(auth.approved_visits, auth.used_visits or 0, len(in_window)),
        "appointments": items,
        "runs_out_on": runs_out["on"] if runs_out else None,
        "runs_out_with": runs_out["appointment_id"] if runs_out else None,
        "after_valid_to": after_valid_to,
        # Appointments whose dose cannot be priced yet (a mg/kg dose without a weight).
        "units_unknown": [i["appointment_id"] for i in items if i["units"] is None],
    }


def _scheduled_draws(auths: Sequence[Authorization],
                     today: dt.date) -> dict[str, list[CheckedAppointment]]:
    """The scheduled appointments from ``today`` to each authorization's end date that draw on
    it, in date order, read a slice of patients at a time (the rule ``forecast`` uses: same
    patient and payer, drawn on by ``drawn_number``)."""
    window = {a.number: (a.patient_id, a.payer_id, a.valid_to) for a in auths}
    # An authorization's appointments are its patient's: each lies in one slice, in date order.
    rows: list[CheckedAppointment] = []
    for part in in_slices({patient_id for patient_id, _, _ in window.values()}):
        rows += checks_for(select(Appointment).where(
            Appointment.status == "scheduled", Appointment.date_of_service >= today,
            Appointment.patient_id.in_(part))
            .order_by(Appointment.date_of_service, Appointment.appointment_id))
    draws: dict[str, list[CheckedAppointment]] = {number: [] for number in window}
    for row in rows:
        number = drawn_number(row)
        if number not in window:
            continue
        patient_id, payer_id, valid_to = window[number]
        appointment = row.appointment
        if (appointment.patient_id, appointment.payer_id) == (patient_id, payer_id) \
                and appointment.date_of_service <= valid_to:
            draws[number].append(row)
    return draws


@dataclass(frozen=True)
class ScheduledUse:
    """What the schedule draws on one authorization: its units and visits as used / scheduled
    / free, and the appointments drawing on it in date order."""

    units: UnitBalance
    visits: UnitBalance
    appointments: tuple[CheckedAppointment, ...]

    @property
    def first_uncovered(self) -> CheckedAppointment | None:
        """The first appointment the units or visits left cannot cover; None when all are."""
        units_left, visits_left = self.units.remaining, self.visits.remaining
        units = 0
        for visits, row in enumerate(self.appointments, start=1):
            units += row.check.units or 0
            if (units_left is not None and units > units_left) or (
                    visits_left is not None and visits > visits_left):
                return row
        return None


def scheduled_use(auths: Iterable[Authorization],
                  today: dt.date | None = None) -> dict[str, ScheduledUse]:
    """What the schedule draws on each of ``auths``, in one pass over the schedule: the one
    calculation behind every used / scheduled / free, units short and doses left.

    Reading the schedule may recompute checks, which expires loaded authorizations: their
    figures are read first, and a caller that goes on showing them should reload them once.
    """
    auths = list(auths)
    facts = {a.number: (a.is_approved, a.approved_units, a.used_units or 0,
                        a.approved_visits, a.used_visits or 0) for a in auths}
    draws = _scheduled_draws(auths, today or dt.date.today())
    uses = {}
    for number, (is_approved, approved_units, used_units, approved_visits,
                 used_visits) in facts.items():
        rows = draws[number]
        units = _balance(approved_units, used_units, sum(r.check.units or 0 for r in rows))
        visits = _balance(approved_visits, used_visits, len(rows))
        uses[number] = ScheduledUse(UnitBalance(is_approved, **units),
                                    UnitBalance(is_approved, **visits), tuple(rows))
    return uses


def unit_balances(auths: Iterable[Authorization],
                  today: dt.date | None = None) -> dict[str, UnitBalance]:
    """Units of each of ``auths`` as used / scheduled / free (see ``scheduled_use``)."""
    return {number: use.units for number, use in scheduled_use(auths, today).items()}


def unit_balances_of(numbers: Iterable[str],
                     today: dt.date | None = None) -> dict[str, UnitBalance]:
    """``unit_balances`` of the authorizations ``numbers`` names (unknown numbers are left out)."""
    wanted = sorted(set(filter(None, numbers)))
    if not wanted:
        return {}
    return unit_balances(db.session.scalars(
        select(Authorization).where(Authorization.number.in_(wanted))), today)


def unit_outlook(numbers: Iterable[str], today: dt.date | None = None) -> dict[str, Any]:
    """Units and visits of each authorization as used / scheduled / free, in one batch.

    Scheduled counts the appointments from ``today`` to its end date whose check (as of now)
    draws on it.
    """
    wanted = sorted(set(filter(None, numbers)))
    if not wanted:
        return {}
    auths = db.session.scalars(select(Authorization).where(Authorization.number.in_(wanted)))
    return {number: {"units": _figures(use.units), "visits": _figures(use.visits)}
            for number, use in scheduled_use(auths, today).items()}


def _figures(balance: UnitBalance) -> dict[str, int | None]:
    # The API's shape: whether it is approved is the authorization's, not each balance's.
    return {"approved": balance.approved, "used": balance.used, "scheduled": balance.scheduled,
            "free": balance.free, "short": balance.short}
