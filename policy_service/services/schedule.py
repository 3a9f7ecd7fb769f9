"""A day's schedule of planned infusions, read from CSV or JSON and checked in chunks."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from policy_service.errors import Invalid
from policy_service.schemas.eligibility import load_request
from policy_service.services.eligibility import check_batch

CSV_COLUMNS = (
    "patient_id", "birth_date", "weight_kg", "payer", "date_of_service", "site_of_care",
    "diagnosis_codes", "hcpcs", "dose_mg", "dose_mg_per_kg", "packages", "authorization_number",
)
REQUIRED_COLUMNS = ("patient_id", "payer", "date_of_service", "hcpcs")
CHUNK_SIZE = 500


@dataclass
class ScheduleRow:
    """One appointment: where it came from and the eligibility request it asks for."""

    row: int
    item: dict[str, Any]


def _split(value: str) -> list[str]:
    return [part for part in value.replace(",", " ").replace(";", " ").split() if part]


def _packages(value: str) -> list[dict[str, Any]]:
    """Read packages written ``100x4`` (or ``100x4 400x1``): amount x count."""
    packages = []
    for part in _split(value):
        amount, _, count = part.lower().partition("x")
        packages.append({"amount": amount, "count": count or "1"})
    return packages


def row_to_item(row: dict[str, str]) -> dict[str, Any]:
    """Turn one CSV row into an eligibility request body (values still text; the schema parses)."""
    value = {k: (v or "").strip() for k, v in row.items() if k}
    patient: dict[str, Any] = {"id": value.get("patient_id", "")}
    for key in ("birth_date", "weight_kg"):
        if value.get(key):
            patient[key] = value[key]
    item: dict[str, Any] = {
        "patient": patient,
        "payer": value.get("payer", ""),
        "date_of_service": value.get("date_of_service", ""),
        "hcpcs": value.get("hcpcs", "").upper(),
        "diagnosis_codes": _split(value.get("diagnosis_codes", "")),
    }
    if value.get("dose_mg"):
        item["dose"] = {"mg": value["dose_mg"]}
    elif value.get("dose_mg_per_kg"):
        item["dose"] = {"mg_per_kg": value["dose_mg_per_kg"]}
    else:
        item["dose"] = {}
    for key in ("site_of_care", "authorization_number"):
        if value.get(key):
            item[key] = value[key]
    if value.get("packages"):
        item["packages"] = _packages(value["packages"])
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
        return [ScheduleRow(i + 1, item) for i, item in enumerate(items)]
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise Invalid({"(header)": [f"Missing column(s): {', '.join(missing)}. Expected: "
                                    f"{', '.join(CSV_COLUMNS)}."]})
    unknown = [c for c in header if c not in CSV_COLUMNS]
    if unknown:
        raise Invalid({"(header)": [f"Unknown column(s): {', '.join(unknown)}."]})
    reader.fieldnames = header
    # Row numbers as a spreadsheet shows them: the header is row 1.
    return [ScheduleRow(number, row_to_item(row)) for number, row in enumerate(reader, start=2)]


def chunks(rows: list[ScheduleRow], size: int = CHUNK_SIZE) -> Iterator[list[ScheduleRow]]:
    """Yield the rows in chunks checked together (a few queries per chunk)."""
    for start in range(0, len(rows), size):
        yield rows[start:start + size]


def check_schedule(rows: list[ScheduleRow],
                   progress: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
    """Check every row; return one flat result per row, in order (errors included)."""
    results: list[dict[str, Any]] = []
    for chunk in chunks(rows):
        outcomes = check_batch([load_request(row.item) for row in chunk])
        for row, outcome in zip(chunk, outcomes, strict=True):
            results.append(summarise(row, outcome))
        if progress:
            progress(len(chunk))
    return results


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
    }
    if isinstance(outcome, Invalid):
        reasons = "; ".join(f"{_column(e['field'])}: {e['message']}" for e in outcome.errors)
        return {**base, "decision": "error", "codes": "", "billing": "",
                "authorization": "", "reasons": reasons}
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
    }
