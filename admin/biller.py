"""Biller pages: check a claim typed in or uploaded as X12 837P, and see an authorization's use.

The claim check is the claims service's (``ClaimRequestSchema`` loads the claim, ``check_claim``
checks it; ``check_837`` reads and checks an 837P file): these pages only collect input and lay
the result out, the submitted lines beside the lines the administration facts support.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from flask import abort, flash, redirect, request, url_for
from flask_admin import expose
from flask_security import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from marshmallow import ValidationError
from sqlalchemy import select
from wtforms import (
    DateField,
    DecimalField,
    FieldList,
    Form,
    FormField,
    HiddenField,
    IntegerField,
    SelectField,
    StringField,
)
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    Regexp,
)

from admin.fields import Option
from admin.scheduler import (
    DECISION_TONES,
    SEVERITY_TONES,
    attach_errors,
    drug_options,
    field_errors,
    parse_packages,
    patient_ids,
    payer_options,
    split_codes,
)
from admin.security import SecurePageView, neutralise_cell
from policy_service.audit import current_actor
from policy_service.auth import Permission, has_permission
from policy_service.billing.administration import KINDS
from policy_service.database import run_serialized
from policy_service.domain.requests import Claim
from policy_service.errors import Conflict, Invalid, NotFound
from policy_service.extensions import db
from policy_service.models import Authorization, AuthorizationUsage
from policy_service.schemas.claims import ClaimRequestSchema
from policy_service.services.appointments import unit_balances, unit_balances_of
from policy_service.services.claims import check_claim
from policy_service.services.usage import record_usage, void_usage
from policy_service.services.x12 import check_837
from rulesets.vocabulary import ClaimStatus

LINE_ROWS = 6
INFUSION_ROWS = 3
MAX_837_BYTES = 5 * 1024 * 1024
_AUTO = object()
PLACES_OF_SERVICE = [
    Option("", ""), Option("11", "11 office"), Option("12", "12 home"),
    Option("19", "19 off-campus outpatient hospital"),
    Option("22", "22 on-campus outpatient hospital"),
    Option("49", "49 independent clinic (infusion center)"),
]
STATUS_LABELS = {ClaimStatus.CLEAN: "Clean: ready to submit",
                 ClaimStatus.NEEDS_CORRECTION: "Needs correction"}
STATUS_TONES = {ClaimStatus.CLEAN: "success", ClaimStatus.NEEDS_CORRECTION: "warning"}
# Where a claim error's field lands on the form (nested rows keep their index).
CLAIM_FIELD_OF_ERROR = {
    "payer": "payer", "patient": "patient", "date_of_service": "date_of_service",
    "submitted_on": "submitted_on", "diagnosis_codes": "diagnoses",
    "authorization_number": "authorization_number", "place_of_service": "place_of_service",
    "administration.hcpcs": "drug", "administration.administered_mg": "administered_mg",
    "administration.packages": "packages", "hcpcs": "drug", "packages": "packages",
    "administered_mg": "administered_mg", "drug_supply": "drug_supply",
    "rendering_npi": "rendering_npi", "ordering_npi": "ordering_npi",
}


class LineForm(Form):
    """One submitted claim line (a plain Form: the claim form carries the CSRF token)."""

    code = StringField("Code")
    units = IntegerField("Units", validators=[Optional(), NumberRange(min=1)])
    modifiers = StringField("Modifiers")
    ndc = StringField("NDC")


class InfusionForm(Form):
    """One infusion, push or injection with its clock times."""

    kind = SelectField("Kind", choices=[Option("", ""), *(Option(k, k) for k in KINDS)],
                       validators=[Optional()])
    start = StringField("Start")
    stop = StringField("Stop")


class ClaimForm(FlaskForm):
    """A claim before it leaves the practice, with the administration facts behind it."""

    payer = SelectField("Payer", validators=[DataRequired()])
    patient = StringField("Patient (external id)", validators=[DataRequired()])
    claim_reference = StringField("Claim reference", validators=[Optional(), Length(max=64)],
                                  description="Carried to 'record this claim's use'.")
    date_of_service = DateField("Date of service", validators=[InputRequired()])
    submitted_on = DateField("Submitted on", validators=[Optional()],
                             description="Day the payer receives it (default: today).")
    diagnoses = StringField("Diagnoses (ICD-10-CM)", description="Comma or space separated.")
    authorization_number = StringField("Authorization number")
    place_of_service = SelectField("Place of service", choices=PLACES_OF_SERVICE,
                                   validators=[Optional()])
    rendering_npi = StringField("Rendering provider NPI", description="Checked for enrollment.")
    ordering_npi = StringField("Ordering provider NPI",
                               description="The prescriber, when a policy names a specialty.")
    drug_supply = SelectField("Drug supply", choices=[
        Option("", "as the lines say"), Option("buy_and_bill", "buy and bill"),
        Option("specialty_pharmacy", "specialty pharmacy (no drug line)")],
        validators=[Optional()])
    drug = SelectField("Drug administered (HCPCS)", validators=[Optional()])
    administered_mg = DecimalField("Administered mg", validators=[Optional()])
    packages = StringField("Vial packages opened", description="amount x count, e.g. 100x4")
    infusions = FieldList(FormField(InfusionForm), min_entries=INFUSION_ROWS,
                          max_entries=INFUSION_ROWS)
    lines = FieldList(FormField(LineForm), min_entries=LINE_ROWS, max_entries=LINE_ROWS)

    def claim_body(self) -> tuple[dict[str, Any], list[int]]:
        """The claim request body this form describes, and the form row of each claim line."""
        body: dict[str, Any] = {
            "payer": self.payer.data,
            "patient": {"id": (self.patient.data or "").strip()},
            "date_of_service": self.date_of_service.data.isoformat(),
            "diagnosis_codes": split_codes(self.diagnoses.data),
        }
        if self.submitted_on.data:
            body["submitted_on"] = self.submitted_on.data.isoformat()
        if (self.authorization_number.data or "").strip():
            body["authorization_number"] = self.authorization_number.data.strip()
        if self.place_of_service.data:
            body["place_of_service"] = self.place_of_service.data
        for name in ("rendering_npi", "ordering_npi"):
            npi = (getattr(self, name).data or "").strip()
            if npi:
                body[name] = npi
        if self.drug_supply.data:
            body["drug_supply"] = self.drug_supply.data
        administration = self._administration()
        if administration:
            body["administration"] = administration
        rows: list[int] = []
        lines: list[dict[str, Any]] = []
        for position, entry in enumerate(self.lines.entries):
            line = entry.form
            code = (line.code.data or "").strip().upper()
            if not code and line.units.data is None and not (line.modifiers.data or "").strip() \
                    and not (line.ndc.data or "").strip():
                continue
            item: dict[str, Any] = {"code": code, "units": line.units.data,
                                    "modifiers": split_codes(line.modifiers.data)}
            if (line.ndc.data or "").strip():
                item["ndc"] = line.ndc.data.strip()
            lines.append(item)
            rows.append(position)
        body["lines"] = lines
        return body, rows

    def _administration(self) -> dict[str, Any]:
        """What was given: the drug (none for hydration or a patient-supplied drug), the dose,
        the packages and the infusion times; empty when the form names none of them."""
        admin: dict[str, Any] = {"hcpcs": self.drug.data} if self.drug.data else {}
        if self.administered_mg.data is not None:
            admin["administered_mg"] = str(self.administered_mg.data)
        packages = parse_packages(self.packages.data)
        if packages:
            admin["packages"] = packages
        infusions = []
        for entry in self.infusions.entries:
            row = entry.form
            if not row.kind.data:
                continue
            infusion: dict[str, Any] = {"kind": row.kind.data}
            for name in ("start", "stop"):
                value = (getattr(row, name).data or "").strip()
                infusion[name] = value or None
            infusions.append(infusion)
        if infusions:
            admin["infusions"] = infusions
        return admin


class X12Form(FlaskForm):
    """An 837P file of claims."""

    file = FileField("837P file", validators=[FileRequired("Choose an 837P file.")])


@dataclass
class LineRow:
    """One row of the side-by-side table: a submitted line, the expected one, their findings."""

    submitted: dict[str, Any] | None
    expected: dict[str, Any] | None
    findings: list[dict[str, Any]] = field(default_factory=list)

    @property
    def matches(self) -> bool:
        """Whether the submitted line is exactly a line the facts support."""
        return (self.submitted is not None and self.expected is not None
                and line_key(self.submitted) == line_key(self.expected))

    def differs(self, part: str) -> bool:
        """Whether ``part`` (code, modifiers, units) differs between the two sides."""
        if self.submitted is None or self.expected is None:
            return True
        if part == "modifiers":
            return sorted(self.submitted["modifiers"]) != sorted(self.expected["modifiers"])
        return bool(self.submitted[part] != self.expected[part])


def line_key(line: dict[str, Any]) -> tuple[str, int, tuple[str, ...]]:
    """What makes two lines the same line: code, units and modifiers in any order."""
    return line["code"], int(line["units"]), tuple(sorted(line.get("modifiers") or ()))


def pair_lines(submitted: list[dict[str, Any]], expected: list[dict[str, Any]],
               findings: list[dict[str, Any]]) -> list[LineRow]:
    """Lay submitted lines beside the expected ones: exact matches first, then lines of the
    same code (and modifiers where possible); expected lines nobody billed come last."""
    rows = [LineRow(line, None, [f for f in findings if f["line"] == i])
            for i, line in enumerate(submitted)]
    left = list(range(len(expected)))

    def take(test: Any) -> None:
        for row in rows:
            if row.expected is not None:
                continue
            for j in left:
                if test(row.submitted, expected[j]):
                    row.expected = expected[j]
                    left.remove(j)
                    break

    take(lambda s, e: line_key(s) == line_key(e))
    take(lambda s, e: s["code"] == e["code"]
         and sorted(s.get("modifiers") or ()) == sorted(e.get("modifiers") or ()))
    take(lambda s, e: s["code"] == e["code"])
    rows.extend(LineRow(None, expected[j]) for j in left)
    return rows


def claim_result(claim: Claim, submitted: list[dict[str, Any]]) -> dict[str, Any]:
    """Check one claim and lay its lines out for the page."""
    result = check_claim(claim)
    return {
        **result,
        "claim_findings": [f for f in result["findings"] if f["line"] is None],
        "rows": pair_lines(submitted, result["expected_lines"], result["findings"]),
    }


def check_form_claim(form: ClaimForm) -> dict[str, Any] | None:
    """Run the claim check the form describes; on bad input put messages on the form and
    return None."""
    try:
        body, rows = form.claim_body()
    except ValueError as exc:
        form.packages.errors = [*list(form.packages.errors), str(exc)]
        return None
    mapping = dict(CLAIM_FIELD_OF_ERROR)
    for index, row in enumerate(rows):
        for part in ("code", "units", "modifiers", "ndc"):
            mapping[f"lines[{index}].{part}"] = f"lines-{row}-{part}"
    for index in range(INFUSION_ROWS):
        for part in ("kind", "start", "stop"):
            mapping[f"administration.infusions[{index}].{part}"] = f"infusions-{index}-{part}"
    try:
        claim = ClaimRequestSchema().load(body)
        return claim_result(claim, body["lines"])
    except ValidationError as exc:
        error = Invalid(exc.messages)  # type: ignore[arg-type]
    except Invalid as exc:
        error = exc
    on_fields, general = field_errors(error, mapping)
    attach_errors(form, on_fields)
    form.form_errors = [*list(form.form_errors), *general]
    return None


def check_x12(form: X12Form) -> list[dict[str, Any]] | None:
    """Check every claim of the uploaded 837P; on a bad file put the reasons on the field."""
    data = form.file.data.read(MAX_837_BYTES + 1)
    if len(data) > MAX_837_BYTES:
        form.file.errors = ["The file is larger than 5 MB."]
        return None
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as exc:
        form.file.errors = [f"Not an X12 file: byte {exc.start} is not ASCII."]
        return None
    try:
        outcomes = check_837(text)
    except Invalid as exc:
        form.file.errors = exc.lines()
        return None
    results = []
    for outcome in outcomes:
        if outcome.result is None:
            results.append({"reference": outcome.read.reference, "status": "not_checked",
                            "error": outcome.reasons})
            continue
        submitted = [line.as_dict() for line in outcome.lines]
        result = outcome.result
        matched = result.get("authorization")
        record_url = usage_url(matched["number"], outcome.read.reference,
                               outcome.read.date_of_service, submitted) if matched else None
        results.append({"reference": outcome.read.reference, "error": None, **result,
                        "record_url": record_url,
                        "claim_findings": [f for f in result["findings"] if f["line"] is None],
                        "rows": pair_lines(submitted, result["expected_lines"],
                                           result["findings"])})
    return results


def usage_url(number: str, reference: str | None, day: dt.date | None,
              lines: list[dict[str, Any]]) -> str:
    """The authorization usage page, its form prefilled with this claim's reference, date of
    service and the units its lines bill for the authorization's drugs."""
    codes = set(db.session.scalar(select(Authorization.hcpcs)
                                  .where(Authorization.number == number)) or [])
    units = sum(int(line.get("units") or 0) for line in lines if line.get("code") in codes)
    args: dict[str, Any] = {"number": number, "units": units}
    if reference:
        args["claim"] = reference
    if day is not None:
        args["date"] = day.isoformat()
    return url_for("authorization_usage.index", **args)


X12_CSV_COLUMNS = ["claim", "status", "line", "submitted", "expected", "severity", "code",
                   "message"]


def _line_words(line: dict[str, Any] | None) -> str:
    if line is None:
        return ""
    modifiers = "".join(f"-{m}" for m in line.get("modifiers") or ())
    return f"{line['code']}{modifiers} x {line.get('units')}"


def x12_results_csv(results: list[dict[str, Any]]) -> str:
    """The 837P results as CSV: one row per finding (or one per claim without any), each cell
    safe to open in a spreadsheet."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=X12_CSV_COLUMNS)
    writer.writeheader()
    for item in results:
        base = {"claim": item["reference"], "status": str(item.get("status", "")),
                "line": "", "submitted": "", "expected": "", "severity": "", "code": "",
                "message": ""}
        rows = []
        if item.get("error"):
            rows.append({**base, "message": "; ".join(item["error"])})
        for finding in item.get("claim_findings") or []:
            rows.append({**base, "severity": str(finding["severity"]),
                         "code": finding["code"], "message": finding["message"]})
        for number, row in enumerate(item.get("rows") or [], start=1):
            for finding in row.findings:
                rows.append({**base, "line": number, "submitted": _line_words(row.submitted),
                             "expected": _line_words(row.expected),
                             "severity": str(finding["severity"]), "code": finding["code"],
                             "message": finding["message"]})
        for entry in rows or [base]:
            writer.writerow({key: neutralise_cell(value) for key, value in entry.items()})
    return out.getvalue()


class ClaimCheckView(SecurePageView):
    """The biller's question: does this claim match its authorization and the coding rules?"""

    permission = Permission.CHECK_CLAIMS

    def _render(self, form: ClaimForm, x12_form: X12Form, **kwargs: Any) -> str:
        # The authorizations the checks drew on, with their units, in one pass.
        matched = [kwargs.get("matched"), *(r.get("authorization") for r in
                                            kwargs.get("x12_results") or [])]
        balances = unit_balances_of(m["number"] for m in matched if m)
        return self.render("admin/claims.html", form=form, x12_form=x12_form,
                           balances=balances,
                           patients=patient_ids(), status_labels=STATUS_LABELS,
                           status_tones=STATUS_TONES, severity_tones=SEVERITY_TONES,
                           **kwargs)

    def _claim_form(self, formdata: Any = _AUTO) -> ClaimForm:
        form = ClaimForm() if formdata is _AUTO else ClaimForm(formdata=formdata)
        form.payer.choices = payer_options()
        form.drug.choices = drug_options(blank=True)
        if request.method == "GET":
            form.date_of_service.data = dt.date.today()
        return form

    @expose("/", methods=("GET", "POST"))
    def index(self) -> str:
        """Show the claim form; on a valid submission, the findings and the lines side by side."""
        form = self._claim_form()
        result = check_form_claim(form) if form.validate_on_submit() else None
        # The authorization the claim check chose, so the page and the check never disagree.
        matched = result.get("authorization") if result else None
        record_url = None
        if matched:
            body, _rows = form.claim_body()
            record_url = usage_url(matched["number"], (form.claim_reference.data or "").strip(),
                                   form.date_of_service.data, body["lines"])
        return self._render(form, X12Form(formdata=None), result=result, matched=matched,
                            record_url=record_url, may_record=may_record_usage())

    @expose("/837/", methods=("POST",))
    def upload_837(self) -> str:
        """Check every claim of an uploaded 837P file."""
        # The claim form stays empty: this submission is the file's.
        form = self._claim_form(formdata=None)
        x12_form = X12Form()
        results = check_x12(x12_form) if x12_form.validate_on_submit() else None
        # The CSV travels in the page (a data: link): nothing is kept on this host.
        csv_text = x12_results_csv(results) if results else None
        return self._render(form, x12_form, x12_results=results, x12_csv=csv_text,
                            may_record=may_record_usage(),
                            x12_counts=Counter(r.get("status", "error") for r in results or []))


class UsageForm(FlaskForm):
    """One claim's use of an authorization, as the API's POST .../usage takes it."""

    # The API's rule: the reference is also the path segment that voids it.
    claim_reference = StringField("Claim reference", validators=[
        DataRequired(), Length(max=64),
        Regexp(r"^[A-Za-z0-9._-]+$", message="Use letters, digits, '.', '_' and '-' only.")])
    date_of_service = DateField("Date of service", validators=[InputRequired()])
    units = IntegerField("Units", validators=[InputRequired(), NumberRange(min=0)])
    visits = IntegerField("Visits", default=1,
                          validators=[InputRequired(), NumberRange(min=0, max=1000)])


class VoidForm(FlaskForm):
    """Void one recorded use (the button of its row)."""

    claim_reference = HiddenField(validators=[DataRequired()])


def may_record_usage() -> bool:
    """Return whether the signed-in user may record and void authorization use."""
    return bool(current_user.is_authenticated) and has_permission(current_user,
                                                                  Permission.RECORD_USAGE)


def record_from_form(number: str, form: UsageForm) -> str | None:
    """Record the use the form describes; return a success message, or None after putting
    the reason it was refused on the form."""
    actor = current_actor()
    try:
        result = run_serialized(lambda: record_usage(
            number, form.claim_reference.data.strip(), form.date_of_service.data,
            form.units.data, form.visits.data, actor))
    except Invalid as exc:
        db.session.rollback()
        on_fields, general = field_errors(exc, {"date_of_service": "date_of_service"})
        attach_errors(form, on_fields)
        form.form_errors = [*list(form.form_errors), *general]
        return None
    except (Conflict, NotFound) as exc:
        db.session.rollback()
        form.form_errors = [*list(form.form_errors), exc.detail]
        return None
    reference = form.claim_reference.data.strip()
    if not result.created:
        return f"{reference} was already recorded on {number}; nothing changed."
    units, visits = form.units.data, form.visits.data
    return (f"Recorded {units} unit{'' if units == 1 else 's'} and {visits} "
            f"visit{'' if visits == 1 else 's'} for {reference}.")


def prefilled_usage_form(authorization: Authorization) -> UsageForm:
    """The record form, filled from a claim page's link (``claim``, ``date``, ``units``);
    without one, the date is today's, kept inside the authorization's window."""
    form = UsageForm(formdata=None)
    form.claim_reference.data = (request.args.get("claim") or "").strip()
    try:
        form.date_of_service.data = dt.date.fromisoformat(request.args.get("date", ""))
    except ValueError:
        form.date_of_service.data = min(max(dt.date.today(), authorization.valid_from),
                                        authorization.valid_to)
    units = request.args.get("units", "")
    if units.isdigit():
        form.units.data = int(units)
    return form


class AuthorizationUsageView(SecurePageView):
    """The units and visits claims drew from one authorization; billers record and void here."""

    permission = Permission.READ

    def is_visible(self) -> bool:
        """Not a menu entry (the menu is full): the claim and eligibility pages link here."""
        return False

    def _render(self, number: str, form: UsageForm | None) -> str:
        authorization = None
        usages: list[AuthorizationUsage] = []
        if number:
            authorization = db.session.scalar(
                select(Authorization).where(Authorization.number == number))
        if authorization is not None:
            usages = list(db.session.scalars(
                select(AuthorizationUsage)
                .where(AuthorizationUsage.authorization_id == authorization.id)
                .order_by(AuthorizationUsage.recorded_at, AuthorizationUsage.id)))
        numbers = list(db.session.scalars(
            select(Authorization.number).order_by(Authorization.number).limit(2000)))
        if form is None and authorization is not None and may_record_usage():
            form = prefilled_usage_form(authorization)
        balance = None
        if authorization is not None:
            balance = unit_balances([authorization])[authorization.number]
            # Reading the schedule expired it; the page goes on to show it.
            db.session.refresh(authorization)
        return self.render("admin/authorization_usage.html", number=number,
                           authorization=authorization, usages=usages, numbers=numbers,
                           balance=balance,
                           tones=DECISION_TONES, form=form,
                           void_form=VoidForm(formdata=None) if may_record_usage() else None)

    def _number(self) -> str:
        return (request.args.get("number") or "").strip()

    @expose("/")
    def index(self) -> str:
        """Show the usage rows of the authorization named by ``?number=``."""
        return self._render(self._number(), None)

    @expose("/record/", methods=("POST",))
    def record(self) -> Any:
        """Record one claim's use; refusals (over-spend, window, status) shown on the form."""
        if not may_record_usage():
            abort(403)
        number = self._number()
        form = UsageForm()
        if form.validate_on_submit():
            message = record_from_form(number, form)
            if message is not None:
                flash(message, "success")
                return redirect(url_for(".index", number=number))
        return self._render(number, form)

    @expose("/void/", methods=("POST",))
    def void(self) -> Any:
        """Void one recorded use and give its units and visit back."""
        if not may_record_usage():
            abort(403)
        number = self._number()
        form = VoidForm()
        if not form.validate_on_submit():
            flash("The void was not sent correctly; reload the page and try again.", "error")
            return redirect(url_for(".index", number=number))
        reference = form.claim_reference.data
        actor = current_actor()
        try:
            run_serialized(lambda: void_usage(number, reference, actor))
        except NotFound as exc:
            db.session.rollback()
            flash(exc.detail, "error")
        else:
            flash(f"Voided {reference}: its units and visit are back on {number}.", "success")
        return redirect(url_for(".index", number=number))
