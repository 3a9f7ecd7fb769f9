"""The coordinator's work queue: what needs doing on which authorization, most urgent first.

Every item names records by number only (authorization, appointment): the queue is read by
schedulers and billers, printed by the digest and logged, so it never carries patient details.
The payer's settings (decision_days, renewal_lead_days) decide when an item is due.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from policy_service.database import in_slices
from policy_service.extensions import db
from policy_service.models import Authorization, AuthorizationEvent, Payer
from policy_service.models.authorization import USABLE_STATUSES
from policy_service.services.appointments import (
    CheckedAppointment,
    Filters,
    ScheduledUse,
    list_with_checks,
    scheduled_use,
)
from policy_service.services.denials import open_appeals
from rulesets.vocabulary import Decision

KINDS = (
    "follow_up_due",
    "decision_overdue",
    "info_requested",
    "appeal_due",
    "expiring_without_renewal",
    "units_short",
    "appointment_without_authorization",
    "appointment_blocked",
)
# 1 = act today (a patient's infusion or a payer deadline is at stake), 3 = housekeeping.
PRIORITY = {
    "appointment_blocked": 1,
    "appointment_without_authorization": 1,
    "units_short": 1,
    "decision_overdue": 1,
    "appeal_due": 1,
    "info_requested": 2,
    "expiring_without_renewal": 2,
    "follow_up_due": 3,
}
# A renewal that ended like this is no renewal: the expiring one needs attention again.
RENEWAL_DEAD_STATUSES = ("cancelled", "denied")
DECISIONS = ("approved", "partially_approved", "denied")
RATE_WINDOW_DAYS = 90
# The furthest ahead any payer asks for renewals; narrows the query before the per-payer check.
LONGEST_RENEWAL_LEAD = 366
# How far ahead the queue looks for appointments that are blocked or have no authorization
# (about three infusion cycles); units short count every appointment up to the authorization's end.
APPOINTMENT_HORIZON_DAYS = 90


@dataclass(frozen=True)
class WorkItem:
    """One thing to do, about one authorization and/or one appointment."""

    kind: str
    due_on: dt.date
    priority: int
    authorization: str | None
    appointment: str | None
    message: str
    owner: str | None = None
    # appointment_blocked: the finding codes that block it, as data (the message says them too).
    reasons: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The item as the API shows it."""
        item = asdict(self)
        item["due_on"] = self.due_on.isoformat()
        item["reasons"] = list(self.reasons)
        return item


def _item(kind: str, due_on: dt.date, auth: Authorization | None, message: str,
          appointment: str | None = None, reasons: tuple[str, ...] = ()) -> WorkItem:
    return WorkItem(kind=kind, due_on=due_on, priority=PRIORITY[kind],
                    authorization=auth.number if auth is not None else None,
                    appointment=appointment, message=message,
                    owner=auth.owner_email if auth is not None else None, reasons=reasons)


def _authorizations(*conditions: Any) -> list[Authorization]:
    return list(db.session.scalars(
        select(Authorization).where(*conditions)
        .options(joinedload(Authorization.payer), joinedload(Authorization.owner),
                 joinedload(Authorization.renewed_by))).unique())


def follow_ups_due(today: dt.date) -> list[WorkItem]:
    """Authorizations whose follow-up day has come (cancelled ones need none)."""
    return [_item("follow_up_due", auth.follow_up_on, auth,
                  f"{auth.number}: follow-up due {auth.follow_up_on.isoformat()} "
                  f"({auth.status.replace('_', ' ')}).")
            for auth in _authorizations(Authorization.follow_up_on <= today,
                                        Authorization.status != "cancelled")
            if auth.follow_up_on is not None]


def decisions_overdue(today: dt.date) -> list[WorkItem]:
    """Submitted requests the payer has had longer than its decision_days."""
    items = []
    for auth in _authorizations(Authorization.status == "submitted",
                                Authorization.submitted_on.is_not(None)):
        due = auth.submitted_on + dt.timedelta(days=auth.payer.decision_days)
        if due < today:
            items.append(_item(
                "decision_overdue", due, auth,
                f"{auth.number}: no decision from {auth.payer.code} since "
                f"{auth.submitted_on.isoformat()}; due {due.isoformat()} "
                f"({auth.payer.decision_days} days)."))
    return items


def information_requested(today: dt.date) -> list[WorkItem]:
    """Requests where the payer asked for more information."""
    return [_item("info_requested", auth.follow_up_on or today, auth,
                  f"{auth.number}: {auth.payer.code} asked for more information.")
            for auth in _authorizations(Authorization.status == "info_requested")]


def appeals_due(today: dt.date) -> list[WorkItem]:
    """Denials that can still be appealed."""
    return [_item("appeal_due", auth.appeal_due, auth,
                  f"{auth.number}: denied; appeal by {auth.appeal_due.isoformat()}.")
            for auth in _authorizations(Authorization.status == "denied",
                                        Authorization.appeal_due >= today)
            if auth.appeal_due is not None]


def claim_appeals_due(today: dt.date) -> list[WorkItem]:
    """Claims a payer's remittance denied (in whole or part) that can still be appealed."""
    return [_item("appeal_due", appeal.appeal_due, appeal.authorization, appeal.message)
            for appeal in open_appeals(today)]


def renewal_in_progress(auth: Authorization) -> bool:
    """Whether a renewal of ``auth`` exists and is still alive."""
    renewal = auth.renewed_by
    return renewal is not None and renewal.status not in RENEWAL_DEAD_STATUSES


def expiring_without_renewal(today: dt.date) -> list[WorkItem]:
    """Approved ones ending within their payer's renewal lead days, with no renewal going."""
    items = []
    horizon = today + dt.timedelta(days=LONGEST_RENEWAL_LEAD)
    for auth in _authorizations(Authorization.status.in_(USABLE_STATUSES),
                                Authorization.valid_to >= today,
                                Authorization.valid_to <= horizon):
        lead = dt.timedelta(days=auth.payer.renewal_lead_days)
        if auth.valid_to - lead <= today and not renewal_in_progress(auth):
            items.append(_item(
                "expiring_without_renewal", auth.valid_to - lead, auth,
                f"{auth.number}: ends {auth.valid_to.isoformat()} and no renewal is "
                f"in progress."))
    return items


@dataclass(frozen=True)
class DoseOutlook:
    """What an authorization's remaining units mean at the patient's scheduled dose."""

    units_per_dose: int
    doses_left: int | None
    low: bool
    next_appointment: str


def _scheduled(today: dt.date) -> list[CheckedAppointment]:
    """Scheduled appointments in the queue's horizon, each with its check as of now."""
    rows, _total = list_with_checks(Filters(
        date_from=today, date_to=today + dt.timedelta(days=APPOINTMENT_HORIZON_DAYS)))
    return rows


def authorizations_by_number(numbers: Iterable[str]) -> dict[str, Authorization]:
    """The stored authorizations ``numbers`` names (unknown ones left out), with their payer,
    owner and renewal, read in slices however many there are."""
    return {a.number: a for part in in_slices(set(numbers))
            for a in _authorizations(Authorization.number.in_(part))}


def dose_outlook(today: dt.date | None = None,
                 number: str | None = None) -> dict[str, DoseOutlook]:
    """For each authorization a scheduled appointment draws on (or only ``number``): doses
    left at the next scheduled dose, and ``low`` when fewer units remain than it needs.

    The appointments and units are the ones its used / scheduled / free balance counts.
    """
    today = today or dt.date.today()
    conditions = [Authorization.valid_to >= today]
    if number is not None:
        conditions.append(Authorization.number == number)
    auths = db.session.scalars(select(Authorization).where(*conditions))
    outlook = {}
    for found, use in scheduled_use(auths, today).items():
        # A dose that cannot be priced yet (mg/kg without a weight) says nothing about doses.
        priced = [(row.appointment.appointment_id, int(row.check.units))
                  for row in use.appointments if row.check.units is not None]
        if not priced:
            continue
        next_appointment, per_dose = priced[0]
        remaining = use.units.remaining
        doses = None if remaining is None or per_dose <= 0 else remaining // per_dose
        outlook[found] = DoseOutlook(per_dose, doses,
                                     remaining is not None and remaining < per_dose,
                                     next_appointment)
    return outlook


def _shortage(use: ScheduledUse) -> str:
    """What the schedule needs beyond what is left, in units, visits or both."""
    return "; ".join(
        f"{balance.scheduled} {what} scheduled, {balance.remaining} remain "
        f"({balance.short} short)"
        for what, balance in (("units", use.units), ("visits", use.visits)) if balance.short)


def units_short(today: dt.date) -> list[WorkItem]:
    """Approved authorizations whose scheduled appointments need more units or visits than
    remain; due on the first appointment left uncovered.

    Counted by ``scheduled_use``, the balance the authorizations list and the appointment
    page show, so the queue is never short by another number than they are.
    """
    running = db.session.scalars(select(Authorization).where(
        Authorization.status.in_(USABLE_STATUSES), Authorization.valid_to >= today))
    shortfalls = []
    for number, use in scheduled_use(running, today).items():
        first = use.first_uncovered
        if first is not None:
            shortfalls.append((number, use, first.appointment))
    # Reading the schedule expired the authorizations: reload the short ones once.
    stored = authorizations_by_number(number for number, _use, _appointment in shortfalls)
    return [_item("units_short", appointment.date_of_service, stored[number],
                  f"{number}: {_shortage(use)}; {appointment.appointment_id} on "
                  f"{appointment.date_of_service.isoformat()} is the first left uncovered.",
                  appointment.appointment_id)
            for number, use, appointment in shortfalls]


def appointment_problems(rows: list[CheckedAppointment]) -> list[WorkItem]:
    """Scheduled appointments whose standing decision is not eligible."""
    owners = authorizations_by_number({r.check.authorization_number for r in rows
                                       if r.check.authorization_number})
    items = []
    for row in rows:
        decision = row.check.decision
        if decision == Decision.ELIGIBLE:
            continue
        appointment = row.appointment
        auth = owners.get(row.check.authorization_number or "")
        if decision == Decision.NEEDS_AUTHORIZATION and auth is None:
            items.append(_item(
                "appointment_without_authorization", appointment.date_of_service, None,
                f"{appointment.appointment_id} on {appointment.date_of_service.isoformat()}: "
                f"no authorization covers it ({row.payer}, {appointment.hcpcs}).",
                appointment.appointment_id))
            continue
        blocking = tuple(dict.fromkeys(
            f["code"] for f in row.check.result.get("findings", [])
            if f.get("severity") == "block"))
        codes = ", ".join(blocking) or decision
        items.append(_item(
            "appointment_blocked", appointment.date_of_service, auth,
            f"{appointment.appointment_id} on {appointment.date_of_service.isoformat()}: "
            f"{decision.replace('_', ' ')} ({codes}).", appointment.appointment_id, blocking))
    return items


def appointment_items(today: dt.date) -> list[WorkItem]:
    """The queue's kinds that come from the stored schedule."""
    return units_short(today) + appointment_problems(_scheduled(today))


SOURCES: tuple[Callable[[dt.date], list[WorkItem]], ...] = (
    follow_ups_due, decisions_overdue, information_requested, appeals_due, claim_appeals_due,
    expiring_without_renewal, appointment_items)


def worklist(today: dt.date | None = None, owner: str | None = None) -> list[WorkItem]:
    """Every item, most urgent first; only ``owner``'s (an email) when given."""
    today = today or dt.date.today()
    items = [item for source in SOURCES for item in source(today)]
    if owner is not None:
        items = [item for item in items if item.owner == owner.lower()]
    return sorted(items, key=lambda i: (i.due_on, i.priority, i.kind, i.authorization or "",
                                        i.appointment or ""))


def counts(items: Iterable[WorkItem]) -> dict[str, int]:
    """How many items of each kind (every kind listed, zeros included)."""
    found = Counter(item.kind for item in items)
    return {kind: found.get(kind, 0) for kind in KINDS}


@dataclass(frozen=True)
class PayerDecisions:
    """A payer's decisions over the window: how many, and the share approved and denied."""

    payer: str
    decisions: int
    approved: int
    denied: int

    @property
    def approval_rate(self) -> float:
        """Approved (fully or in part) over all decisions."""
        return self.approved / self.decisions if self.decisions else 0.0

    @property
    def denial_rate(self) -> float:
        """Denied over all decisions."""
        return self.denied / self.decisions if self.decisions else 0.0


@dataclass(frozen=True)
class DecisionStats:
    """Approval and denial rates per payer and the median days from submission to decision."""

    since: dt.date
    payers: list[PayerDecisions]
    median_days_to_decision: float | None


def decision_stats(today: dt.date | None = None,
                   days: int = RATE_WINDOW_DAYS) -> DecisionStats:
    """Decisions recorded (as transitions) in the last ``days`` days."""
    today = today or dt.date.today()
    since = today - dt.timedelta(days=days)
    rows = db.session.execute(
        select(Payer.code, AuthorizationEvent.to_status, AuthorizationEvent.on,
               Authorization.submitted_on)
        .join(Authorization, AuthorizationEvent.authorization_id == Authorization.id)
        .join(Payer, Authorization.payer_id == Payer.id)
        .where(AuthorizationEvent.kind == "transition",
               AuthorizationEvent.to_status.in_(DECISIONS),
               AuthorizationEvent.on >= since, AuthorizationEvent.on <= today))
    tally: dict[str, Counter[str]] = defaultdict(Counter)
    waits: list[int] = []
    for payer, status, on, submitted_on in rows:
        tally[payer]["denied" if status == "denied" else "approved"] += 1
        if submitted_on is not None and on is not None and on >= submitted_on:
            waits.append((on - submitted_on).days)
    payers = [PayerDecisions(code, sum(c.values()), c["approved"], c["denied"])
              for code, c in sorted(tally.items())]
    return DecisionStats(since, payers, statistics.median(waits) if waits else None)

