"""The scheduler's view of the stored schedule: upcoming appointments with their standing
checks, one appointment's check, and an authorization's forecast as a small timeline.

Every number here comes from the appointments service (checks as of now, units as used /
scheduled / free); the pages only choose the range, filter, sort and print.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from flask import Response, render_template, request
from flask_admin import expose
from markupsafe import Markup

from admin.display import units_text
from admin.scheduler import (
    DECISION_LABELS,
    DECISION_TONES,
    SEVERITY_TONES,
    may_save_cases,
    payer_options,
    request_of_record,
    save_case_form,
)
from admin.security import SecurePageView, neutralise_cell
from policy_service.auth import Permission
from policy_service.domain.requests import CHECK_DECISIONS, Filters
from policy_service.errors import NotFound
from policy_service.extensions import db
from policy_service.models import Authorization
from policy_service.services.appointments import (
    CheckedAppointment,
    UnitBalance,
    appointment_record,
    forecast,
    get_with_check,
    list_with_checks,
    now,
    unit_balances_of,
)

RANGES = {"tomorrow": "Tomorrow", "week": "This week", "dates": "Dates"}
SORTS = {"date": "Date", "decision": "Decision", "patient": "Patient", "payer": "Payer",
         "drug": "Drug", "changed": "Changed"}
# Most urgent first when sorting by decision: what stops an infusion, then what needs work.
DECISION_ORDER = {"not_eligible": 0, "needs_authorization": 1, "needs_information": 2,
                  "error": 3, "eligible": 4}
MAX_ROWS = 2000


@dataclass
class UpcomingQuery:
    """What the Upcoming page shows: a date range, filters and a sort, read from the URL."""

    range: str = "week"
    start: dt.date | None = None
    end: dt.date | None = None
    decision: str | None = None
    payer: str | None = None
    drug: str | None = None
    authorization: str | None = None
    sort: str = "date"
    descending: bool = False
    errors: list[str] = field(default_factory=list)

    @classmethod
    def from_args(cls, args: Any, today: dt.date) -> UpcomingQuery:
        """Read the page's query string; a bad value is named and replaced by the default."""
        query = cls()
        chosen = args.get("range", "week")
        if chosen in RANGES:
            query.range = chosen
        else:
            query.errors.append(f"Unknown range {chosen!r}; showing this week.")
        if query.range == "tomorrow":
            query.start = query.end = today + dt.timedelta(days=1)
        elif query.range == "week":
            query.start, query.end = today, today + dt.timedelta(days=6 - today.weekday())
        else:
            query.start = query._date(args, "start", today)
            query.end = query._date(args, "end", query.start + dt.timedelta(days=6))
            if query.end < query.start:
                query.errors.append("The end date is before the start date; showing one day.")
                query.end = query.start
        decision = args.get("decision") or None
        if decision is not None and decision not in CHECK_DECISIONS:
            query.errors.append(f"Unknown decision {decision!r}; showing every decision.")
            decision = None
        query.decision = decision
        query.payer = (args.get("payer") or "").strip()[:40] or None
        query.drug = (args.get("drug") or "").strip().upper()[:5] or None
        query.authorization = (args.get("authorization") or "").strip()[:64] or None
        query.sort = args.get("sort") if args.get("sort") in SORTS else "date"
        query.descending = args.get("dir") == "desc"
        return query

    def _date(self, args: Any, name: str, default: dt.date) -> dt.date:
        text = args.get(name) or ""
        if not text:
            return default
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            self.errors.append(f"{name}: {text!r} is not a date (YYYY-MM-DD).")
            return default

    def filters(self) -> Filters:
        """The service's filters for this query."""
        return Filters(date_from=self.start, date_to=self.end, decision=self.decision,
                       payer=self.payer, hcpcs=self.drug, authorization=self.authorization)

    def args(self, **changes: Any) -> dict[str, Any]:
        """This query as URL arguments, with ``changes``."""
        values: dict[str, Any] = {
            "range": self.range, "decision": self.decision, "payer": self.payer,
            "drug": self.drug, "authorization": self.authorization, "sort": self.sort,
            "dir": "desc" if self.descending else "asc"}
        if self.range == "dates":
            values.update(start=self.start.isoformat() if self.start else None,
                          end=self.end.isoformat() if self.end else None)
        values.update(changes)
        return {k: v for k, v in values.items() if v}


def _sort_key(sort: str) -> Any:
    keys = {
        "date": lambda r: (r.appointment.date_of_service, r.appointment.appointment_id),
        "decision": lambda r: (DECISION_ORDER.get(r.check.decision, 9),
                               r.appointment.date_of_service),
        "patient": lambda r: (r.patient, r.appointment.date_of_service),
        "payer": lambda r: (r.payer, r.appointment.date_of_service),
        "drug": lambda r: (r.appointment.hcpcs, r.appointment.date_of_service),
        "changed": lambda r: (r.check.decision_changed_at or dt.datetime.min,
                              r.appointment.date_of_service),
    }
    return keys[sort]


def dose_text(row: CheckedAppointment) -> str:
    """The planned dose as people write it."""
    appointment = row.appointment
    if appointment.dose_mg is not None:
        return f"{Decimal(appointment.dose_mg).normalize():f} mg"
    return f"{Decimal(appointment.dose_mg_per_kg).normalize():f} mg/kg"


def reasons(row: CheckedAppointment) -> list[str]:
    """Why the check says what it says: its blocking and warning findings, or its errors."""
    result = row.check.result
    if result.get("errors"):
        return [f"{e['field']}: {e['message']}" for e in result["errors"]]
    return [f["message"] for f in result.get("findings") or [] if f["severity"] != "info"]


class UpcomingView(SecurePageView):
    """Upcoming appointments: tomorrow, this week or dates, filtered, sorted, printable."""

    permission = Permission.READ

    def _rows(self, query: UpcomingQuery) -> tuple[list[CheckedAppointment], int,
                                                   dict[str, UnitBalance]]:
        rows, total = list_with_checks(query.filters(), limit=MAX_ROWS)
        rows.sort(key=_sort_key(query.sort), reverse=query.descending)
        outlook = unit_balances_of(r.check.authorization_number for r in rows)
        return rows, total, outlook

    @expose("/")
    def index(self) -> str:
        """The upcoming appointments with their checks as of now."""
        today = dt.date.today()
        query = UpcomingQuery.from_args(request.args, today)
        rows, total, outlook = self._rows(query)
        changed_since = now() - dt.timedelta(days=1)
        drugs = sorted({r.appointment.hcpcs for r in rows} | ({query.drug} - {None}))
        page = self.render(
            "admin/upcoming.html", rows=rows, total=total, outlook=outlook, query=query,
            ranges=RANGES, sorts=SORTS, decisions=CHECK_DECISIONS, labels=DECISION_LABELS,
            tones=DECISION_TONES, payers=payer_options(), drugs=drugs, today=today,
            changed_since=changed_since, max_rows=MAX_ROWS, dose_text=dose_text,
            reasons=reasons, units_text=units_text)
        # The checks recomputed while reading are stored for the next reader (after rendering:
        # a commit expires the loaded rows).
        db.session.commit()
        return page

    @expose("/export.csv")
    def export(self) -> Response:
        """The same rows as CSV, every cell safe to open in a spreadsheet."""
        query = UpcomingQuery.from_args(request.args, dt.date.today())
        rows, _total, outlook = self._rows(query)
        changed_since = now() - dt.timedelta(days=1)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["appointment_id", "date_of_service", "patient_id", "payer", "hcpcs",
                         "dose", "site_of_care", "drug_supply", "rendering_npi", "decision",
                         "changed_since_yesterday",
                         "previous_decision", "decision_changed_at", "authorization",
                         "units", "authorization_units", "codes", "reasons"])
        for row in rows:
            check = row.check
            number = check.authorization_number or ""
            writer.writerow([neutralise_cell(v) for v in [
                row.appointment.appointment_id, row.appointment.date_of_service.isoformat(),
                row.patient, row.payer, row.appointment.hcpcs, dose_text(row),
                row.appointment.site_of_care or "", row.appointment.drug_supply or "",
                row.appointment.rendering_npi or "", check.decision,
                "yes" if check.changed_since(changed_since) else "",
                check.previous_decision or "",
                check.decision_changed_at.isoformat(timespec="minutes")
                if check.decision_changed_at else "",
                number, check.units if check.units is not None else "",
                units_text(outlook.get(number)),
                " ".join(f["code"] for f in check.result.get("findings") or []),
                " | ".join(reasons(row))]])
        db.session.commit()
        return Response(out.getvalue(), mimetype="text/csv", headers={
            "Content-Disposition": "attachment; filename=upcoming-appointments.csv",
            "Cache-Control": "no-store"})

    @expose("/appointment/<appointment_id>")
    def appointment(self, appointment_id: str) -> str | tuple[str, int]:
        """One appointment's check as of now: decision, every finding, billing, its
        authorization's units as used / scheduled / free."""
        try:
            row = get_with_check(appointment_id)
        except NotFound:
            return self.render("admin/appointment.html", row=None,
                               appointment_id=appointment_id), 404
        number = row.check.authorization_number
        outlook = unit_balances_of([number] if number else [])
        case_form = None
        if may_save_cases():
            case_form = save_case_form(request_of_record(appointment_record(row)),
                                       row.check.result)
        page = self.render("admin/appointment.html", row=row, appointment_id=appointment_id,
                           case_form=case_form,
                           outlook=outlook.get(number or ""), labels=DECISION_LABELS,
                           tones=DECISION_TONES, severity_tones=SEVERITY_TONES,
                           dose_text=dose_text, units_text=units_text,
                           changed_since=now() - dt.timedelta(days=1))
        db.session.commit()
        return page


def forecast_timeline(_view: Any, _context: Any, model: Authorization, _name: str) -> Markup:
    """Column formatter for an authorization's page: its forecast as a small timeline."""
    outlook = forecast(model.number)
    # The same words as the authorization's other pages ("not approved" for a request).
    balance = UnitBalance(is_approved=model.is_approved, **outlook["units"])
    return Markup(render_template("admin/forecast_timeline.html",  # noqa: S704 - a template
                                  forecast=outlook, balance=balance, tones=DECISION_TONES,
                                  labels=DECISION_LABELS))
