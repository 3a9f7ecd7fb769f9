"""Documentation checklists: what a policy asks to have on file, and what a patient has.

A policy version lists items (``TB_SCREENING`` "TB screening within 12 months", each with an
optional greatest age in days); a patient's record, or an eligibility request, lists documents
on file by code and date. ``checklist`` compares the two for a date of service and returns data:
each item with its status, never a sentence (the outer layers word it).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

CODE_PATTERN = r"^[A-Z][A-Z0-9_]{0,39}$"
CODE_MAX_LENGTH = 40
LABEL_MAX_LENGTH = 500
# A document older than this cannot be asked for (50 years): bounds the schema's integer.
MAX_AGE_DAYS_LIMIT = 18_262
_NOT_CODE = re.compile(r"[^A-Z0-9]+")


class DocumentStatus(StrEnum):
    """Where one checklist item stands on the date of service."""

    ON_FILE = "on_file"
    MISSING = "missing"
    OUT_OF_DATE = "out_of_date"


@dataclass(frozen=True, slots=True)
class DocumentationItem:
    """One thing a policy asks to have on file: a code, its label, how old it may be."""

    code: str
    label: str
    max_age_days: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """The item in bundle and API form."""
        return {"code": self.code, "label": self.label, "max_age_days": self.max_age_days}


@dataclass(frozen=True, slots=True)
class DocumentOnFile:
    """A document the practice has: its code and the date it was done or signed."""

    code: str
    on: dt.date


@dataclass(frozen=True, slots=True)
class ChecklistEntry:
    """One item of a policy's checklist as it stands on the date of service."""

    item: DocumentationItem
    status: DocumentStatus
    on_file_date: dt.date | None = None

    def as_dict(self) -> dict[str, Any]:
        """The entry as the eligibility result shows it."""
        return {**self.item.as_dict(), "status": self.status,
                "on_file_date": self.on_file_date.isoformat() if self.on_file_date else None}


def code_for_label(label: str) -> str:
    """A code made from a free-text label (``"chart notes"`` -> ``CHART_NOTES``)."""
    code = _NOT_CODE.sub("_", label.upper()).strip("_")[:CODE_MAX_LENGTH].rstrip("_")
    if not code or not code[0].isalpha():
        code = f"DOC_{code}"[:CODE_MAX_LENGTH].rstrip("_")
    return code


def documentation_item(value: str | Mapping[str, Any]) -> DocumentationItem:
    """An item from its stored or bundle form; a bare label (older bundles) gets a code."""
    if isinstance(value, str):
        return DocumentationItem(code_for_label(value), value)
    return DocumentationItem(value["code"], value.get("label") or value["code"],
                             value.get("max_age_days"))


def documentation_items(values: Iterable[str | Mapping[str, Any]] | None
                        ) -> tuple[DocumentationItem, ...]:
    """Every item of a stored ``documentation_required`` list."""
    return tuple(documentation_item(value) for value in values or ())


def checklist(items: Iterable[DocumentationItem], on_file: Iterable[DocumentOnFile],
              day: dt.date) -> list[ChecklistEntry]:
    """Each item against the documents on file on ``day``.

    The newest document of an item's code dated on or before ``day`` counts (one dated later
    did not exist yet for that service); with a ``max_age_days`` it must be at most that many
    days old on ``day``, else the item is out of date.
    """
    newest: dict[str, dt.date] = {}
    for document in on_file:
        if document.on <= day and document.on > newest.get(document.code, dt.date.min):
            newest[document.code] = document.on
    entries = []
    for item in items:
        date = newest.get(item.code)
        if date is None:
            status = DocumentStatus.MISSING
        elif item.max_age_days is not None and (day - date).days > item.max_age_days:
            status = DocumentStatus.OUT_OF_DATE
        else:
            status = DocumentStatus.ON_FILE
        entries.append(ChecklistEntry(item, status, date))
    return entries


def documentation_errors(values: Iterable[Any]) -> list[str]:
    """The problems of a ``documentation_required`` list in stored form (bad or repeated
    codes, empty labels, ages out of range): the bundle, the API and the admin share them."""
    errors: list[str] = []
    seen: set[str] = set()
    for value in values:
        if not isinstance(value, Mapping):
            errors.append("Each item needs a code and a label.")
            continue
        code, label, age = value.get("code"), value.get("label"), value.get("max_age_days")
        if not isinstance(code, str) or not re.match(CODE_PATTERN, code):
            errors.append(f"{code!r} is not a documentation code (A-Z, 0-9 and _, starting "
                          f"with a letter, at most {CODE_MAX_LENGTH} characters).")
        elif code in seen:
            errors.append(f"{code} is listed twice.")
        else:
            seen.add(code)
        if not isinstance(label, str) or not 0 < len(label.strip()) <= LABEL_MAX_LENGTH:
            errors.append(f"{code}: give a label of at most {LABEL_MAX_LENGTH} characters.")
        if age is not None and (isinstance(age, bool) or not isinstance(age, int)
                                or not 1 <= age <= MAX_AGE_DAYS_LIMIT):
            errors.append(f"{code}: max_age_days must be a whole number from 1 to "
                          f"{MAX_AGE_DAYS_LIMIT}, or none.")
    return errors


def describe_item(item: DocumentationItem) -> str:
    """The item in words, for pages and messages."""
    if item.max_age_days is None:
        return item.label
    return f"{item.label} (at most {item.max_age_days} days old)"
