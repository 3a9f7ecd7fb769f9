"""Prior authorizations: status, window, units and visits used, with the filters people need."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import current_app, flash, g, request, url_for
from flask_admin import expose
from flask_admin.contrib.sqla.filters import BaseSQLAFilter
from markupsafe import Markup
from sqlalchemy import String, and_, cast, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Query, joinedload
from wtforms import Form
from wtforms.validators import DataRequired

from admin.checks import field_messages, value
from admin.display import units_text
from admin.fields import CommaListField, options
from admin.security import STALE_MESSAGE, SecureModelView, history_link, join_list
from admin.upcoming import forecast_timeline
from admin.worklist import assignable_users, may_change_authorizations
from policy_service.audit import current_actor
from policy_service.errors import Conflict, Invalid
from policy_service.extensions import db
from policy_service.models import CHANNELS, SITES_OF_CARE, Authorization
from policy_service.models.authorization import USABLE_STATUSES
from policy_service.services.appointments import UnitBalance, unit_balances
from policy_service.services.authorizations import (
    TRANSITIONS,
    StaleRecord,
    attachments,
    authorization_errors,
    create_authorization,
    events,
    number_errors,
    record_values,
    stored_references,
    update_authorization,
)
from policy_service.services.worklist import dose_outlook


def low_remaining_clause(fraction: float) -> Any:
    """SQL condition: a usable authorization with less than ``fraction`` of units or visits left."""
    units_low = and_(Authorization.approved_units > 0,
                     Authorization.approved_units - Authorization.used_units
                     < Authorization.approved_units * fraction)
    visits_low = and_(Authorization.approved_visits > 0,
                      Authorization.approved_visits - Authorization.used_visits
                      < Authorization.approved_visits * fraction)
    return and_(Authorization.status.in_(USABLE_STATUSES), or_(units_low, visits_low))


def low_fraction() -> float:
    """The share of units or visits below which an authorization counts as running low."""
    return float(current_app.config.get("AUTH_UNITS_LOW_FRACTION", 0.2))


class ExpiringWithinFilter(BaseSQLAFilter):
    """Usable authorizations whose window ends within the chosen number of days."""

    def apply(self, query: Query, value: Any, alias: Any = None) -> Query:
        """Keep authorizations ending between today and today + ``value`` days."""
        today = dt.date.today()
        end = today + dt.timedelta(days=int(value))
        return query.filter(Authorization.valid_to >= today, Authorization.valid_to <= end,
                            Authorization.status.in_(USABLE_STATUSES))

    def operation(self) -> str:
        """Label shown between the filter name and its value."""
        return "within"


class LowRemainingFilter(BaseSQLAFilter):
    """Usable authorizations with less than the configured share of units or visits left."""

    def apply(self, query: Query, value: Any, alias: Any = None) -> Query:
        """Keep (yes) or drop (no) the authorizations running low."""
        clause = low_remaining_clause(low_fraction())
        return query.filter(clause if value == "1" else ~clause)

    def operation(self) -> str:
        """Label shown between the filter name and its value."""
        return "is"


class HcpcsFilter(BaseSQLAFilter):
    """Authorizations that cover a drug (HCPCS code)."""

    def apply(self, query: Query, value: Any, alias: Any = None) -> Query:
        """Match the code as a whole element of the JSON list, on SQLite and PostgreSQL."""
        code = str(value).strip().upper().replace('"', "")
        return query.filter(cast(Authorization.hcpcs, String).like(f'%"{code}"%'))

    def operation(self) -> str:
        """Label shown between the filter name and its value."""
        return "includes"


def _bar(what: str, used: int | None, approved: int | None,
         is_approved: bool = True) -> Markup:
    """A bar that fills with what is left, as its label says ("10 of 160 left")."""
    if not is_approved:
        # A request, a denial or a cancellation has no limit to show: nothing was approved.
        return Markup('<span class="text-muted">not approved</span>')
    if approved is None:
        return Markup('<span class="text-muted">no limit</span>')
    if not approved:
        return Markup('<span class="text-muted">none approved</span>')
    used = used or 0
    left = max(approved - used, 0)
    tone = "usage-low" if left < approved * low_fraction() else "usage-ok"
    # A native <progress> needs no inline width (the CSP allows no style attributes).
    return Markup(
        '<div class="usage" title="{used} of {approved} used">'
        '<progress class="usage-bar {tone}" value="{left}" max="{approved}" '
        'aria-label="{what} left: {left} of {approved}"></progress>'
        '<small>{left} of {approved} left</small></div>'
    ).format(used=used, approved=approved, tone=tone, left=left, what=what.capitalize())


def page_balances(auths: list[Authorization]) -> dict[str, UnitBalance]:
    """The units of a page's authorizations as used / scheduled / free, kept for the request:
    one pass over the schedule for the whole page, not one per row."""
    ids = [a.id for a in auths]
    balances = unit_balances(auths)
    g.unit_balances = {**getattr(g, "unit_balances", {}), **balances}
    if ids:
        # Reading the schedule expired the loaded rows: reload them in one query, not per row.
        db.session.scalars(select(Authorization).where(Authorization.id.in_(ids)).options(
            joinedload(Authorization.patient), joinedload(Authorization.payer))).all()
    return balances


def balance_of(model: Authorization) -> UnitBalance:
    """The units of ``model`` from the page's pass (computed alone on a one-record page)."""
    balances = getattr(g, "unit_balances", {})
    if model.number not in balances:
        page_balances([model])
        balances = g.unit_balances
    return balances[model.number]


def units_column(_view: Any, _context: Any, model: Authorization, _name: str) -> Markup:
    """Column formatter: units as used / scheduled / free (short ones marked)."""
    balance = balance_of(model)
    tone = "text-danger" if balance.short else ("text-muted" if not balance.is_approved
                                                 or balance.approved is None else "")
    return Markup('<span class="unit-balance {}">{}</span>').format(tone, units_text(balance))


def visits_bar(_view: Any, _context: Any, model: Authorization, _name: str) -> Markup:
    """Column formatter: visits left of those approved, as a progress bar."""
    return _bar("visits", model.used_visits, model.approved_visits, model.is_approved)


def usage_link(_view: Any, _context: Any, model: Authorization, _name: str) -> Markup:
    """Column formatter: a link to the claims recorded against this authorization."""
    url = url_for("authorization_usage.index", number=model.number)
    return Markup('<a href="{}">Usage</a>').format(url)


class AuthorizationView(SecureModelView):
    """Prior authorizations with their window and what is left of them."""

    # What fits at 1366 px; the window start, the raw counts and the site are in details/export.
    column_list = ["number", "patient", "payer", "hcpcs", "state", "valid_to", "units",
                   "visits_left", "usage", "history"]
    column_details_list = ["number", "patient", "payer", "hcpcs", "diagnoses", "status", "state",
                           "valid_from", "valid_to", "requested_units", "approved_units",
                           "used_units", "units", "requested_visits", "approved_visits",
                           "used_visits", "visits_left", "site_of_care", "submitted_on",
                           "decided_on", "payer_reference", "channel", "ordering_npi",
                           "denial_reason", "appeal_due", "follow_up_on", "owner", "renewal_of",
                           "renewed_by", "notes", "usage", "forecast", "history"]
    column_export_list = ["number", "patient", "payer", "hcpcs", "diagnoses", "status", "state",
                          "valid_from", "valid_to", "requested_units", "approved_units",
                          "used_units", "units", "requested_visits", "approved_visits",
                          "used_visits", "visits_left", "site_of_care", "submitted_on",
                          "decided_on", "payer_reference", "channel", "ordering_npi",
                          "denial_reason", "appeal_due", "follow_up_on", "owner", "notes"]
    column_searchable_list = ["number", "patient.external_id"]
    column_filters = [
        ExpiringWithinFilter(Authorization.valid_to, "Expiring",
                             options=(("14", "14 days"), ("30", "30 days"))),
        LowRemainingFilter(Authorization.id, "Low remaining", options=(("1", "yes"),
                                                                       ("0", "no"))),
        "status",
        "payer.code",
        HcpcsFilter(Authorization.hcpcs, "Drug (HCPCS)"),
        "valid_to",
        "patient.external_id",
    ]
    column_labels = {"payer.code": "Payer", "patient.external_id": "Patient",
                     "ordering_npi": "Ordering NPI", "renewed_by": "Renewed by",
                     "hcpcs": "HCPCS", "units": "Units (used / scheduled / free)",
                     "visits_left": "Visits",
                     "history": "History", "usage": "Usage",
                     "forecast": "Scheduled (forecast)"}
    column_formatters = {"units": units_column, "visits_left": visits_bar,
                         "hcpcs": join_list, "diagnoses": join_list, "history": history_link,
                         "usage": usage_link, "forecast": forecast_timeline}
    column_export_exclude_list = ["history", "usage"]
    column_formatters_export = {
        "hcpcs": join_list, "diagnoses": join_list,
        "units": lambda _v, _c, m, _n: units_text(balance_of(m)),
        "visits_left": lambda _v, _c, m, _n: m.remaining_visits,
    }
    column_sortable_list = ["number", "status", "valid_from", "valid_to", "approved_units",
                            "used_units", ("payer", "payer.code"),
                            ("patient", "patient.external_id")]
    column_default_sort = ("valid_to", False)
    # Status moves only by transition (buttons on the details page); use only by claims.
    form_columns = ["number", "patient", "payer", "hcpcs", "diagnoses", "site_of_care",
                    "valid_from", "valid_to", "requested_units", "requested_visits",
                    "approved_units", "approved_visits", "submitted_on", "decided_on",
                    "payer_reference", "channel", "ordering_npi", "denial_reason", "appeal_due",
                    "follow_up_on", "owner", "notes"]
    form_choices = {"site_of_care": options(SITES_OF_CARE, blank=True),
                    "channel": options(CHANNELS, blank=True)}
    form_overrides = {"hcpcs": CommaListField, "diagnoses": CommaListField}
    form_args = {"hcpcs": {"label": "HCPCS codes", "upper": True},
                 "diagnoses": {"label": "Diagnoses (ICD-10-CM)", "upper": True},
                 "ordering_npi": {"label": "Ordering provider NPI"},
                 "patient": {"validators": [DataRequired("Choose the patient.")]},
                 "payer": {"validators": [DataRequired("Choose the payer.")]},
                 # select2 shows the blank choice's text; a blank one leaves it without a name.
                 "site_of_care": {"blank_text": "(not set)"},
                 "owner": {"blank_text": "(nobody)"},
                 "channel": {"blank_text": "(not set)"}}
    unique_checks = {"number": number_errors}

    def get_list(self, page: Any, sort_column: Any, sort_desc: Any, search: Any,
                 filters: Any, execute: bool = True, page_size: Any = None) -> Any:
        """The page's rows, with their units as used / scheduled / free in one pass."""
        count, rows = super().get_list(page, sort_column, sort_desc, search, filters,
                                       execute=execute, page_size=page_size)
        if execute:
            rows = list(rows)
            page_balances(rows)
        return count, rows

    def scaffold_form(self) -> type[Form]:
        """The form, whose patient and payer start unchosen (a preselected first entry was
        saved unnoticed); DataRequired still insists on a choice."""
        form_class = super().scaffold_form()
        for name, blank in (("patient", "Choose a patient"), ("payer", "Choose a payer")):
            getattr(form_class, name).kwargs.update(allow_blank=True, blank_text=blank)
        return form_class

    def form_record(self, form: Form) -> dict[str, Any]:
        """The submitted values under their bundle names, references by natural key."""
        values = {name: value(form, name) for name in self.form_columns
                  if hasattr(form, name)}
        for name, key in (("payer", "code"), ("patient", "external_id"), ("owner", "email")):
            record = values.get(name)
            values[name] = getattr(record, key) if record is not None else None
        for name, data in list(values.items()):
            if isinstance(data, str) and name not in ("hcpcs", "diagnoses"):
                values[name] = data.strip() or None
        return values

    def check_form(self, form: Form) -> dict[str, str]:
        """The checks every write path runs (codes known, window, limits, references)."""
        values = self.form_record(form)
        stored = self._editing()
        if stored is not None:
            values = {**record_values(stored), **values, "number": stored.number}
        return field_messages(authorization_errors(values, stored_references([values])))

    def _editing(self) -> Authorization | None:
        record_id = request.args.get("id")
        if (request.endpoint or "").endswith("edit_view") and record_id and record_id.isdigit():
            return db.session.get(Authorization, int(record_id))
        return None

    def create_model(self, form: Form) -> Authorization | bool:
        """Create through the authorizations service (the one write path)."""
        try:
            auth = create_authorization(self.form_record(form), current_actor())
            db.session.commit()
        except (Invalid, Conflict) as exc:
            db.session.rollback()
            flash(_problem_text(exc), "error")
            return False
        self.after_model_change(form, auth, True)
        return auth

    def save_once(self, form: Form, model: Authorization) -> bool:
        """Edit through the authorizations service; a stale form is refused.

        The secure base runs this inside its retry loop, so a save that meets SQLite's
        "database is locked" is rolled back and tried again, never shown as SQL.
        """
        expected = getattr(form, "expected_version", None)
        version = int(expected.data) if expected is not None and str(
            expected.data or "").isdigit() else None
        values = self.form_record(form)
        values.pop("number", None)
        try:
            update_authorization(model, values, current_actor(), expected_version=version)
            db.session.commit()
        except StaleRecord:
            db.session.rollback()
            flash(STALE_MESSAGE, "error")
            return False
        except (Invalid, Conflict) as exc:
            db.session.rollback()
            flash(_problem_text(exc), "error")
            return False
        except SQLAlchemyError as exc:
            db.session.rollback()
            self.handle_view_exception(exc)
            return False
        self.after_model_change(form, model, False)
        return True

    details_template = "admin/authorization_details.html"

    @expose("/details/")
    def details_view(self) -> Any:
        """The record with its lifecycle actions, letters and events."""
        record_id = request.args.get("id", "")
        auth = db.session.get(Authorization, int(record_id)) if record_id.isdigit() else None
        if auth is not None:
            self._template_args.update(
                events=events(auth), letters=attachments(auth), transitions=TRANSITIONS,
                may_act=may_change_authorizations(), users=assignable_users(),
                doses=dose_outlook(number=auth.number).get(auth.number))
        return super().details_view()

    def edit_form(self, obj: Any = None) -> Form:
        """The number is the natural key: shown, not editable."""
        form = super().edit_form(obj)
        form.number.render_kw = {"readonly": True}
        return form


def _problem_text(exc: Invalid | Conflict) -> str:
    if isinstance(exc, Invalid):
        return "; ".join(exc.lines())
    return exc.detail
