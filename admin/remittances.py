"""Biller and manager pages: import an 835 (preview, then confirm all or nothing), read denials.

The preview runs the real import inside a SAVEPOINT and rolls it back, so it shows exactly what
confirming will do and writes nothing. The file travels to the confirm step signed with the
app's secret key, bound to the signed-in user and valid for an hour (no server-side state).
"""

from __future__ import annotations

from typing import Any

from flask import current_app, flash, redirect, request, url_for
from flask_admin import expose
from flask_security import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.datastructures import FileStorage
from wtforms import DateField, Form, HiddenField, SelectField, StringField
from wtforms.validators import DataRequired, Optional, Regexp

from admin.charts import Bar, column_trend, horizontal_bars, share_bar
from admin.fields import Option
from admin.scheduler import payer_options
from admin.security import SecurePageView
from policy_service.auth import Permission
from policy_service.database import run_serialized
from policy_service.errors import Invalid
from policy_service.extensions import db
from policy_service.models import ADJUSTMENT_GROUPS
from policy_service.services.denials import DenialFilters, denial_report, list_denials
from policy_service.services.remittance import import_remittance, outcome_counts

MAX_835_BYTES = 5 * 1024 * 1024
PAYLOAD_SALT = "admin-remittance"
PAYLOAD_MAX_AGE = 3600
EXPIRED_MESSAGE = "This preview has expired or was not made for you; upload the file again."
OUTCOME_TONES = {"paid": "success", "partially_paid": "warning", "denied": "danger",
                 "reversed": "secondary"}
PER_PAGE = 100


class RemittanceUploadForm(FlaskForm):
    """Step 1: the 835 file."""

    file = FileField("835 remittance file", validators=[FileRequired("Choose an 835 file.")])


class RemittanceConfirmForm(FlaskForm):
    """Step 2: the previewed file, signed, sent back to be imported."""

    payload = HiddenField(validators=[DataRequired()])


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key or "", salt=PAYLOAD_SALT)


def sign_file(name: str, text: str) -> str:
    """The file signed for the current user, to be posted back on confirm."""
    return str(_serializer().dumps({"user": current_user.fs_uniquifier, "name": name,
                                    "text": text}))


def unsign_file(payload: str) -> tuple[str, str]:
    """The file a confirm posted back; BadSignature if forged, stale or another user's."""
    data = _serializer().loads(payload, max_age=PAYLOAD_MAX_AGE)
    if not isinstance(data, dict) or data.get("user") != current_user.fs_uniquifier:
        raise BadSignature("The preview belongs to another user.")
    return str(data["name"]), str(data["text"])


def read_upload(file: FileStorage) -> str:
    """The uploaded file as X12 text; Invalid naming the file when it is not one."""
    data = file.read(MAX_835_BYTES + 1)
    if len(data) > MAX_835_BYTES:
        raise Invalid({"file": ["The file is larger than 5 MB."]})
    try:
        return data.decode("ascii")
    except UnicodeDecodeError as exc:
        raise Invalid({"file": [f"Not an X12 file: byte {exc.start} is not ASCII."]}) from None


def preview_remittance(text: str, actor: str) -> list[dict[str, Any]]:
    """What importing ``text`` would do, writing nothing (the SAVEPOINT is rolled back)."""
    savepoint = db.session.begin_nested()
    try:
        return import_remittance(text, actor)
    finally:
        savepoint.rollback()


class RemittanceView(SecurePageView):
    """The biller uploads a payer's 835, sees what it would do, and confirms it."""

    permission = Permission.IMPORT_REMITTANCES

    def _render(self, form: RemittanceUploadForm, **kwargs: Any) -> str:
        return self.render("admin/remittances.html", form=form, tones=OUTCOME_TONES, **kwargs)

    @expose("/", methods=("GET", "POST"))
    def index(self) -> str:
        """Show the upload form; on upload, preview every claim payment of the file."""
        form = RemittanceUploadForm()
        if not form.validate_on_submit():
            return self._render(form)
        file: FileStorage = form.file.data
        name = (file.filename or "upload.835").rsplit("/", 1)[-1]
        try:
            text = read_upload(file)
            results = preview_remittance(text, current_user.email)
        except Invalid as exc:
            db.session.rollback()
            return self._render(form, errors=exc.lines(), filename=name)
        confirm = RemittanceConfirmForm(payload=sign_file(name, text))
        return self._render(form, preview=results, filename=name, confirm=confirm,
                            counts=outcome_counts(results),
                            has_new=any(not r["already_imported"] for r in results))

    @expose("/confirm/", methods=("POST",))
    def confirm(self) -> Any:
        """Import the previewed file, all of it or nothing, as the signed-in user."""
        form = RemittanceConfirmForm()
        try:
            name, text = unsign_file(form.payload.data) if form.validate_on_submit() else ("", "")
        except BadSignature:
            name = text = ""
        if not text:
            flash(EXPIRED_MESSAGE, "error")
            return redirect(url_for(".index"))
        actor = current_user.email
        try:
            results = run_serialized(lambda: import_remittance(text, actor))
        except Invalid as exc:
            db.session.rollback()
            return self._render(RemittanceUploadForm(formdata=None), errors=exc.lines(),
                                filename=name)
        return self._render(RemittanceUploadForm(formdata=None), imported=results,
                            filename=name, counts=outcome_counts(results))


class DenialFilterForm(Form):
    """The report's filters, read from the query string (a GET form: nothing changes)."""

    payer = SelectField("Payer", validators=[Optional()])
    start = DateField("From", validators=[Optional()])
    end = DateField("To", validators=[Optional()])
    group = SelectField("Group", validators=[Optional()],
                        choices=[Option("", "any"), *(Option(g, g) for g in ADJUSTMENT_GROUPS)])
    carc = StringField("CARC", validators=[Optional(), Regexp(
        r"^[A-Za-z0-9]{1,10}$", message="A reason code is letters and digits.")])


def _percent(value: float) -> str:
    return f"{value:.0%}"


def report_charts(report: dict[str, Any]) -> dict[str, Any]:
    """The four charts of the denials report as inline SVG."""
    rates = [Bar(r["payer"], r["rate"], f"{r['rate']:.0%} of {r['claims']}",
                 f"{r['name']}: {r['denied_claims']} of {r['claims']} claims denied")
             for r in report["rate_by_payer"]]
    reasons = [Bar(f"{r['carc']} {r['description']}", r["count"],
                   f"{r['count']} (${r['amount']:,.0f})",
                   f"CARC {r['carc']}: {r['description']}") for r in report["top_reasons"]]
    share = report["preventable"]
    trend = [Bar(t["month"], t["denials"], str(t["denials"]),
                 f"{t['month']}: {t['denials']} denials, {t['denied_claims']} of "
                 f"{t['claims']} claims ({t['rate']:.0%})") for t in report["trend"]]
    return {
        "rate": horizontal_bars(rates, "Denial rate per payer", "chart-rate", maximum=1.0,
                                label_width=110),
        "reasons": horizontal_bars(reasons, "Top denial reasons", "chart-reasons",
                                   label_width=230),
        "preventable": share_bar(share["preventable"], share["denials"],
                                 "Our rules would have caught it", "Not caught by our rules",
                                 "Share of denials our rules would have prevented",
                                 "chart-preventable"),
        "trend": column_trend(trend, "Denials by month", "chart-trend"),
    }


class DenialsView(SecurePageView):
    """Denials with their causes, and the charts a billing manager reads first."""

    permission = Permission.READ_DENIALS

    @expose("/")
    def index(self) -> str:
        """The filtered report and denial list."""
        form = DenialFilterForm(request.args)
        form.payer.choices = [Option("", "any"), *payer_options()]
        page = max(request.args.get("page", 1, type=int) or 1, 1)
        report = denials = None
        error_lines: list[str] = []
        if form.validate():
            filters = DenialFilters(payer=form.payer.data or None, start=form.start.data,
                                    end=form.end.data, group=form.group.data or None,
                                    carc=(form.carc.data or "").upper() or None)
            try:
                report = denial_report(filters)
                denials = list_denials(filters, page, PER_PAGE)
            except Invalid as exc:
                error_lines = exc.lines()
        args = {k: v for k, v in request.args.items() if k != "page" and v}
        return self.render("admin/denials.html", form=form, report=report, denials=denials,
                           charts=report_charts(report) if report else None,
                           errors=error_lines, page=page, per_page=PER_PAGE, args=args,
                           percent=_percent)
