"""The admin UI: Flask-Admin views behind Flask-Security login and permission checks."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Flask, redirect, url_for
from flask_admin import Admin
from flask_admin.theme import Bootstrap4Theme
from jinja2 import BaseLoader, ChoiceLoader, FileSystemLoader
from werkzeug.wrappers import Response

from admin.biller import AuthorizationUsageView, ClaimCheckView
from admin.dashboard import DashboardView
from admin.display import local_minute, plain_number, units_text, word, yes_no
from admin.error_pages import init_error_pages
from admin.import_view import ImportView
from admin.login_guard import init_login_guard
from admin.remittances import DenialsView, RemittanceView
from admin.rules import RulesView
from admin.scheduler import EligibilityView, ScheduleView
from admin.upcoming import UpcomingView
from admin.users import UserAdminView
from admin.views.authorizations import AuthorizationView
from admin.views.history import ChangeRecordView
from admin.views.patients import PatientView
from admin.views.policies import PolicyVersionView, PolicyView
from admin.views.providers import ProviderView
from admin.views.reference import DrugView, PayerView
from admin.worklist import WorkView
from policy_service.extensions import db
from policy_service.models import (
    Authorization,
    ChangeRecord,
    Drug,
    Patient,
    Payer,
    Policy,
    PolicyVersion,
    Provider,
)
from policy_service.security_headers import csp_nonce

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


def _install_templates(app: Flask) -> None:
    # Ours come first so they override Flask-Admin's and Flask-Security's pages of the same name.
    loaders: list[BaseLoader] = [FileSystemLoader(str(TEMPLATES))]
    if app.jinja_loader is not None:
        loaders.append(app.jinja_loader)
    app.jinja_loader = ChoiceLoader(loaders)  # type: ignore[assignment]


def init_admin(app: Flask) -> Admin:
    """Build a new Admin for ``app`` (a module-level one breaks a second ``create_app``)."""
    _install_templates(app)
    # The admin's own stylesheet, script and favicon (files, so the CSP needs nothing inline).
    app.register_blueprint(Blueprint("ui", __name__, static_folder=str(STATIC),
                                     static_url_path="/ui/static"))
    init_login_guard(app)
    admin = Admin(
        app,
        name="Policy service",
        index_view=DashboardView(name="Dashboard", url="/admin"),
        theme=Bootstrap4Theme(base_template="admin/app_base.html", fluid=True),
        # Flask-Admin's own inline scripts (modal forms) carry this request's CSP nonce.
        csp_nonce_generator=csp_nonce,
    )
    # Later pages (eligibility check, schedule upload, claim check, import) are added to this
    # Admin with ``app.extensions["policy_admin"].add_view(...)`` and subclass the same
    # secure base views (admin.security).
    app.extensions["policy_admin"] = admin
    admin.add_view(AuthorizationView(Authorization, db, name="Authorizations",
                                     endpoint="authorization"))
    # In the "Checks" dropdown: the top menu must stay on one line at 1366 px.
    admin.add_view(WorkView(name="Work queue", endpoint="work", url="/admin/work",
                            category="Checks"))
    admin.add_view(PatientView(Patient, db, name="Patients", endpoint="patient"))
    admin.add_view(PolicyView(Policy, db, name="Policies", endpoint="policy",
                              category="Policies"))
    admin.add_view(PolicyVersionView(PolicyVersion, db, name="Policy versions",
                                     endpoint="policyversion", category="Policies"))
    # Short labels keep the top menu on one line at 1366 px.
    admin.add_view(PayerView(Payer, db, name="Payers", endpoint="payer",
                             category="Reference"))
    admin.add_view(DrugView(Drug, db, name="Drugs", endpoint="drug",
                            category="Reference"))
    admin.add_view(ProviderView(Provider, db, name="Providers", endpoint="provider",
                                category="Reference"))
    admin.add_view(ChangeRecordView(ChangeRecord, db, name="History",
                                    endpoint="changerecord"))
    admin.add_view(ImportView(name="Import", endpoint="import", url="/admin/import"))
    # One "Checks" dropdown for the scheduler and biller pages, for the same reason.
    admin.add_view(EligibilityView(name="Eligibility check", endpoint="eligibility_check",
                                   url="/admin/eligibility", category="Checks"))
    admin.add_view(ScheduleView(name="Schedule", endpoint="schedule", url="/admin/schedule",
                                category="Checks"))
    admin.add_view(UpcomingView(name="Upcoming", endpoint="upcoming", url="/admin/upcoming",
                                category="Checks"))
    admin.add_view(ClaimCheckView(name="Claim check", endpoint="claim_check", url="/admin/claims",
                                  category="Checks"))
    admin.add_view(RemittanceView(name="Remittance import", endpoint="remittance_import",
                                  url="/admin/remittances", category="Checks"))
    admin.add_view(DenialsView(name="Denials", endpoint="denials", url="/admin/denials",
                               category="Checks"))
    admin.add_view(AuthorizationUsageView(name="Authorization usage",
                                          endpoint="authorization_usage",
                                          url="/admin/authorization-usage"))
    admin.add_view(UserAdminView(name="Users", endpoint="users", url="/admin/users"))
    # Under "Reference" (every role reads it) so the top menu stays on one line.
    admin.add_view(RulesView(name="Rules", endpoint="rules", url="/admin/rules",
                             category="Reference"))

    init_error_pages(app, admin)
    # Templates show stored values as people read them (admin.display).
    app.jinja_env.filters.update(words=word, number=plain_number, local_minute=local_minute,
                                 units=units_text, yes_no=yes_no)

    @app.route("/")
    def root() -> Response:
        return redirect("/admin/")

    @app.route("/favicon.ico")
    def favicon() -> Response:
        # Browsers ask for it before reading the page's <link rel="icon">.
        return redirect(url_for("ui.static", filename="favicon.svg"), code=301)

    return admin
