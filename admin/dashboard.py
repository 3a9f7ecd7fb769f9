"""The home page: what needs attention today, each entry linking to its record."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from flask import url_for
from flask_admin import AdminIndexView, expose
from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import joinedload

from admin.security import guard_request
from admin.views.authorizations import low_fraction, low_remaining_clause
from policy_service.database import in_slices
from policy_service.extensions import db
from policy_service.models import Authorization, ChangeRecord, Policy, PolicyVersion
from policy_service.models.authorization import USABLE_STATUSES
from policy_service.services.appointments import UnitBalance, unit_balances
from policy_service.services.worklist import DecisionStats, counts, decision_stats, worklist

NEEDS_ACTION_STATUSES = ("requested", "submitted", "info_requested", "denied", "appealed")


# The dashboard shows at most this many groups of policy changes; the rest are in the history.
RECENT_GROUPS = 10
# A seed or an import writes hundreds of records at once; more are summarised, not fetched.
RECENT_FETCH = 500


@dataclass
class ChangeGroup:
    """Policy changes one actor made within one minute, shown as one dashboard row."""

    minute: dt.datetime
    actor: str
    changes: list[tuple[ChangeRecord, PolicyVersion | None]] = field(default_factory=list)

    @property
    def count(self) -> int:
        """How many changes the group holds."""
        return len(self.changes)

    @property
    def actions(self) -> list[str]:
        """The distinct actions, in the order first seen."""
        return list(dict.fromkeys(change.action for change, _version in self.changes))


def group_changes(changes: list[tuple[ChangeRecord, PolicyVersion | None]],
                  limit: int = RECENT_GROUPS) -> list[ChangeGroup]:
    """Group changes (newest first) by actor and minute; keep the ``limit`` latest groups."""
    groups: dict[tuple[str, dt.datetime], ChangeGroup] = {}
    for change, version in changes:
        minute = change.at.replace(second=0, microsecond=0)
        key = (change.actor, minute)
        if key not in groups:
            if len(groups) == limit:
                continue
            groups[key] = ChangeGroup(minute, change.actor)
        groups[key].changes.append((change, version))
    return list(groups.values())


@dataclass
class Dashboard:
    """What the home page lists."""

    expiring_14: list[Authorization] = field(default_factory=list)
    expiring_30: list[Authorization] = field(default_factory=list)
    low_remaining: list[Authorization] = field(default_factory=list)
    needs_action: list[Authorization] = field(default_factory=list)
    policies_changing: list[PolicyVersion] = field(default_factory=list)
    recent_changes: list[ChangeGroup] = field(default_factory=list)
    recent_change_count: int = 0
    work_counts: dict[str, int] = field(default_factory=dict)
    decisions: DecisionStats | None = None
    unit_balances: dict[str, UnitBalance] = field(default_factory=dict)


def _authorizations(*conditions: Any) -> list[Authorization]:
    query = (select(Authorization)
             .options(joinedload(Authorization.patient), joinedload(Authorization.payer))
             .where(*conditions)
             .order_by(Authorization.valid_to, Authorization.number))
    return list(db.session.scalars(query).unique())


def _versions(*conditions: Any) -> list[PolicyVersion]:
    query = (select(PolicyVersion).join(PolicyVersion.policy)
             .options(joinedload(PolicyVersion.policy).joinedload(Policy.payer))
             .where(*conditions)
             .order_by(PolicyVersion.effective_from, Policy.code))
    return list(db.session.scalars(query).unique())


def build_dashboard(today: dt.date, fraction: float) -> Dashboard:
    """Collect the home page's lists in a fixed number of queries."""
    board = Dashboard()
    in_30 = today + dt.timedelta(days=30)
    expiring = _authorizations(Authorization.status.in_(USABLE_STATUSES),
                               Authorization.valid_to >= today, Authorization.valid_to <= in_30)
    cutoff_14 = today + dt.timedelta(days=14)
    board.expiring_14 = [a for a in expiring if a.valid_to <= cutoff_14]
    board.expiring_30 = [a for a in expiring if a.valid_to > cutoff_14]
    board.low_remaining = _authorizations(low_remaining_clause(fraction),
                                          Authorization.valid_to >= today)
    board.needs_action = _authorizations(Authorization.status.in_(NEEDS_ACTION_STATUSES))
    listed = [*expiring, *board.low_remaining, *board.needs_action]
    listed_ids = {a.id for a in listed}
    # Before the work queue reads the schedule (which expires loaded authorizations).
    board.unit_balances = unit_balances(listed)
    board.policies_changing = _versions(
        (PolicyVersion.effective_from.between(today, in_30))
        | (PolicyVersion.effective_to.between(today, in_30)))
    since = dt.datetime.combine(today - dt.timedelta(days=7), dt.time())
    recent = (ChangeRecord.entity_type == "policy", ChangeRecord.at >= since)
    board.recent_change_count = db.session.scalar(
        select(func.count()).select_from(ChangeRecord).where(*recent)) or 0
    changes = list(db.session.scalars(
        select(ChangeRecord).where(*recent)
        .order_by(ChangeRecord.at.desc(), ChangeRecord.id.desc()).limit(RECENT_FETCH)))
    grouped = group_changes(list(zip(changes, [None] * len(changes), strict=True)))
    # Look up versions only for the rows shown.
    shown = [change for group in grouped for change, _version in group.changes]
    versions = dict(zip((c.id for c in shown), _versions_by_key(shown), strict=True))
    for group in grouped:
        group.changes = [(change, versions[change.id]) for change, _version in group.changes]
    board.recent_changes = grouped
    board.work_counts = counts(worklist(today))
    board.decisions = decision_stats(today)
    # Reading the schedule expired the listed authorizations: reload them once, not per row.
    for part in in_slices(listed_ids):
        _authorizations(Authorization.id.in_(part))
    return board


def _versions_by_key(changes: list[ChangeRecord]) -> list[PolicyVersion | None]:
    """Return the version each change record is about (None once deleted), in one query."""
    wanted: dict[tuple[str, dt.date], None] = {}
    for change in changes:
        code, _, day = change.entity_key.rpartition("@")
        try:
            wanted[(code, dt.date.fromisoformat(day))] = None
        except ValueError:
            continue
    found: dict[tuple[str, dt.date], PolicyVersion] = {}
    if wanted:
        for version in _versions(tuple_(Policy.code, PolicyVersion.effective_from).in_(
                list(wanted))):
            found[(version.policy.code, version.effective_from)] = version
    result: list[PolicyVersion | None] = []
    for change in changes:
        code, _, day = change.entity_key.rpartition("@")
        try:
            result.append(found.get((code, dt.date.fromisoformat(day))))
        except ValueError:
            result.append(None)
    return result


class DashboardView(AdminIndexView):
    """The admin home page; signed-in users with READ only."""

    def _handle_view(self, name: str, **kwargs: Any) -> Any:
        return guard_request()

    @expose("/")
    def index(self) -> str:
        """Show what needs attention today."""
        today = dt.date.today()
        since = f"{today - dt.timedelta(days=7)} 00:00:00"
        history = url_for("changerecord.index_view", flt0_entity_type_equals="policy",
                          flt1_when_greater_than=since)
        return self.render("admin/index.html", board=build_dashboard(today, low_fraction()),
                           today=today, history_url=history)
