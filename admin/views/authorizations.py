"""Prior authorizations: status, window, units and visits used, with the filters people need."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import current_app, url_for
from flask_admin.contrib.sqla.filters import BaseSQLAFilter
from markupsafe import Markup
from sqlalchemy import String, and_, cast, or_
from sqlalchemy.orm import Query
from wtforms import Form

from admin.checks import authorization_errors
from admin.fields import CommaListField, options
from admin.security import SecureModelView, history_link, join_list
from admin.upcoming import forecast_timeline
from policy_service.domain.icd10 import normalise_code
from policy_service.models import AUTHORIZATION_STATUSES, SITES_OF_CARE, Authorization
from policy_service.models.authorization import USABLE_STATUSES


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


def _bar(used: int | None, approved: int | None) -> Markup:
    if not approved:
        return Markup('<span class="text-muted">no limit</span>')
    used = used or 0
    left = max(approved - used, 0)
    percent = min(round(100 * used / approved), 100)
    tone = "bg-danger" if left < approved * low_fraction() else "bg-success"
    return Markup(
        '<div class="usage" title="{used} of {approved} used">'
        '<div class="progress"><div class="progress-bar {tone}" role="progressbar" '
        'style="width: {percent}%" aria-valuenow="{percent}" aria-valuemin="0" '
        'aria-valuemax="100"></div></div><small>{left} of {approved} left</small></div>'
    ).format(used=used, approved=approved, tone=tone, percent=percent, left=left)


def units_bar(_view: Any, _context: Any, model: Authorization, _name: str) -> Markup:
    """Column formatter: units used against approved, as a progress bar."""
    return _bar(model.used_units, model.approved_units)


def visits_bar(_view: Any, _context: Any, model: Authorization, _name: str) -> Markup:
    """Column formatter: visits used against approved, as a progress bar."""
    return _bar(model.used_visits, model.approved_visits)


def usage_link(_view: Any, _context: Any, model: Authorization, _name: str) -> Markup:
    """Column formatter: a link to the claims recorded against this authorization."""
    url = url_for("authorization_usage.index", number=model.number)
    return Markup('<a href="{}">Usage</a>').format(url)


class AuthorizationView(SecureModelView):
    """Prior authorizations with their window and what is left of them."""

    # What fits at 1366 px; the window start, the raw counts and the site are in details/export.
    column_list = ["number", "patient", "payer", "hcpcs", "status", "valid_to", "units_left",
                   "visits_left", "usage", "history"]
    column_details_list = ["number", "patient", "payer", "hcpcs", "diagnoses", "status",
                           "valid_from", "valid_to", "approved_units", "used_units",
                           "units_left", "approved_visits", "used_visits", "visits_left",
                           "site_of_care", "notes", "usage", "forecast", "history"]
    column_export_list = ["number", "patient", "payer", "hcpcs", "diagnoses", "status",
                          "valid_from", "valid_to", "approved_units", "used_units", "units_left",
                          "approved_visits", "used_visits", "visits_left", "site_of_care",
                          "notes"]
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
                     "hcpcs": "HCPCS", "units_left": "Units", "visits_left": "Visits",
                     "history": "History", "usage": "Usage",
                     "forecast": "Scheduled (forecast)"}
    column_formatters = {"units_left": units_bar, "visits_left": visits_bar,
                         "hcpcs": join_list, "diagnoses": join_list, "history": history_link,
                         "usage": usage_link, "forecast": forecast_timeline}
    column_export_exclude_list = ["history", "usage"]
    column_formatters_export = {
        "hcpcs": join_list, "diagnoses": join_list,
        "units_left": lambda _v, _c, m, _n: m.remaining_units,
        "visits_left": lambda _v, _c, m, _n: m.remaining_visits,
    }
    column_sortable_list = ["number", "status", "valid_from", "valid_to", "approved_units",
                            "used_units", ("payer", "payer.code"),
                            ("patient", "patient.external_id")]
    column_default_sort = ("valid_to", False)
    column_editable_list = ["status"]
    form_choices = {"status": options(AUTHORIZATION_STATUSES),
                    "site_of_care": options(SITES_OF_CARE, blank=True)}
    form_excluded_columns = ["version", "usages"]
    form_overrides = {"hcpcs": CommaListField, "diagnoses": CommaListField}
    form_args = {"hcpcs": {"label": "HCPCS codes", "upper": True},
                 "diagnoses": {"label": "Diagnoses (ICD-10-CM)", "upper": True}}

    def check_form(self, form: Form) -> dict[str, str]:
        """The import's rules: codes, window order, units and visits within what was approved."""
        return authorization_errors(form)

    def on_model_change(self, form: Form, model: Any, is_created: bool) -> None:
        """Store diagnoses normalised and a blank site as none."""
        model.diagnoses = [normalise_code(c) for c in model.diagnoses or []]
        model.site_of_care = model.site_of_care or None
        model.used_units = model.used_units or 0
        model.used_visits = model.used_visits or 0
