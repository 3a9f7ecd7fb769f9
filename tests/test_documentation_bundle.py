"""Documentation checklists in bundles: policy items (and bare labels), documents on file."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from policy_service.errors import Invalid
from policy_service.models import ChangeRecord, Patient, PolicyVersion
from policy_service.services.bundle import export_bundle, import_bundle
from tests.test_bundle import HAND_WRITTEN

TB = {"code": "TB_SCREENING", "label": "TB screening within 12 months", "max_age_days": 365}


@pytest.fixture
def bundle() -> dict[str, Any]:
    """The hand-written bundle with a checklist and documents on file."""
    data = copy.deepcopy(HAND_WRITTEN)
    data["policies"][1]["documentation_required"] = [TB, "chart notes"]
    data["patients"][0]["documentation"] = [
        {"code": "TB_SCREENING", "date": "2026-01-05"},
        {"code": "HBV_SCREENING", "date": "2025-11-30"},
        {"code": "TB_SCREENING", "date": "2026-01-05"}]
    return data


def test_items_and_documents_are_stored_and_exported(session: Session,
                                                     bundle: dict[str, Any]) -> None:
    import_bundle(bundle, "system")
    version = session.scalar(select(PolicyVersion).where(PolicyVersion.number == 2))
    assert version.documentation_required == [
        TB, {"code": "CHART_NOTES", "label": "chart notes", "max_age_days": None}]
    exported = export_bundle()
    assert exported["policies"][2]["documentation_required"] == version.documentation_required
    assert exported["patients"][0]["documentation"] == [
        {"code": "HBV_SCREENING", "date": "2025-11-30"},
        {"code": "TB_SCREENING", "date": "2026-01-05"}]
    again = import_bundle(exported, "system")
    assert again["patients"] == {"created": 0, "updated": 0, "unchanged": 1}
    assert again["policies"]["updated"] == 0


def test_documents_on_file_are_replaced_and_recorded_in_the_history(
        session: Session, bundle: dict[str, Any]) -> None:
    import_bundle(bundle, "system")
    bundle["patients"][0]["documentation"] = [{"code": "TB_SCREENING", "date": "2026-02-01"}]
    summary = import_bundle(bundle, "alice@example.org")
    assert summary["patients"]["updated"] == 1
    patient = session.scalar(select(Patient).where(Patient.external_id == "P001"))
    assert [(d.code, d.on_date.isoformat()) for d in patient.documents] == [
        ("TB_SCREENING", "2026-02-01")]
    record = session.scalars(select(ChangeRecord).where(
        ChangeRecord.entity_type == "patient", ChangeRecord.actor == "alice@example.org")).one()
    assert record.after["documentation"] == [{"code": "TB_SCREENING", "on_date": "2026-02-01"}]


@pytest.mark.parametrize(("kind", "index", "field", "value", "path"), [
    ("policies", 1, "documentation_required", [{"code": "tb", "label": "TB"}],
     "policies[1].documentation_required[0].code"),
    ("policies", 1, "documentation_required", [{"code": "TB", "label": "TB",
                                                "max_age_days": 0}],
     "policies[1].documentation_required[0].max_age_days"),
    ("policies", 1, "documentation_required", [TB, TB], "policies[1].documentation_required"),
    ("policies", 1, "documentation_required", [{"code": "TB"}],
     "policies[1].documentation_required[0].label"),
    ("policies", 1, "documentation_required", [7], "policies[1].documentation_required[0]"),
    ("patients", 0, "documentation", [{"code": "TB_SCREENING", "date": "someday"}],
     "patients[0].documentation[0].date"),
])
def test_bad_documentation_is_refused_naming_the_field(
        session: Session, bundle: dict[str, Any], kind: str, index: int, field: str,
        value: Any, path: str) -> None:
    bundle[kind][index][field] = value
    with pytest.raises(Invalid) as caught:
        import_bundle(bundle, "system")
    assert path in [e["field"] for e in caught.value.errors]
