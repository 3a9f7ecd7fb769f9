"""Authorization use: units and visits a claim draws, recorded once per claim reference.

The authorization row is locked (SELECT ... FOR UPDATE on PostgreSQL) while use is recorded, so
two concurrent claims can never both spend the last units. SQLite has no row locks: its writers
are serialised by the database lock, and ``run_serialized`` retries a transaction that lost the
race for it.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import select

from policy_service.errors import Conflict, Invalid, NotFound
from policy_service.extensions import db
from policy_service.logging import get_logger
from policy_service.models import Authorization, AuthorizationUsage
from policy_service.models.authorization import USABLE_STATUSES

log = get_logger("usage")

# Letters, digits and . _ - only: the reference is also the URL segment that voids it.
CLAIM_REFERENCE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
CLAIM_REFERENCE_RULE = "Use 1 to 64 letters, digits, '.', '_' or '-'."


@dataclass(frozen=True)
class UsageResult:
    """The authorization's totals after recording, and whether anything changed."""

    authorization: Authorization
    usage: AuthorizationUsage
    created: bool


def _locked_authorization(number: str) -> Authorization:
    auth = db.session.scalar(
        select(Authorization).where(Authorization.number == number).with_for_update()
    )
    if auth is None:
        raise NotFound(f"No authorization {number}.")
    return auth


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def record_usage(number: str, claim_reference: str, date_of_service: dt.date, units: int,
                 visits: int, actor: str) -> UsageResult:
    """Draw ``units`` and ``visits`` from an authorization for one claim (idempotent)."""
    if not CLAIM_REFERENCE.fullmatch(claim_reference or ""):
        raise Invalid({"claim_reference": [CLAIM_REFERENCE_RULE]})
    if units < 0 or visits < 0:
        raise Invalid({"units" if units < 0 else "visits": ["Must not be negative."]})
    auth = _locked_authorization(number)
    existing = db.session.scalar(
        select(AuthorizationUsage).where(AuthorizationUsage.authorization_id == auth.id,
                                         AuthorizationUsage.claim_reference == claim_reference))
    if existing is not None and existing.voided_at is None:
        same = (existing.date_of_service, existing.units, existing.visits) == (
            date_of_service, units, visits)
        if not same:
            raise Conflict(
                f"{claim_reference} is already recorded on {number} with "
                f"{existing.units} units, {existing.visits} visit(s) on "
                f"{existing.date_of_service}; void it before recording different figures.",
                code="USAGE_ALREADY_RECORDED")
        return UsageResult(auth, existing, created=False)
    if auth.status not in USABLE_STATUSES:
        raise Conflict(f"{number} is {auth.status}; use can only be recorded on an approved "
                       "authorization.", code="AUTH_NOT_APPROVED")
    if not auth.valid_from <= date_of_service <= auth.valid_to:
        raise Invalid({"date_of_service": [
            f"{date_of_service} is outside the authorization's window "
            f"{auth.valid_from} to {auth.valid_to}."]})
    if auth.approved_units is not None and units > auth.remaining_units:
        raise Conflict(f"Recording {units} units would exceed the {auth.remaining_units} "
                       f"remaining on {number}.", code="AUTH_UNITS_EXCEEDED")
    if auth.approved_visits is not None and visits > auth.remaining_visits:
        raise Conflict(f"No visits remain on {number} ({auth.approved_visits} approved).",
                       code="AUTH_VISITS_EXHAUSTED")
    auth.used_units = (auth.used_units or 0) + units
    auth.used_visits = (auth.used_visits or 0) + visits
    if existing is not None:
        usage = existing
        usage.voided_at, usage.voided_by = None, None
        usage.date_of_service, usage.units, usage.visits = date_of_service, units, visits
        usage.recorded_by, usage.recorded_at = actor, _now()
    else:
        usage = AuthorizationUsage(authorization=auth, claim_reference=claim_reference,
                                   date_of_service=date_of_service, units=units, visits=visits,
                                   recorded_by=actor, recorded_at=_now())
        db.session.add(usage)
    db.session.flush()
    log.info("authorization_use_recorded", authorization_id=auth.id, units=units, visits=visits)
    return UsageResult(auth, usage, created=True)


def void_usage(number: str, claim_reference: str, actor: str) -> Authorization:
    """Reverse one recorded use; the totals never go below zero."""
    auth = _locked_authorization(number)
    usage = db.session.scalar(
        select(AuthorizationUsage).where(AuthorizationUsage.authorization_id == auth.id,
                                         AuthorizationUsage.claim_reference == claim_reference,
                                         AuthorizationUsage.voided_at.is_(None)))
    if usage is None:
        raise NotFound(f"No recorded use {claim_reference} on {number}.")
    auth.used_units = max((auth.used_units or 0) - usage.units, 0)
    auth.used_visits = max((auth.used_visits or 0) - usage.visits, 0)
    usage.voided_at, usage.voided_by = _now(), actor
    db.session.flush()
    log.info("authorization_use_voided", authorization_id=auth.id, units=usage.units)
    return auth
