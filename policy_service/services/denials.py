"""Reading denials: the filtered list and the billing manager's report.

Dates filter on the day the payer decided (the remittance's adjudication date). The report's
denial rate is claims with at least one matching denial over claims adjudicated (reversals are
not adjudications); "preventable" means the reason code table names a finding of this service
that catches the cause before submission.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import selectinload

from policy_service.errors import Invalid
from policy_service.extensions import db
from policy_service.models import Denial, Payer, Remittance, RemittanceClaim
from policy_service.services.reason_codes import reason_table
from policy_service.services.remittance import denial_record

TOP_REASONS = 10


@dataclass(frozen=True)
class DenialFilters:
    """Which denials a list or report covers; every field optional."""

    payer: str | None = None
    start: dt.date | None = None
    end: dt.date | None = None
    group: str | None = None
    carc: str | None = None

    def check(self) -> None:
        """Raise Invalid naming a payer that does not exist or dates in the wrong order."""
        errors: dict[str, list[str]] = {}
        if self.payer and _payer_id(self.payer) is None:
            errors["payer"] = [f"No payer {self.payer}."]
        if self.start and self.end and self.start > self.end:
            errors["from"] = [f"{self.start} is after 'to' ({self.end})."]
        if errors:
            raise Invalid(errors)


def _payer_id(code: str) -> int | None:
    return db.session.scalar(select(Payer.id).where(Payer.code == code))


def _denial_query(filters: DenialFilters) -> Select[Any]:
    query = select(Denial)
    if filters.payer:
        query = query.where(Denial.payer_id == _payer_id(filters.payer))
    if filters.start:
        query = query.where(Denial.adjudicated_on >= filters.start)
    if filters.end:
        query = query.where(Denial.adjudicated_on <= filters.end)
    if filters.group:
        query = query.where(Denial.group_code == filters.group)
    if filters.carc:
        query = query.where(Denial.carc == filters.carc)
    return query


def list_denials(filters: DenialFilters, page: int = 1, per_page: int = 100) -> dict[str, Any]:
    """A page of denials, newest decision first, each with what would have prevented it."""
    filters.check()
    query = _denial_query(filters)
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    rows = db.session.scalars(
        query.options(selectinload(Denial.payer), selectinload(Denial.authorization))
        .order_by(Denial.adjudicated_on.desc(), Denial.id.desc())
        .limit(per_page).offset((page - 1) * per_page))
    table = reason_table()
    return {"items": [denial_record(d, table) for d in rows], "total": total, "page": page,
            "per_page": per_page}


def _month(day: dt.date) -> str:
    return f"{day:%Y-%m}"


def denial_report(filters: DenialFilters) -> dict[str, Any]:
    """Denial rate per payer, top reasons, the share our rules would have caught, the trend."""
    filters.check()
    table = reason_table()
    claims = select(RemittanceClaim.id, Remittance.payer_id, Remittance.adjudicated_on).join(
        Remittance).where(RemittanceClaim.outcome != "reversed")
    if filters.payer:
        claims = claims.where(Remittance.payer_id == _payer_id(filters.payer))
    if filters.start:
        claims = claims.where(Remittance.adjudicated_on >= filters.start)
    if filters.end:
        claims = claims.where(Remittance.adjudicated_on <= filters.end)
    claim_rows = db.session.execute(claims).all()
    denial_rows = db.session.execute(
        _denial_query(filters).with_only_columns(
            Denial.remittance_claim_id, Denial.payer_id, Denial.carc, Denial.rarcs,
            Denial.amount, Denial.adjudicated_on)).all()
    payers = {p.id: p for p in db.session.scalars(select(Payer))}

    denied_claims = {row.remittance_claim_id for row in denial_rows}
    per_payer: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    per_month: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"claims": 0, "denied_claims": 0, "denials": 0, "amount": Decimal(0)})
    for claim_id, payer_id, day in claim_rows:
        per_payer[payer_id][0] += 1
        per_month[_month(day)]["claims"] += 1
        if claim_id in denied_claims:
            per_payer[payer_id][1] += 1
            per_month[_month(day)]["denied_claims"] += 1

    reasons: Counter[str] = Counter()
    reason_amounts: dict[str, Decimal] = defaultdict(Decimal)
    preventable = preventable_amount = 0
    total_amount = Decimal(0)
    for row in denial_rows:
        amount = Decimal(row.amount)
        reasons[row.carc] += 1
        reason_amounts[row.carc] += amount
        total_amount += amount
        per_month[_month(row.adjudicated_on)]["denials"] += 1
        per_month[_month(row.adjudicated_on)]["amount"] += amount
        if table.preventable_by(row.carc, list(row.rarcs or [])):
            preventable += 1
            preventable_amount += amount

    def rate(denied: int, total: int) -> float:
        return round(denied / total, 4) if total else 0.0

    return {
        "rate_by_payer": sorted(
            ({"payer": payers[pid].code, "name": payers[pid].name, "claims": counts[0],
              "denied_claims": counts[1], "rate": rate(counts[1], counts[0])}
             for pid, counts in per_payer.items()),
            key=lambda r: (-r["rate"], r["payer"])),
        "top_reasons": [
            {"carc": carc, "description": table.description(carc), "count": count,
             "amount": reason_amounts[carc],
             "preventable_by": table.preventable_by(carc, [])}
            for carc, count in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))
        ][:TOP_REASONS],
        "preventable": {"denials": len(denial_rows), "preventable": preventable,
                        "share": rate(preventable, len(denial_rows)),
                        "amount": total_amount, "preventable_amount": preventable_amount},
        "trend": [{"month": month, **values, "rate": rate(values["denied_claims"],
                                                          values["claims"])}
                  for month, values in sorted(per_month.items())],
    }


@dataclass(frozen=True)
class OpenAppeal:
    """A claim with denials whose appeal window is still open: what the work queue shows."""

    claim_reference: str
    payer: str
    authorization: Any
    appeal_due: dt.date
    codes: tuple[str, ...]
    amount: Decimal

    @property
    def message(self) -> str:
        """The work queue's words: records by number, never patient details."""
        return (f"Claim {self.claim_reference}: {self.payer} denied {self.amount:,.2f} "
                f"({', '.join(self.codes)}); appeal by {self.appeal_due.isoformat()}.")


def open_appeals(today: dt.date) -> list[OpenAppeal]:
    """One entry per remittance claim whose denials can still be appealed, earliest first."""
    rows = db.session.scalars(
        select(Denial).where(Denial.appeal_due.is_not(None), Denial.appeal_due >= today)
        .options(selectinload(Denial.payer), selectinload(Denial.authorization))
        .order_by(Denial.appeal_due, Denial.id))
    grouped: dict[int, list[Denial]] = defaultdict(list)
    for denial in rows:
        grouped[denial.remittance_claim_id].append(denial)
    appeals = []
    for denials in grouped.values():
        first = denials[0]
        appeals.append(OpenAppeal(
            claim_reference=first.claim_reference, payer=first.payer.code,
            authorization=next((d.authorization for d in denials if d.authorization), None),
            appeal_due=min(d.appeal_due for d in denials if d.appeal_due),
            codes=tuple(dict.fromkeys(f"{d.group_code}-{d.carc}" for d in denials)),
            amount=sum((Decimal(d.amount) for d in denials), Decimal(0))))
    return sorted(appeals, key=lambda a: (a.appeal_due, a.claim_reference))
