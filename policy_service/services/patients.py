"""Patients' records that several writers share: the id, the documents on file.

The bundle import and the admin's patient page both record documentation through
``set_documentation``, so both store the same distinct rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select

from policy_service.domain.fields import document_rows
from policy_service.extensions import db
from policy_service.models import Patient, PatientDocument


def external_id_errors(external_id: str,
                       patient: Patient | None = None) -> dict[str, list[str]]:
    """``{"external_id": [why]}`` when a patient other than ``patient`` has ``external_id``."""
    others = select(Patient.id).where(Patient.external_id == external_id)
    if patient is not None and patient.id is not None:
        others = others.where(Patient.id != patient.id)
    if db.session.scalar(others) is None:
        return {}
    return {"external_id": [f"Another patient already has the id {external_id}: open that "
                            "patient, or type a different id."]}


def documentation_of(patient: Patient) -> list[dict[str, Any]]:
    """The patient's documents on file in bundle form (``{code, date}``), by code and date."""
    return sorted(({"code": d.code, "date": d.on_date} for d in patient.documents),
                  key=lambda d: (d["code"], d["date"]))


def set_documentation(patient: Patient, entries: Iterable[Mapping[str, Any]]) -> bool:
    """Make the patient's documents on file exactly ``entries`` (``{code, date}``), each once;
    return whether anything changed.

    Rows already stored are kept (a stored row wins over a new one saying the same), so a
    save never deletes and re-inserts a row that (patient, code, date) keeps unique.
    """
    wanted = {(row["code"], row["on_date"]) for row in document_rows(entries)}
    kept: dict[tuple[str, Any], PatientDocument] = {}
    changed = False
    for document in sorted(patient.documents, key=lambda d: d.id is None):
        key = (document.code, document.on_date)
        if key in wanted and key not in kept:
            kept[key] = document
        else:
            patient.documents.remove(document)
            changed = True
    for code, day in sorted(wanted - set(kept)):
        patient.documents.append(PatientDocument(code=code, on_date=day))
        changed = True
    return changed
