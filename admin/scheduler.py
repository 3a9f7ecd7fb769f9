"""Scheduler pages: check one planned infusion, or a schedule uploaded as CSV or XLSX.

Both pages call the eligibility services (``load_request`` + ``check_batch``, and the schedule
reader, checker and store); nothing here decides eligibility. An uploaded schedule is kept in
the database under a random id, never in the session cookie nor on a host's disk: the download
re-runs the check on it, and "keep as schedule" stores its rows as appointments.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

from flask import Response, abort, flash, redirect, url_for
from flask_admin import expose
from flask_security import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from sqlalchemy import select
from wtforms import DateField, DecimalField, HiddenField, SelectField, StringField
from wtforms.validators import DataRequired, InputRequired, Length

from admin.fields import Option, options
from admin.security import SecurePageView, may_edit
from policy_service.auth import Permission, has_permission
from policy_service.domain.fields import field_words
from policy_service.errors import Invalid
from policy_service.extensions import db
from policy_service.models import (
    DRUG_SUPPLIES,
    SITES_OF_CARE,
    Drug,
    Patient,
    Payer,
    Policy,
    PolicyVersion,
)
from policy_service.schemas.eligibility import EligibilityRequestSchema, load_request
from policy_service.services import policies
from policy_service.services.appointments import unit_balances_of
from policy_service.services.eligibility import check_batch
from policy_service.services.schedule import (
    CSV_COLUMNS,
    REQUIRED_COLUMNS,
    ScheduleRow,
    check_schedule,
    forget_upload,
    keep_upload,
    kept_upload,
    not_on_file_reason,
    patients_not_on_file,
    read_schedule_file,
    results_csv,
    store_schedule,
    template_csv,
    template_xlsx,
)
from rulesets.vocabulary import Decision, Severity

DECISION_LABELS = {
    Decision.ELIGIBLE: "Eligible",
    Decision.NEEDS_AUTHORIZATION: "Needs authorization",
    Decision.NEEDS_INFORMATION: "Needs information",
    Decision.NOT_ELIGIBLE: "Not eligible",
    "error": "Could not check",
}
# Bootstrap tone of each decision: green goes ahead, amber needs work, red stops.
DECISION_TONES = {
    Decision.ELIGIBLE: "success",
    Decision.NEEDS_AUTHORIZATION: "warning",
    Decision.NEEDS_INFORMATION: "warning",
    Decision.NOT_ELIGIBLE: "danger",
    "error": "secondary",
}
SEVERITY_TONES = {Severity.BLOCK: "danger", Severity.WARN: "warning", Severity.INFO: "info"}
PACKAGE_PATTERN = re.compile(r"^(?P<amount>\d+(?:\.\d+)?)(?:x(?P<count>\d+))?$")
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# Where an eligibility error's field lands on the form.
FIELD_OF_ERROR = {
    "patient": "patient", "payer": "payer", "hcpcs": "drug", "dose": "dose",
    "date_of_service": "date_of_service", "site_of_care": "site_of_care",
    "diagnosis_codes": "diagnoses", "authorization_number": "authorization_number",
    "packages": "packages", "drug_supply": "drug_supply", "rendering_npi": "rendering_npi",
    "ordering_npi": "ordering_npi",
}


def split_codes(text: str | None) -> list[str]:
    """Split diagnosis codes typed with commas, semicolons or spaces."""
    return [part.upper() for part in re.split(r"[\s,;]+", text or "") if part]


def parse_packages(text: str | None) -> list[dict[str, Any]]:
    """Read vial packages typed as ``100x4`` (amount x count), several separated by spaces;
    raise ValueError naming the part that is not in that form."""
    packages = []
    for part in re.split(r"[\s,;]+", (text or "").strip().lower()):
        if not part:
            continue
        match = PACKAGE_PATTERN.match(part)
        if match is None:
            raise ValueError(f"{part!r} is not amount x count (for example 100x4).")
        # The request schema takes integers strictly; the pattern allows digits only.
        packages.append({"amount": match["amount"], "count": int(match["count"] or 1)})
    return packages


LAST_PATH_PART = re.compile(r"(\.[^.\[]+|\[\d+\])$")


def mapped_field(path: str, mapping: dict[str, str]) -> str | None:
    """Return the form field of an error path: the most specific mapped prefix of it
    (``lines[1].modifiers[0]`` -> the field of ``lines[1].modifiers``)."""
    while path:
        if path in mapping:
            return mapping[path]
        shorter = LAST_PATH_PART.sub("", path)
        if shorter == path:
            return None
        path = shorter
    return None


def field_errors(error: Invalid, mapping: dict[str, str]) -> tuple[dict[str, list[str]],
                                                                    list[str]]:
    """Split a service's errors into messages per form field and messages for the whole form."""
    on_fields: dict[str, list[str]] = {}
    general: list[str] = []
    for item in error.errors:
        path = item["field"]
        target = mapped_field(path, mapping)
        if target is None:
            general.append(f"{path}: {item['message']}")
        else:
            on_fields.setdefault(target, []).append(item["message"])
    return on_fields, general


def attach_errors(form: FlaskForm, errors: dict[str, list[str]]) -> None:
    """Show service errors on the form's fields, next to the value that caused them."""
    for name, messages in errors.items():
        field: Any = form
        # Nested rows are named like WTForms names them: ``lines-0-units``.
        for part in name.split("-"):
            field = field[int(part)] if part.isdigit() else getattr(field, part)
        field.errors = [*list(field.errors), *messages]


def payer_options() -> list[Option]:
    """Every payer as a select option: code, then name."""
    return [Option(code, f"{code} - {name}") for code, name in
            db.session.execute(select(Payer.code, Payer.name).order_by(Payer.code))]


def drug_options(blank: bool = False) -> list[Option]:
    """Every drug as a select option: HCPCS code, then name."""
    found = [Option(code, f"{code} - {name}") for code, name in
             db.session.execute(select(Drug.hcpcs, Drug.name).order_by(Drug.hcpcs))]
    return [Option("", ""), *found] if blank else found


def patient_ids() -> list[str]:
    """Stored patient external ids, for the patient field's suggestion list."""
    return list(db.session.scalars(select(Patient.external_id).order_by(Patient.external_id)
                                   .limit(2000)))


def patient_on_file(external_id: str) -> bool:
    """Return whether a patient with this external id is stored."""
    return db.session.scalar(select(Patient.id).where(Patient.external_id == external_id)
                             ) is not None


class EligibilityForm(FlaskForm):
    """One planned infusion."""

    patient = StringField("Patient (external id)", validators=[DataRequired()])
    payer = SelectField("Payer", validators=[DataRequired()])
    drug = SelectField("Drug (HCPCS)", validators=[DataRequired()])
    # DataRequired refuses 0 and the schema refuses a negative dose, on this field.
    dose = DecimalField("Dose", validators=[DataRequired()])
    dose_unit = SelectField("Dose unit", choices=[Option("mg", "mg"),
                                                  Option("mg_per_kg", "mg/kg")])
    date_of_service = DateField("Date of service", validators=[InputRequired()])
    # Policies restrict the site of care: without one the check can only say "needs
    # information", so the form asks for it and starts at the usual one.
    site_of_care = SelectField("Site of care", choices=options(SITES_OF_CARE), default="office",
                               validators=[DataRequired()])
    diagnoses = StringField("Diagnoses (ICD-10-CM)",
                            description="Comma or space separated, e.g. M05.79, M06.9")
    authorization_number = StringField("Authorization number",
                                       description="Optional: without it the matching "
                                                   "authorization is found.")
    packages = StringField("Vial packages", description="Optional, amount x count, e.g. 100x4; "
                                                        "without it the least waste is chosen.")
    drug_supply = SelectField("Drug supply", choices=options(DRUG_SUPPLIES),
                              default="buy_and_bill",
                              description="Specialty pharmacy: the practice bills the "
                                          "administration only.")
    rendering_npi = StringField("Rendering provider NPI",
                                description="Optional: checked for enrollment with the payer.")
    ordering_npi = StringField("Prescriber NPI",
                               description="Optional, when not the rendering provider.")

    def request_item(self) -> dict[str, Any]:
        """The eligibility request body this form describes (the schema validates it)."""
        item: dict[str, Any] = {
            "patient": {"id": (self.patient.data or "").strip()},
            "payer": self.payer.data,
            "hcpcs": self.drug.data,
            "date_of_service": self.date_of_service.data.isoformat(),
            "diagnosis_codes": split_codes(self.diagnoses.data),
            "dose": {self.dose_unit.data: str(self.dose.data)},
        }
        if self.site_of_care.data:
            item["site_of_care"] = self.site_of_care.data
        if (self.authorization_number.data or "").strip():
            item["authorization_number"] = self.authorization_number.data.strip()
        packages = parse_packages(self.packages.data)
        if packages:
            item["packages"] = packages
        if self.drug_supply.data:
            item["drug_supply"] = self.drug_supply.data
        for name in ("rendering_npi", "ordering_npi"):
            npi = (getattr(self, name).data or "").strip()
            if npi:
                item[name] = npi
        return item


def missing_message(missing: list[dict[str, Any]]) -> str:
    """Say what a check is missing (``[{"field": "site_of_care", ...}]``) as a person would."""
    words = []
    for fact in missing:
        word = field_words(fact["field"])
        # "the patient's weight (the dose is in mg/kg)": word the field, keep the reason.
        words.append(f"{word} ({fact['reason']})" if fact.get("reason") else word)
    listed = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
    return f"Cannot decide yet: add {listed} and check again."


def with_friendly_messages(outcome: dict[str, Any]) -> dict[str, Any]:
    """The eligibility outcome with its findings' messages worded for the page."""
    findings = [{**f, "message": missing_message(f["missing"])} if f.get("missing") else f
                for f in outcome.get("findings") or []]
    return {**outcome, "findings": findings}


class ScheduleForm(FlaskForm):
    """A schedule as CSV or XLSX."""

    file = FileField("Schedule (CSV or XLSX)",
                     validators=[FileRequired("Choose a CSV or XLSX file.")])


def check_planned_infusion(form: EligibilityForm) -> dict[str, Any] | None:
    """Run the eligibility check the form describes; on bad input put messages on the form
    and return None."""
    try:
        item = form.request_item()
    except ValueError as exc:
        form.packages.errors = [*list(form.packages.errors), str(exc)]
        return None
    [outcome] = check_batch([load_request(item)])
    if isinstance(outcome, Invalid):
        on_fields, general = field_errors(outcome, FIELD_OF_ERROR)
        attach_errors(form, on_fields)
        form.form_errors = [*list(form.form_errors), *general]
        return None
    return with_friendly_messages(outcome)


class SaveCaseForm(FlaskForm):
    """"Save as test case": the request just checked, the version it cited, a name."""

    name = StringField("Case name", validators=[DataRequired(), Length(max=200)])
    request_json = HiddenField(validators=[DataRequired()])
    policy = HiddenField(validators=[DataRequired()])
    version = HiddenField(validators=[DataRequired()])


def save_case_form(item: dict[str, Any], result: dict[str, Any]) -> SaveCaseForm | None:
    """The "Save as test case" form for a result that cites a policy version, filled in."""
    policy = result.get("policy")
    if not policy:
        return None
    form = SaveCaseForm(formdata=None)
    form.name.data = (f"{item['patient']['id']} {item['hcpcs']} {item['date_of_service']}: "
                      f"{str(result['decision']).replace('_', ' ')}")[:200]
    form.request_json.data = json.dumps(item, sort_keys=True)
    form.policy.data = policy["id"]
    form.version.data = str(policy["version"])
    return form


def request_of_record(record: dict[str, Any]) -> dict[str, Any]:
    """The eligibility request a record in the API's shape (an appointment) stands for."""
    names = EligibilityRequestSchema().fields
    return {name: value for name, value in record.items()
            if name in names and value not in (None, [], "")}


def may_save_cases() -> bool:
    """Whether the signed-in user may add test cases to policies (coordinators, admins)."""
    return has_permission(current_user, Permission.EDIT_POLICY_DATA)


class EligibilityView(SecurePageView):
    """The scheduler's question: can this planned infusion go ahead on this date?"""

    permission = Permission.CHECK_ELIGIBILITY

    @expose("/", methods=("GET", "POST"))
    def index(self) -> str:
        """Show the form; on a valid submission, the decision and its reasons."""
        form = EligibilityForm()
        form.payer.choices = payer_options()
        form.drug.choices = drug_options()
        result = case_form = None
        unknown_patient = None
        if form.validate_on_submit():
            patient = (form.patient.data or "").strip()
            if patient_on_file(patient):
                result = check_planned_infusion(form)
                if result is not None and may_save_cases():
                    case_form = save_case_form(form.request_item(), result)
            else:
                # Every patient fact would be missing: say so once, not as a list of findings.
                unknown_patient = patient
        drawn_on = ((result or {}).get("authorization") or {}).get("number")
        return self.render("admin/eligibility.html", form=form, result=result,
                           balance=unit_balances_of([drawn_on] if drawn_on else []).get(
                               drawn_on or ""),
                           case_form=case_form, unknown_patient=unknown_patient,
                           may_add_patient=may_edit(),
                           patients=patient_ids(), labels=DECISION_LABELS,
                           tones=DECISION_TONES, severity_tones=SEVERITY_TONES)

    @expose("/save-case", methods=("POST",))
    def save_case(self) -> Response:
        """Store what was just checked as a test case of the policy version it cited."""
        if not may_save_cases():
            abort(403)
        form = SaveCaseForm()
        if not form.validate_on_submit() or not form.version.data.isdigit():
            flash("The test case was not saved: give it a name of at most 200 characters.",
                  "error")
            return redirect(url_for(".index"))
        version = db.session.scalar(
            select(PolicyVersion).join(Policy)
            .where(Policy.code == form.policy.data,
                   PolicyVersion.number == int(form.version.data)))
        if version is None:
            abort(404)
        try:
            request_item = json.loads(form.request_json.data)
            case = policies.add_case(version, form.name.data.strip(), request_item)
        except (ValueError, TypeError):
            flash("The test case was not saved: the checked request could not be read.",
                  "error")
            return redirect(url_for(".index"))
        except Invalid as exc:
            db.session.rollback()
            flash("The test case was not saved: " + "; ".join(
                f"{e['field']}: {e['message']}" for e in exc.errors), "error")
            return redirect(url_for(".index"))
        db.session.commit()
        codes = ", ".join(case.expect_codes) or "no findings"
        flash(f"Saved test case {case.name!r} on {version.policy.code} v{version.number}: "
              f"expects {case.expect_decision.replace('_', ' ')} ({codes}).", "success")
        return redirect(url_for("policyversion.lifecycle_view", id=version.id))


# --- schedule uploads: preview, download, keep as schedule ---------------------------------

def read_upload(form: ScheduleForm) -> list[ScheduleRow] | None:
    """Return the uploaded schedule's rows, or None with the reason on the file field."""
    data = form.file.data.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        form.file.errors = ["The file is larger than 5 MB; split the schedule."]
        return None
    try:
        return read_schedule_file(data, form.file.data.filename or "schedule.csv")
    except Invalid as exc:
        form.file.errors = exc.lines()
        return None


def may_keep() -> bool:
    """Return whether the signed-in user may keep a schedule as appointments."""
    return has_permission(current_user, Permission.WRITE_APPOINTMENTS)


class ScheduleView(SecurePageView):
    """A schedule upload: one row per appointment, coloured by decision; then, if wanted,
    kept as the stored schedule (all rows or none).

    The upload is kept in the database between the preview and the download or "keep", so any
    host behind the balancer can answer the next request.
    """

    permission = Permission.CHECK_ELIGIBILITY

    def _page(self, form: ScheduleForm, **context: Any) -> str:
        results = context.get("results")
        counts = Counter(r["decision"] for r in results or [])
        defaults = {"results": None, "upload_id": None, "keep_errors": None,
                    "missing_ids": 0, "not_on_file": patients_not_on_file(results or [])}
        return self.render("admin/schedule.html", form=form, counts=counts,
                           columns=CSV_COLUMNS, required=REQUIRED_COLUMNS,
                           labels=DECISION_LABELS, tones=DECISION_TONES,
                           may_keep=may_keep(), keep_form=FlaskForm(),
                           not_on_file_reason=not_on_file_reason, **{**defaults, **context})

    @expose("/", methods=("GET", "POST"))
    def index(self) -> str:
        """Show the upload form; after an upload, every appointment's decision."""
        form = ScheduleForm()
        if not form.validate_on_submit():
            return self._page(form)
        rows = read_upload(form)
        if rows is None:
            return self._page(form)
        results = check_schedule(rows)
        upload_id = keep_upload(rows, current_user.email, form.file.data.filename or "")
        db.session.commit()
        return self._page(form, results=results, upload_id=upload_id,
                          missing_ids=sum(1 for row in rows if not row.appointment_id))

    @expose("/keep/<upload_id>", methods=("POST",))
    def keep(self, upload_id: str) -> Response | str:
        """Keep every row of an upload as an appointment, or none of them."""
        if not may_keep():
            abort(403)
        if not FlaskForm().validate_on_submit():
            abort(400)
        rows = kept_upload(upload_id, current_user.email)
        if rows is None:
            abort(404)
        try:
            saved = store_schedule(rows, current_user.email)
        except Invalid as exc:
            db.session.rollback()
            return self._page(ScheduleForm(), keep_errors=exc.errors, upload_id=upload_id)
        forget_upload(upload_id, current_user.email)
        # Read before the commit, which expires every stored appointment.
        days = sorted(s.appointment.date_of_service for s in saved)
        created = sum(1 for s in saved if s.created)
        db.session.commit()
        flash(f"Kept {len(saved)} appointment(s) as the schedule: {created} new, "
              f"{len(saved) - created} replaced.", "success")
        return redirect(url_for("upcoming.index", range="dates", start=days[0].isoformat(),
                                end=days[-1].isoformat()))

    @expose("/download/<upload_id>.csv")
    def download(self, upload_id: str) -> Response:
        """The results of a kept upload as CSV (checked again now, so they are current)."""
        rows = kept_upload(upload_id, current_user.email)
        if rows is None:
            abort(404)
        results = check_schedule(rows)
        csv_text = results_csv(results, patients_not_on_file(results))
        return Response(csv_text, mimetype="text/csv", headers={
            "Content-Disposition": "attachment; filename=schedule-results.csv",
            "Cache-Control": "no-store"})

    @expose("/template.<kind>")
    def template(self, kind: str) -> Response:
        """The schedule template (header and one example row) as CSV or XLSX."""
        if kind == "csv":
            return Response(template_csv(), mimetype="text/csv", headers={
                "Content-Disposition": "attachment; filename=schedule-template.csv"})
        if kind == "xlsx":
            return Response(template_xlsx(), mimetype=XLSX_MIMETYPE, headers={
                "Content-Disposition": "attachment; filename=schedule-template.xlsx"})
        abort(404)
