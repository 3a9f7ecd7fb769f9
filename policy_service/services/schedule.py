"""A schedule of planned infusions, read from CSV, XLSX or JSON, checked in chunks, and kept
as appointments when asked.

Real schedules come out of spreadsheets: headers and labels are matched without regard to case
or spacing ("Date of service", "Hospital outpatient"), dates may be ISO or MM/DD/YYYY, and an
``appointment_id`` column names each row in the practice's scheduling system.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import multiprocessing
import re
import secrets
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import openpyxl
from flask import Flask, current_app
from marshmallow import ValidationError
from sqlalchemy import URL, delete, select

from policy_service.domain.documentation import DocumentStatus
from policy_service.domain.requests import AppointmentInput
from policy_service.domain.spreadsheet import neutralise_cell
from policy_service.errors import Invalid
from policy_service.extensions import db
from policy_service.models import DRUG_SUPPLIES, SITES_OF_CARE, Patient, ScheduleUpload
from policy_service.schemas.appointments import load_appointment
from policy_service.schemas.eligibility import load_request
from policy_service.services.appointments import (
    ItemsInvalid,
    Saved,
    upsert_many,
)
from policy_service.services.eligibility import check_batch
from policy_service.services.policy_index import index_cache

CSV_COLUMNS = (
    "appointment_id", "patient_id", "birth_date", "weight_kg", "payer", "date_of_service",
    "site_of_care", "diagnosis_codes", "hcpcs", "dose_mg", "dose_mg_per_kg", "packages",
    "authorization_number", "drug_supply", "rendering_npi",
)
REQUIRED_COLUMNS = ("patient_id", "payer", "date_of_service", "hcpcs")
# One example row for the downloadable template.
TEMPLATE_ROW = {
    "appointment_id": "APT-1001", "patient_id": "P001", "birth_date": "", "weight_kg": "",
    "payer": "MEDICARE-B", "date_of_service": "03/10/2026", "site_of_care": "Office",
    "diagnosis_codes": "M05.79", "hcpcs": "J1745", "dose_mg": "", "dose_mg_per_kg": "5",
    "packages": "100x4", "authorization_number": "", "drug_supply": "buy and bill",
    "rendering_npi": "1234567893",
}
CHUNK_SIZE = 500
US_DATE = re.compile(r"^(?P<month>\d{1,2})/(?P<day>\d{1,2})/(?P<year>\d{4})$")
SPACING = re.compile(r"[\s_-]+")
XLSX_MAGIC = b"PK\x03\x04"
SITE_LABELS = {SPACING.sub("", site): site for site in SITES_OF_CARE}
SUPPLY_LABELS = {SPACING.sub("", supply): supply for supply in DRUG_SUPPLIES}


@dataclass
class ScheduleRow:
    """One appointment: where it came from, its id if given, and the eligibility request."""

    row: int
    item: dict[str, Any]
    appointment_id: str | None = None


def column_name(header: Any) -> str:
    """A header as the reader knows it: "Date of service" and "date-of-service" are one."""
    return SPACING.sub("_", str(header or "").strip().lower()).strip("_")


def iso_date(value: str) -> str:
    """A date written MM/DD/YYYY in ISO form; anything else as it was (the schema judges)."""
    match = US_DATE.match(value)
    if match is None:
        return value
    try:
        return dt.date(int(match["year"]), int(match["month"]), int(match["day"])).isoformat()
    except ValueError:
        return value


def site_of_care(value: str) -> str:
    """A site of care label ("Hospital outpatient") as its code; unknown ones unchanged."""
    return SITE_LABELS.get(SPACING.sub("", value.lower()), value)


def drug_supply(value: str) -> str:
    """A drug supply label ("Specialty pharmacy", "buy-and-bill") as its code."""
    return SUPPLY_LABELS.get(SPACING.sub("", value.lower()), value)


def code(value: str) -> str:
    """A code without spaces, upper case ("j 1745" is J1745)."""
    return re.sub(r"\s+", "", value).upper()


def _split(value: str) -> list[str]:
    return [part for part in value.replace(",", " ").replace(";", " ").split() if part]


def _packages(value: str) -> list[dict[str, Any]]:
    """Read packages written ``100x4`` (or ``100x4 400x1``): amount x count."""
    packages = []
    for part in _split(value):
        amount, _, count = part.lower().partition("x")
        count = count or "1"
        # CSV cells are text; the request schema takes integers strictly, so digits become one
        # here and anything else stays text for the schema to name.
        packages.append({"amount": amount,
                         "count": int(count) if count.isascii() and count.isdigit() else count})
    return packages


def row_to_item(row: dict[str, str]) -> dict[str, Any]:
    """Turn one CSV row into an eligibility request body (values still text; the schema parses)."""
    value = {k: (v or "").strip() for k, v in row.items() if k}
    patient: dict[str, Any] = {"id": value.get("patient_id", "")}
    if value.get("birth_date"):
        patient["birth_date"] = iso_date(value["birth_date"])
    if value.get("weight_kg"):
        patient["weight_kg"] = value["weight_kg"]
    item: dict[str, Any] = {
        "patient": patient,
        "payer": value.get("payer", ""),
        "date_of_service": iso_date(value.get("date_of_service", "")),
        "hcpcs": code(value.get("hcpcs", "")),
        "diagnosis_codes": [part.upper() for part in _split(value.get("diagnosis_codes", ""))],
    }
    if value.get("dose_mg"):
        item["dose"] = {"mg": value["dose_mg"]}
    elif value.get("dose_mg_per_kg"):
        item["dose"] = {"mg_per_kg": value["dose_mg_per_kg"]}
    else:
        item["dose"] = {}
    if value.get("site_of_care"):
        item["site_of_care"] = site_of_care(value["site_of_care"])
    if value.get("authorization_number"):
        item["authorization_number"] = value["authorization_number"]
    if value.get("packages"):
        item["packages"] = _packages(value["packages"])
    if value.get("drug_supply"):
        item["drug_supply"] = drug_supply(value["drug_supply"])
    if value.get("rendering_npi"):
        item["rendering_npi"] = re.sub(r"\s+", "", value["rendering_npi"])
    return item


def read_schedule(text: str, filename: str) -> list[ScheduleRow]:
    """Read a schedule file (CSV with a header row, or JSON: a list or ``{"items": [...]}``)."""
    if filename.lower().endswith(".json") or text.lstrip().startswith(("[", "{")):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise Invalid({"(file)": [f"Malformed JSON at line {exc.lineno}, column "
                                      f"{exc.colno}: {exc.msg}"]}) from None
        items = data.get("items") if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise Invalid({"(file)": ["Expected a list of planned treatments "
                                      "or {'items': [...]}."]})
        rows = []
        for number, item in enumerate(items, start=1):
            appointment_id = item.pop("appointment_id", None) if isinstance(item, dict) else None
            rows.append(ScheduleRow(number, item, appointment_id))
        return rows
    reader = csv.reader(io.StringIO(text))
    return _table_rows(reader)


def _table_rows(lines: Iterable[list[str]]) -> list[ScheduleRow]:
    """Rows of a table whose first line is the header (CSV or a worksheet)."""
    lines = iter(lines)
    header = [column_name(h) for h in next(lines, [])]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise Invalid({"(header)": [f"Missing column(s): {', '.join(missing)}. Expected: "
                                    f"{', '.join(CSV_COLUMNS)}."]})
    unknown = [c for c in header if c and c not in CSV_COLUMNS]
    if unknown:
        raise Invalid({"(header)": [f"Unknown column(s): {', '.join(unknown)}."]})
    rows = []
    # Row numbers as a spreadsheet shows them: the header is row 1.
    for number, cells in enumerate(lines, start=2):
        if not any((cell or "").strip() for cell in cells):
            continue
        record = {name: cell for name, cell in zip(header, cells, strict=False) if name}
        rows.append(ScheduleRow(number, row_to_item(record),
                                (record.get("appointment_id") or "").strip() or None))
    return rows


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def read_workbook(data: bytes) -> list[ScheduleRow]:
    """Read the first worksheet of an XLSX workbook: a header row, then one row per visit."""
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError):
        raise Invalid({"(file)": ["Not a readable XLSX workbook."]}) from None
    try:
        sheet = workbook.worksheets[0]
        lines = ([_cell_text(cell) for cell in row] for row in sheet.iter_rows(values_only=True))
        return _table_rows(lines)
    finally:
        workbook.close()


def read_schedule_file(data: bytes, filename: str) -> list[ScheduleRow]:
    """Read a schedule upload: XLSX by its content, else UTF-8 CSV or JSON."""
    if data.startswith(XLSX_MAGIC):
        return read_workbook(data)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Invalid({"(file)": [f"Neither an XLSX workbook nor UTF-8 text "
                                  f"(byte {exc.start})."]}) from None
    return read_schedule(text, filename)


def chunks(rows: list[ScheduleRow], size: int = CHUNK_SIZE) -> Iterator[list[ScheduleRow]]:
    """Yield the rows in chunks checked together (a few queries per chunk)."""
    for start in range(0, len(rows), size):
        yield rows[start:start + size]


def check_schedule(rows: list[ScheduleRow], progress: Callable[[int], None] | None = None,
                   processes: int = 1) -> list[dict[str, Any]]:
    """Check every row; return one flat result per row, in order (errors included).

    ``processes`` above 1 checks the chunks in that many forked processes, as the command
    line does for a large schedule: the engine runs one evaluation at a time per process, so
    processes are how a schedule uses more than one core. A web worker keeps the default.
    """
    match_payers(rows)
    parts = list(chunks(rows, CHUNK_SIZE))
    results: list[dict[str, Any]] = []
    with _chunk_checker(min(processes, len(parts))) as check:
        for chunk, summaries in zip(parts, check(parts), strict=True):
            results.extend(summaries)
            if progress:
                progress(len(chunk))
    return results


def _check_chunk(chunk: list[ScheduleRow]) -> list[dict[str, Any]]:
    outcomes = check_batch([load_request(row.item) for row in chunk])
    return [summarise(row, outcome) for row, outcome in zip(chunk, outcomes, strict=True)]


@contextmanager
def _chunk_checker(processes: int) -> Iterator[Callable[[list[list[ScheduleRow]]],
                                                        Iterable[list[dict[str, Any]]]]]:
    """Yield a function checking chunks in order: here, or in ``processes`` forked ones."""
    if processes <= 1 or in_memory(db.engine.url):
        # A forked process could not reach an in-memory database: it would open an empty one.
        yield lambda parts: map(_check_chunk, parts)
        return
    # Forked after the policy index is loaded, so each process starts with it; each opens its
    # own database connection and registers the rules on its first check.
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    with multiprocessing.get_context("fork").Pool(
            processes, initializer=_start_checker_process, initargs=(app,)) as pool:
        yield lambda parts: pool.imap(_check_chunk, parts)


def in_memory(url: URL) -> bool:
    """Whether ``url`` names an SQLite database that lives in one process's memory."""
    return url.get_backend_name() == "sqlite" and (
        url.database in (None, "", ":memory:") or url.query.get("mode") == "memory")


def _start_checker_process(app: Flask) -> None:
    # The parent's pooled connections stay the parent's (SQLAlchemy's advice for fork).
    db.engine.dispose(close=False)
    app.app_context().push()


# Request fields as a schedule CSV names them.
CSV_NAMES = {
    "patient.id": "patient_id", "patient.birth_date": "birth_date",
    "patient.weight_kg": "weight_kg", "dose": "dose_mg or dose_mg_per_kg",
    "dose.mg": "dose_mg", "dose.mg_per_kg": "dose_mg_per_kg",
}


def _column(field: str) -> str:
    head = field.split("[", 1)[0]
    if head in ("packages", "diagnosis_codes"):
        return head
    return CSV_NAMES.get(field, field)


def summarise(row: ScheduleRow, outcome: Any) -> dict[str, Any]:
    """One flat line per appointment, for a table, a CSV or a coloured page row."""
    item = row.item if isinstance(row.item, dict) else {}
    patient = item.get("patient") if isinstance(item.get("patient"), dict) else {}
    base = {
        "row": row.row,
        "patient_id": patient.get("id", ""),
        "payer": item.get("payer", ""),
        "date_of_service": item.get("date_of_service", ""),
        "hcpcs": item.get("hcpcs", ""),
        "drug_supply": item.get("drug_supply", "buy_and_bill"),
        "rendering_npi": item.get("rendering_npi", ""),
    }
    if isinstance(outcome, Invalid):
        reasons = "; ".join(f"{_column(e['field'])}: {e['message']}" for e in outcome.errors)
        return {**base, "decision": "error", "codes": "", "billing": "",
                "authorization": "", "reasons": reasons, "documentation_missing": ""}
    billing = outcome.get("billing") or {}
    lines = " + ".join(
        f"{line['code']}{'-' + '-'.join(line['modifiers']) if line['modifiers'] else ''}"
        f" x{line['units']}" for line in billing.get("lines", []))
    auth = outcome.get("authorization") or {}
    return {
        **base,
        "decision": outcome["decision"],
        "codes": " ".join(f["code"] for f in outcome["findings"]),
        "billing": lines,
        "authorization": auth.get("number", ""),
        "reasons": " | ".join(f["message"] for f in outcome["findings"]
                              if f["severity"] != "info"),
        # Added last: the CSV's existing columns keep their places.
        "documentation_missing": documentation_missing_words(outcome.get("documentation") or []),
    }


# How a checklist status reads in a schedule's results (on-file items are not listed).
LACKING_WORDS = {DocumentStatus.MISSING: "missing", DocumentStatus.OUT_OF_DATE: "out of date"}


def documentation_missing_words(entries: Iterable[Mapping[str, Any]]) -> str:
    """The checklist items not on file, by label with their status, for the schedule page's
    CSV and `policy-service check` (its report and ``--out``); empty when nothing lacks."""
    words = []
    for entry in entries:
        said = LACKING_WORDS.get(entry.get("status"))
        if said is None:
            continue
        if entry.get("on_file_date"):
            said += f": on file from {entry['on_file_date']}"
        words.append(f"{entry.get('label') or entry.get('code')} ({said})")
    return "; ".join(words)


def match_payers(rows: Iterable[ScheduleRow]) -> None:
    """Name each row's payer as it is stored ("medicare b" is MEDICARE-B); unknown ones stay."""
    stored = {SPACING.sub("", payer).upper(): payer for payer in index_cache.current().payers}
    for row in rows:
        if isinstance(row.item, dict) and isinstance(row.item.get("payer"), str):
            row.item["payer"] = stored.get(SPACING.sub("", row.item["payer"]).upper(),
                                           row.item["payer"])


def _row_errors(row: ScheduleRow, errors: Iterable[dict[str, str]]) -> list[dict[str, str]]:
    return [{"field": f"row {row.row}, {_column(e['field'])}", "message": e["message"]}
            for e in errors]


# A kept appointment reads the patient's stored record, so the file may not override it.
STORED_PATIENT_FIELDS = {"birth_date": "birth date", "weight_kg": "weight"}


def _appointment_input(row: ScheduleRow) -> AppointmentInput | list[dict[str, str]]:
    """The row as an appointment, or the errors that keep it from being one."""
    errors: list[dict[str, str]] = []
    if not row.appointment_id:
        errors.append({"field": "appointment_id",
                       "message": "Needed to keep the row as an appointment."})
    item = dict(row.item) if isinstance(row.item, dict) else {}
    patient = dict(item.get("patient") or {}) if isinstance(item.get("patient"), dict) else {}
    for key, words in STORED_PATIENT_FIELDS.items():
        if patient.pop(key, None) is not None:
            errors.append({"field": f"patient.{key}", "message": (
                f"A kept appointment reads the {words} from the patient's record; "
                "leave this column empty and correct the record instead.")})
    item["patient"] = patient
    try:
        loaded = load_appointment(item)
    except ValidationError as exc:
        errors.extend(Invalid(exc.messages).errors)
        return errors
    return errors or loaded


def store_schedule(rows: list[ScheduleRow], actor: str) -> list[Saved]:
    """Keep every row as an appointment (created or replaced by its id), all or none.

    Raises ``Invalid`` naming every bad row by its number and column; nothing is stored then.
    """
    if not rows:
        raise Invalid({"(file)": ["The schedule has no rows."]})
    match_payers(rows)
    errors: list[dict[str, str]] = []
    items: list[tuple[str, AppointmentInput]] = []
    kept: list[ScheduleRow] = []
    for row in rows:
        loaded = _appointment_input(row)
        if isinstance(loaded, list):
            errors.extend(_row_errors(row, loaded))
        else:
            items.append((row.appointment_id or "", loaded))
            kept.append(row)
    try:
        saved = upsert_many(items, actor, labels=[str(row.row) for row in kept],
                            validate_only=bool(errors))
    except ItemsInvalid as exc:
        for index, problem in sorted(exc.by_item.items()):
            errors.extend(_row_errors(kept[index], problem.errors))
        saved = []
    if errors:
        errors.sort(key=lambda e: int(e["field"].split(",")[0].removeprefix("row ")))
        raise Invalid(errors, detail=f"{len({e['field'].split(',')[0] for e in errors})} "
                                     "row(s) cannot be kept")
    return saved


def summarise_saved(row: ScheduleRow, saved: Saved) -> dict[str, Any]:
    """The flat line of a kept row, from the check stored with it."""
    line = summarise(row, saved.check.result)
    return {"appointment_id": saved.appointment.appointment_id, **line}


# --- uploads awaiting "keep as schedule", kept in the database (any host can answer) ------

# An upload holds patient ids: forget it once nobody can reasonably still want it.
KEEP_UPLOAD_FOR = dt.timedelta(hours=8)
UPLOAD_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,64}$")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def keep_upload(rows: list[ScheduleRow], owner: str, filename: str) -> str:
    """Keep an uploaded schedule for its owner (for the download and "keep as schedule");
    return the random token that names it. Uploads older than the keep time are deleted."""
    db.session.execute(delete(ScheduleUpload).where(
        ScheduleUpload.created_at < _now() - KEEP_UPLOAD_FOR))
    token = secrets.token_urlsafe(24)
    db.session.add(ScheduleUpload(
        token=token, owner=owner, filename=filename[:255], created_at=_now(),
        rows=[{"row": r.row, "appointment_id": r.appointment_id, "item": r.item} for r in rows]))
    db.session.flush()
    return token


def kept_upload(token: str, owner: str) -> list[ScheduleRow] | None:
    """Return the rows of ``owner``'s kept upload ``token``, or None (unknown, expired or
    someone else's)."""
    if not UPLOAD_TOKEN.fullmatch(token or ""):
        return None
    upload = db.session.scalar(select(ScheduleUpload).where(
        ScheduleUpload.token == token, ScheduleUpload.owner == owner,
        ScheduleUpload.created_at >= _now() - KEEP_UPLOAD_FOR))
    if upload is None:
        return None
    return [ScheduleRow(r["row"], r["item"], r.get("appointment_id")) for r in upload.rows]


def forget_upload(token: str, owner: str) -> None:
    """Delete a kept upload once it became the schedule."""
    db.session.execute(delete(ScheduleUpload).where(ScheduleUpload.token == token,
                                                    ScheduleUpload.owner == owner))


def template_csv() -> str:
    """The schedule template: the header and one example row."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(CSV_COLUMNS))
    writer.writeheader()
    writer.writerow(TEMPLATE_ROW)
    return out.getvalue()


def template_xlsx() -> bytes:
    """The schedule template as a workbook."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Schedule"
    sheet.append(list(CSV_COLUMNS))
    sheet.append([TEMPLATE_ROW[column] for column in CSV_COLUMNS])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# --- results as CSV (page download and `policy-service check --out`) ------------------------

def patients_not_on_file(results: list[dict[str, Any]]) -> set[str]:
    """The patient ids of schedule rows that name no stored patient."""
    named = {str(r.get("patient_id") or "") for r in results} - {""}
    if not named:
        return set()
    stored = set(db.session.scalars(select(Patient.external_id)
                                    .where(Patient.external_id.in_(named))))
    return named - stored


def not_on_file_reason(patient_id: str) -> str:
    """What the schedule page, its CSV and `check --out` say of a row naming no stored patient."""
    return (f"Patient not on file: add the patient {patient_id} with their birth date, weight "
            "and the therapies they have tried (or check the id for a typing error), then "
            "check the schedule again. Not checked.")


def results_csv(results: list[dict[str, Any]], not_on_file: set[str] | None = None) -> str:
    """The schedule results as CSV, every cell safe to open in a spreadsheet.

    A row whose patient is in ``not_on_file`` keeps its decision (the contract's vocabulary)
    and gets the page's reason instead of the rules' list of missing facts.
    """
    out = io.StringIO()
    columns = list(results[0]) if results else ["row"]
    writer = csv.DictWriter(out, fieldnames=columns)
    writer.writeheader()
    for result in results:
        if str(result.get("patient_id") or "") in (not_on_file or set()):
            result = {**result, "reasons": not_on_file_reason(str(result["patient_id"]))}
        writer.writerow({key: neutralise_cell(value) for key, value in result.items()})
    return out.getvalue()
