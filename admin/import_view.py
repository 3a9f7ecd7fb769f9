"""The import page: upload a bundle or an authorizations CSV, preview the changes, confirm.

The preview runs the real import inside a SAVEPOINT and rolls it back, so what it shows is
exactly what the confirm step will write (same validation, same counts) and nothing is written.
The upload travels to the confirm step as a hidden field signed with the app's secret key,
bound to the signed-in user and valid for an hour: no server-side state, so any worker or host
can take the confirm, and the content is never logged.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import abort, current_app, flash, redirect, url_for
from flask_admin import BaseView, expose
from flask_security import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField, FileRequired
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage
from wtforms import HiddenField
from wtforms.validators import DataRequired

from admin.security import guard_request, may_edit
from policy_service.errors import Invalid
from policy_service.extensions import db
from policy_service.models import ChangeRecord
from policy_service.schemas.bundle import BUNDLE_KINDS
from policy_service.services.bundle import NATURAL_KEYS, Summary, import_bundle, parse_bundle_text

UPLOAD_SUFFIXES = ("json", "yaml", "yml", "csv")
CSV_COLUMNS = ("number", "payer", "patient", "hcpcs", "status", "approved_units",
               "approved_visits", "used_units", "used_visits", "valid_from", "valid_to",
               "diagnoses", "site_of_care")
CSV_LIST_COLUMNS = frozenset({"hcpcs", "diagnoses"})
CSV_INTEGER_COLUMNS = frozenset({"approved_units", "approved_visits", "used_units",
                                 "used_visits"})
_LIST_SEPARATORS = re.compile(r"[\s;,]+")
_INTEGER = re.compile(r"^[+-]?\d+$")
_RECORD_PATH = re.compile(r"^(?P<kind>[a-z_]+)\[(?P<index>\d+)\]\.?(?P<field>.*)$")
PAYLOAD_SALT = "admin-import"
PAYLOAD_MAX_AGE = 3600  # seconds between preview and confirm
EXPIRED_MESSAGE = "This preview has expired or was not made for you; upload the file again."


@dataclass
class Upload:
    """An uploaded file turned into a bundle, with where each CSV record came from."""

    filename: str
    bundle: dict[str, Any]
    # For a CSV: the file line of each authorization (errors name rows, not list indexes).
    csv_lines: list[int] | None = None


@dataclass
class ErrorRow:
    """One validation error as the page lists it: which record, which field, what is wrong."""

    record: str
    key: str
    field: str
    message: str


class UploadForm(FlaskForm):
    """Step 1: the file to import."""

    file = FileField("Bundle (JSON or YAML) or authorizations CSV", validators=[
        FileRequired("Choose a file to import."),
        FileAllowed(UPLOAD_SUFFIXES, "Upload a .json, .yaml, .yml or .csv file."),
    ])


class ConfirmForm(FlaskForm):
    """Step 2: the previewed upload, signed, sent back to be written."""

    payload = HiddenField(validators=[DataRequired()])


# --- turning files into bundles ----------------------------------------------------------------


def _file_error(message: str) -> Invalid:
    return Invalid([{"field": "(file)", "message": message}])


def _csv_cell(column: str, cell: str) -> Any:
    if column in CSV_LIST_COLUMNS:
        return [code.upper() for code in _LIST_SEPARATORS.split(cell) if code]
    if column in CSV_INTEGER_COLUMNS and _INTEGER.match(cell):
        return int(cell)
    # Anything else goes to the bundle schema as text, which names what is wrong with it.
    return cell


def authorizations_from_csv(text: str) -> tuple[dict[str, Any], list[int]]:
    """Return a bundle of the CSV's authorizations and the file line of each row.

    A blank cell leaves that field out (as a bundle that omits the key); list cells are split
    on spaces, semicolons or commas.
    """
    reader = csv.DictReader(io.StringIO(text), restkey="(extra)")
    header = [name.strip().lower() for name in reader.fieldnames or []]
    if not header:
        raise _file_error("The CSV file is empty: the first line must name the columns.")
    problems = [f"Unknown column {name!r}." for name in header if name not in CSV_COLUMNS]
    problems += [f"Column {name!r} is given twice." for name in dict.fromkeys(header)
                 if header.count(name) > 1]
    if "number" not in header:
        problems.append("The CSV needs a 'number' column.")
    if problems:
        problems.append(f"Expected columns: {', '.join(CSV_COLUMNS)}.")
        raise Invalid([{"field": "(file)", "message": p} for p in problems])
    records: list[dict[str, Any]] = []
    lines: list[int] = []
    extra: list[dict[str, str]] = []
    for row in reader:
        if row.get("(extra)"):
            extra.append({"field": f"authorizations[{len(records)}]",
                          "message": "The row has more cells than the header has columns."})
        cells = [(column, (row.get(original) or "").strip())
                 for original, column in zip(reader.fieldnames or [], header, strict=True)]
        records.append({column: _csv_cell(column, cell) for column, cell in cells if cell})
        lines.append(reader.line_num)
    if extra:
        raise Invalid(extra)
    return {"authorizations": records}, lines


def read_upload(filename: str, content: bytes) -> Upload:
    """Decode an uploaded file into a bundle: JSON or YAML as is, a CSV as authorizations."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _file_error("The file is not UTF-8 text.") from exc
    if Path(filename).suffix.lower() == ".csv":
        bundle, lines = authorizations_from_csv(text)
        return Upload(filename, bundle, lines)
    return Upload(filename, parse_bundle_text(text, filename))


# --- preview and confirm -----------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedChange:
    """One record the import would create, update or delete, and the fields it would change."""

    kind: str
    key: str
    action: str
    fields: tuple[str, ...]


def preview_import(bundle: Mapping[str, Any], actor: str) -> tuple[Summary, list[PlannedChange]]:
    """Return what importing ``bundle`` would change, writing nothing (SAVEPOINT rolled back).

    The change history the import writes inside the savepoint is read back before the
    rollback, so the preview lists exactly the records and fields the import would touch.
    """
    savepoint = db.session.begin_nested()
    try:
        last_record = db.session.scalar(select(func.max(ChangeRecord.id))) or 0
        summary = import_bundle(bundle, actor)
        db.session.flush()
        records = db.session.scalars(
            select(ChangeRecord).where(ChangeRecord.id > last_record)
            .order_by(ChangeRecord.entity_type, ChangeRecord.entity_key))
        changes = [PlannedChange(r.entity_type, r.entity_key, r.action,
                                 tuple(r.changed_fields()) if r.action == "update" else ())
                   for r in records]
        return summary, changes
    finally:
        savepoint.rollback()


def error_rows(exc: Invalid, upload: Upload | None) -> list[ErrorRow]:
    """Split each error's path into its record (bundle path or CSV row) and field."""
    rows: list[ErrorRow] = []
    for error in exc.errors:
        match = _RECORD_PATH.match(error["field"])
        if match is None:
            rows.append(ErrorRow(error["field"], "", "", error["message"]))
            continue
        kind, index = match["kind"], int(match["index"])
        record, key = f"{kind}[{index}]", ""
        if upload is not None:
            records = upload.bundle.get(kind)
            raw = records[index] if isinstance(records, list) and index < len(records) else None
            if isinstance(raw, Mapping) and kind in NATURAL_KEYS:
                key = " ".join(str(raw[name]) for name in NATURAL_KEYS[kind] if name in raw)
            if upload.csv_lines is not None and index < len(upload.csv_lines):
                record = f"row {upload.csv_lines[index]}"
        rows.append(ErrorRow(record, key, match["field"], error["message"]))
    return rows


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key or "", salt=PAYLOAD_SALT)


def sign_upload(upload: Upload) -> str:
    """Return the upload signed for the current user, to be posted back on confirm."""
    return str(_serializer().dumps({"user": current_user.fs_uniquifier, "name": upload.filename,
                                    "bundle": upload.bundle, "lines": upload.csv_lines}))


def unsign_upload(payload: str) -> Upload:
    """Return the upload a confirm posted back; raise BadSignature if forged, stale or not ours."""
    data = _serializer().loads(payload, max_age=PAYLOAD_MAX_AGE)
    if not isinstance(data, dict) or data.get("user") != current_user.fs_uniquifier:
        raise BadSignature("The preview belongs to another user.")
    return Upload(data["name"], data["bundle"], data["lines"])


# --- the page ----------------------------------------------------------------------------------


class ImportView(BaseView):
    """Upload, preview and confirm an import; only users who may edit policy data."""

    def is_accessible(self) -> bool:
        """Only editors see the menu entry."""
        return may_edit()

    def _handle_view(self, name: str, **kwargs: Any) -> Any:
        refused = guard_request()
        if refused is not None:
            return refused
        if not may_edit():
            abort(403)
        return None

    def _render_upload(self, form: UploadForm, errors: list[ErrorRow] | None = None,
                       filename: str | None = None) -> Any:
        return self.render("admin/import.html", form=form, errors=errors or [],
                           filename=filename, columns=CSV_COLUMNS)

    @expose("/", methods=("GET", "POST"))
    def index(self) -> Any:
        """Show the upload form; on upload, preview what would change."""
        form = UploadForm()
        if not form.validate_on_submit():
            return self._render_upload(form)
        file: FileStorage = form.file.data
        filename = Path(file.filename or "upload").name
        upload: Upload | None = None
        try:
            upload = read_upload(filename, file.read())
            summary, changes = preview_import(upload.bundle, current_user.email)
        except Invalid as exc:
            return self._render_upload(form, error_rows(exc, upload), filename)
        confirm = ConfirmForm(payload=sign_upload(upload))
        return self.render("admin/import_preview.html", summary=summary, kinds=BUNDLE_KINDS,
                           filename=filename, confirm=confirm, changes=changes,
                           has_changes=any(c["created"] or c["updated"]
                                           for c in summary.values()))

    @expose("/confirm/", methods=("POST",))
    def confirm(self) -> Any:
        """Write the previewed upload, all of it or nothing, as the signed-in user."""
        form = ConfirmForm()
        upload: Upload | None = None
        try:
            if form.validate_on_submit():
                upload = unsign_upload(form.payload.data)
        except BadSignature:
            upload = None
        if upload is None:
            flash(EXPIRED_MESSAGE, "error")
            return redirect(url_for(".index"))
        try:
            summary = import_bundle(upload.bundle, current_user.email)
            db.session.commit()
        except Invalid as exc:
            # The data changed since the preview; nothing of this upload was written.
            db.session.rollback()
            return self._render_upload(UploadForm(formdata=None), error_rows(exc, upload),
                                       upload.filename)
        return self.render("admin/import_result.html", summary=summary, kinds=BUNDLE_KINDS,
                           filename=upload.filename)
