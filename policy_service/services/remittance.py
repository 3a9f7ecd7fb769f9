"""Importing remittance advice: each claim payment's outcome, authorization use, and denials.

One 835 payment is stored once (payer + trace number): importing the same file again answers
with what the first import did and changes nothing, and of two concurrent imports of one file
the second waits on the unique key and then finds the first. Use goes through the usage
service (the one write path for authorization use, idempotent by claim reference); the
authorizations a file touches are locked up front in id order, so two files drawing on the same
authorizations cannot deadlock.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from policy_service.errors import Conflict, Invalid, NotFound
from policy_service.extensions import db
from policy_service.logging import get_logger
from policy_service.models import (
    Authorization,
    AuthorizationUsage,
    Denial,
    Drug,
    Patient,
    Payer,
    Remittance,
    RemittanceClaim,
)
from policy_service.models.authorization import USABLE_STATUSES
from policy_service.services.payers import find_payer_by_external_id
from policy_service.services.reason_codes import ReasonTable, reason_table
from policy_service.services.usage import record_usage, void_usage
from policy_service.services.x12_835 import (
    DENIED,
    REVERSAL,
    Adjustment,
    ClaimPayment,
    RemittanceAdvice,
    ServiceLine,
    read_835,
)

log = get_logger("remittance")
JW = "JW"
CENTS = Decimal("0.01")


@dataclass
class _Draw:
    """Units one authorization gives to one claim."""

    authorization: Authorization
    units: int = 0
    day: dt.date | None = None


@dataclass
class _ClaimPlan:
    """What importing one claim payment will do, worked out before anything is written."""

    payment: ClaimPayment
    outcome: str
    patient: Patient | None
    draws: dict[int, _Draw] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    line_authorizations: dict[int, Authorization | None] = field(default_factory=dict)
    claim_authorization: Authorization | None = None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def import_remittance(text: str, actor: str) -> list[dict[str, Any]]:
    """Import every payment of an 835 file; raise Invalid (nothing written) on a bad file."""
    advices = read_835(text)
    payers = [_payer(advice) for advice in advices]
    table = reason_table()
    return [_import_one(advice, payer, table, actor) for advice, payer in zip(advices, payers,
                                                                            strict=True)]


def _payer(advice: RemittanceAdvice) -> Payer:
    """The payer the file names, by any id it gives; Invalid naming the element otherwise."""
    for payer_id in advice.payer_ids:
        payer = find_payer_by_external_id(payer_id.value)
        if payer is not None:
            return payer
    first = advice.payer_ids[0]
    given = ", ".join(repr(p.value) for p in advice.payer_ids)
    raise Invalid({f"segment {first.segment} (N1), element {first.element}": [
        f"No payer has the id {given}; add the payer (or this id) first."]},
        detail="Unknown payer in 835 file")


def _import_one(advice: RemittanceAdvice, payer: Payer, table: ReasonTable,
                actor: str) -> dict[str, Any]:
    existing = _stored(payer, advice.trace_number)
    if existing is not None:
        return remittance_result(existing, table, already_imported=True)
    remittance = Remittance(payer=payer, trace_number=advice.trace_number,
                            paid_on=advice.paid_on, adjudicated_on=advice.adjudicated_on,
                            total_paid=advice.total_paid, file_digest=advice.digest,
                            imported_at=_now(), imported_by=actor)
    try:
        with db.session.begin_nested():
            db.session.add(remittance)
            db.session.flush()
    except IntegrityError:
        # Another import of this payment committed first (it held the unique key).
        existing = _stored(payer, advice.trace_number)
        if existing is None:
            raise
        return remittance_result(existing, table, already_imported=True)
    lookup = _lookup(advice, payer)
    plans = [_plan(payment, lookup, table) for payment in advice.claims]
    _lock_authorizations(plans, payer)
    for position, plan in enumerate(plans):
        _apply(remittance, position, plan, payer, table, actor)
    db.session.flush()
    log.info("remittance_imported", remittance_id=remittance.id, payer=payer.code,
             claims=len(plans))
    return remittance_result(remittance, table, already_imported=False)


def _stored(payer: Payer, trace_number: str) -> Remittance | None:
    claims = selectinload(Remittance.claims)
    return db.session.scalar(
        select(Remittance).where(Remittance.payer_id == payer.id,
                                 Remittance.trace_number == trace_number)
        .options(claims.selectinload(RemittanceClaim.authorization),
                 claims.selectinload(RemittanceClaim.denials).selectinload(Denial.authorization),
                 claims.selectinload(RemittanceClaim.denials).selectinload(Denial.payer)))


# --- planning -------------------------------------------------------------------------------


def outcome_of(payment: ClaimPayment, table: ReasonTable) -> str:
    """paid, partially_paid, denied or reversed, from CLP02 and the denial adjustments."""
    if payment.status_code == REVERSAL:
        return "reversed"
    denied = [a for a in payment.all_adjustments() if table.is_denial(a.carc)]
    if payment.status_code == DENIED or (payment.paid == 0 and denied):
        return "denied"
    return "partially_paid" if denied else "paid"


def _line_denied(line: ServiceLine, table: ReasonTable) -> bool:
    return line.paid == 0 and any(table.is_denial(a.carc) for a in line.adjustments)


@dataclass
class _Lookup:
    """The records a file's claims refer to, read in a few queries for the whole file."""

    patients: dict[str, Patient]
    drugs: set[str]
    by_number: dict[str, Authorization]
    by_patient: dict[int, list[Authorization]]


def _lookup(advice: RemittanceAdvice, payer: Payer) -> _Lookup:
    members = {c.member_id for c in advice.claims if c.member_id}
    codes = {line.code for c in advice.claims for line in c.lines}
    numbers = {n for c in advice.claims
               for n in (c.authorization_number, *(ln.authorization_number for ln in c.lines))
               if n}
    with db.session.no_autoflush:
        patients = {p.external_id: p for p in db.session.scalars(
            select(Patient).where(Patient.external_id.in_(members)))} if members else {}
        drugs = set(db.session.scalars(select(Drug.hcpcs).where(Drug.hcpcs.in_(codes)))) \
            if codes else set()
        by_number = {a.number: a for a in db.session.scalars(
            select(Authorization).where(Authorization.number.in_(numbers)))} if numbers else {}
        by_patient: dict[int, list[Authorization]] = defaultdict(list)
        if patients:
            for auth in db.session.scalars(
                    select(Authorization)
                    .where(Authorization.payer_id == payer.id,
                           Authorization.patient_id.in_([p.id for p in patients.values()]))
                    .order_by(Authorization.valid_to.desc(), Authorization.number)):
                by_patient[auth.patient_id].append(auth)
    return _Lookup(patients, drugs, by_number, by_patient)


def _plan(payment: ClaimPayment, lookup: _Lookup, table: ReasonTable) -> _ClaimPlan:
    patient = lookup.patients.get(payment.member_id or "")
    plan = _ClaimPlan(payment, outcome_of(payment, table), patient)
    if payment.authorization_number:
        plan.claim_authorization = _by_number(payment.authorization_number, plan, lookup)
    for index, line in enumerate(payment.lines):
        day = line.date_of_service or payment.date_of_service
        auth = None
        if line.authorization_number:
            auth = _by_number(line.authorization_number, plan, lookup)
        elif plan.claim_authorization is not None:
            auth = plan.claim_authorization
        elif line.code in lookup.drugs and patient is not None and day is not None:
            auth = _matching(lookup.by_patient.get(patient.id, []), line.code, day)
        plan.line_authorizations[index] = auth
        if plan.outcome not in ("paid", "partially_paid") or line.code not in lookup.drugs:
            continue
        if JW in line.modifiers or _line_denied(line, table) or line.units_paid <= 0:
            # Discarded drug (JW) is billed but was never given: it draws nothing.
            continue
        if auth is None:
            plan.problems.append(_no_authorization(line, patient, day))
            continue
        draw = plan.draws.setdefault(auth.id, _Draw(auth, day=day))
        draw.units += line.units_paid
        draw.day = min(d for d in (draw.day, day) if d is not None) if day else draw.day
    if plan.claim_authorization is None:
        found = [a for a in plan.line_authorizations.values() if a is not None]
        plan.claim_authorization = found[0] if found else None
    return plan


def _by_number(number: str, plan: _ClaimPlan, lookup: _Lookup) -> Authorization | None:
    auth = lookup.by_number.get(number)
    if auth is None:
        plan.problems.append(f"No authorization {number} (REF*G1) is on file.")
    elif plan.patient is not None and auth.patient_id != plan.patient.id:
        plan.problems.append(f"Authorization {number} (REF*G1) is for another patient.")
        return None
    return auth


def _matching(candidates: list[Authorization], code: str,
              day: dt.date) -> Authorization | None:
    """The patient's authorization from this payer for this code whose window holds the day:
    an approved one first, then the one ending last (``candidates`` come in that order)."""
    matches = [a for a in candidates
               if code in (a.hcpcs or []) and a.valid_from <= day <= a.valid_to]
    matches.sort(key=lambda a: a.status not in USABLE_STATUSES)
    return matches[0] if matches else None


def _no_authorization(line: ServiceLine, patient: Patient | None, day: dt.date | None) -> str:
    if patient is None:
        return f"{line.code}: the patient's member id matches no patient on file."
    if day is None:
        return f"{line.code}: the remittance gives no date of service."
    return f"{line.code}: no authorization of this patient and payer covers {day}."


def _lock_authorizations(plans: list[_ClaimPlan], payer: Payer) -> None:
    """Lock every authorization this file draws on or gives back to, in id order."""
    ids = {auth_id for plan in plans for auth_id in plan.draws}
    reversed_refs = [p.payment.reference for p in plans if p.outcome == "reversed"]
    if reversed_refs:
        ids |= set(db.session.scalars(
            select(AuthorizationUsage.authorization_id).join(Authorization)
            .where(AuthorizationUsage.claim_reference.in_(reversed_refs),
                   Authorization.payer_id == payer.id)))
    if ids:
        # populate_existing: the planning read these rows before the lock; refresh them so the
        # use is added to the totals as they stand now, not as they stood then.
        list(db.session.scalars(select(Authorization).where(Authorization.id.in_(ids))
                                .order_by(Authorization.id).with_for_update()
                                .execution_options(populate_existing=True)))


# --- writing --------------------------------------------------------------------------------


def _apply(remittance: Remittance, position: int, plan: _ClaimPlan, payer: Payer,
           table: ReasonTable, actor: str) -> None:
    payment = plan.payment
    claim = RemittanceClaim(
        remittance=remittance, position=position, claim_reference=payment.reference,
        payer_claim_number=payment.payer_claim_number, status_code=payment.status_code,
        outcome=plan.outcome, charged=payment.charged, paid=payment.paid,
        date_of_service=payment.first_date, patient=plan.patient,
        authorization=plan.claim_authorization)
    db.session.add(claim)
    problems = list(plan.problems)
    if plan.outcome == "reversed":
        units, visits = _void(payment.reference, payer, actor, problems)
        claim.units_recorded, claim.visits_recorded = -units, -visits
    else:
        for draw in plan.draws.values():
            day = draw.day or payment.first_date
            if day is None:
                problems.append(f"{draw.authorization.number}: no date of service to record.")
                continue
            try:
                result = record_usage(draw.authorization.number, payment.reference, day,
                                      draw.units, 1, actor)
            except (Invalid, Conflict, NotFound) as exc:
                detail = "; ".join(exc.lines()) if isinstance(exc, Invalid) else exc.detail
                problems.append(f"{draw.authorization.number}: {detail}")
                continue
            claim.units_recorded += result.usage.units
            claim.visits_recorded += result.usage.visits
        for denial in _denials(plan, payer, remittance.adjudicated_on, table):
            claim.denials.append(denial)
    claim.usage_problem = " ".join(problems)[:500] or None


def _void(reference: str, payer: Payer, actor: str, problems: list[str]) -> tuple[int, int]:
    """Give back every use recorded under ``reference`` on this payer's authorizations."""
    usages = list(db.session.scalars(
        select(AuthorizationUsage).join(Authorization)
        .where(AuthorizationUsage.claim_reference == reference,
               AuthorizationUsage.voided_at.is_(None), Authorization.payer_id == payer.id)))
    if not usages:
        problems.append(f"No recorded use of {reference} to give back.")
    units = visits = 0
    for usage in usages:
        void_usage(usage.authorization.number, reference, actor)
        units, visits = units + usage.units, visits + usage.visits
    return units, visits


def _appeal_due(payer: Payer, adjudicated_on: dt.date) -> dt.date:
    return adjudicated_on + dt.timedelta(days=payer.appeal_days)


def _denials(plan: _ClaimPlan, payer: Payer, adjudicated_on: dt.date,
             table: ReasonTable) -> list[Denial]:
    """A denial for every adjustment with a denial CARC, at claim or line level."""
    payment = plan.payment
    appeal_due = _appeal_due(payer, adjudicated_on)
    found: list[tuple[Adjustment, ServiceLine | None, Authorization | None]] = [
        (a, None, plan.claim_authorization) for a in payment.adjustments]
    for index, line in enumerate(payment.lines):
        auth = plan.line_authorizations.get(index) or plan.claim_authorization
        found.extend((a, line, auth) for a in line.adjustments)
    denials = []
    for adjustment, line, auth in found:
        if not table.is_denial(adjustment.carc):
            continue
        rarcs = (line.rarcs if line is not None and line.rarcs else payment.rarcs)
        denials.append(Denial(
            payer=payer, authorization=auth, claim_reference=payment.reference,
            service_code=line.code if line else None, group_code=adjustment.group,
            carc=adjustment.carc, rarcs=list(rarcs), amount=adjustment.amount,
            date_of_service=(line.date_of_service if line else None) or payment.first_date,
            adjudicated_on=adjudicated_on, appeal_due=appeal_due))
    return denials


# --- results --------------------------------------------------------------------------------


def _money(value: Decimal) -> Decimal:
    return Decimal(value).quantize(CENTS)


def denial_record(denial: Denial, table: ReasonTable) -> dict[str, Any]:
    """One denial as the API and pages show it."""
    rarcs = list(denial.rarcs or [])
    return {
        "id": denial.id, "claim_reference": denial.claim_reference,
        "payer": denial.payer.code, "group": denial.group_code, "carc": denial.carc,
        "rarc": rarcs[0] if rarcs else None, "rarcs": rarcs,
        "description": table.description(denial.carc),
        "rarc_descriptions": table.rarc_descriptions(rarcs),
        "amount": _money(denial.amount), "service_code": denial.service_code,
        "date_of_service": denial.date_of_service, "adjudicated_on": denial.adjudicated_on,
        "authorization": denial.authorization.number if denial.authorization else None,
        "appeal_due": denial.appeal_due,
        "preventable_by": table.preventable_by(denial.carc, rarcs),
    }


def remittance_result(remittance: Remittance, table: ReasonTable,
                      already_imported: bool) -> dict[str, Any]:
    """What importing ``remittance`` did, claim by claim."""
    claims = []
    for claim in remittance.claims:
        claims.append({
            "claim_reference": claim.claim_reference, "outcome": claim.outcome,
            "status_code": claim.status_code, "charged": _money(claim.charged),
            "paid": _money(claim.paid),
            "authorization": claim.authorization.number if claim.authorization else None,
            "units_recorded": claim.units_recorded, "visits_recorded": claim.visits_recorded,
            "usage_voided": claim.outcome == "reversed" and (
                claim.units_recorded < 0 or claim.visits_recorded < 0),
            "usage_problem": claim.usage_problem,
            "denials": [denial_record(d, table) for d in claim.denials],
        })
    return {
        "payer": remittance.payer.code, "trace_number": remittance.trace_number,
        "paid_on": remittance.paid_on, "adjudicated_on": remittance.adjudicated_on,
        "total_paid": _money(remittance.total_paid), "already_imported": already_imported,
        "imported_at": remittance.imported_at, "imported_by": remittance.imported_by,
        "claims": claims,
    }


def outcome_counts(results: list[dict[str, Any]]) -> dict[str, int]:
    """How many claims of an import came to each outcome."""
    counts: dict[str, int] = defaultdict(int)
    for result in results:
        for claim in result["claims"]:
            counts[claim["outcome"]] += 1
    return dict(counts)
