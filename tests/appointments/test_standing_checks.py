"""Standing checks: keyed on revisions, recomputed only when one moved, never stale."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select

from policy_service.extensions import db
from policy_service.models import Authorization, Patient, Therapy
from policy_service.schemas.appointments import load_appointment
from policy_service.services import appointments
from policy_service.services.appointments import Filters
from policy_service.services.usage import record_usage, void_usage
from tests.appointments.conftest import appointment_with
from tests.factories import make_patient


def store(appointment_id: str, **changes: Any) -> appointments.Saved:
    return appointments.upsert(appointment_id, load_appointment(appointment_with(**changes)),
                               "scheduler@example.org")


def revision_of(model: Any, row_id: int) -> int:
    return db.session.scalar(select(model.revision).where(model.id == row_id))


def recomputed(filters: Filters | None = None) -> dict[str, bool]:
    rows, _ = appointments.list_with_checks(filters or Filters())
    return {row.appointment.appointment_id: row.check.recomputed for row in rows}


def test_an_unchanged_read_recomputes_nothing(world) -> None:
    store("APT-1")
    store("APT-2", date_of_service="2026-04-07")
    assert recomputed() == {"APT-1": False, "APT-2": False}


def test_only_the_moved_ones_are_recomputed(world) -> None:
    other = make_patient("P002")
    store("APT-1")
    store("APT-2", patient={"id": "P002"}, authorization_number=None)
    other.weight_kg = 70
    db.session.flush()
    assert recomputed() == {"APT-1": False, "APT-2": True}
    assert recomputed() == {"APT-1": False, "APT-2": False}


def test_a_policy_change_moves_every_check(world) -> None:
    store("APT-1")
    store("APT-2", date_of_service="2026-04-07")
    world["policy"].min_age = 21
    db.session.flush()
    assert recomputed() == {"APT-1": True, "APT-2": True}


def test_therapy_history_changes_move_the_patients_revision(world) -> None:
    patient = world["patient"]
    before = revision_of(Patient, patient.id)
    patient.therapies.append(Therapy(drug="leflunomide", start=dt.date(2025, 7, 1)))
    db.session.flush()
    after_add = revision_of(Patient, patient.id)
    assert after_add > before
    db.session.delete(patient.therapies[0])
    db.session.flush()
    assert revision_of(Patient, patient.id) > after_add


def test_usage_and_its_void_move_the_authorization_and_patient(world) -> None:
    auth, patient = world["authorization"], world["patient"]
    revisions = (revision_of(Authorization, auth.id), revision_of(Patient, patient.id))
    record_usage("A-1001", "CLM-1", dt.date(2026, 2, 1), 40, 1, "biller@example.org")
    recorded = (revision_of(Authorization, auth.id), revision_of(Patient, patient.id))
    assert recorded[0] > revisions[0] and recorded[1] > revisions[1]
    void_usage("A-1001", "CLM-1", "biller@example.org")
    assert revision_of(Authorization, auth.id) > recorded[0]


def test_the_decision_change_is_kept_with_when_it_changed(world) -> None:
    saved = store("APT-1")
    assert saved.check.previous_decision is None
    world["authorization"].status = "denied"
    db.session.flush()
    check = appointments.current_check(saved.appointment)
    assert (check.previous_decision, check.decision) == ("eligible", "needs_authorization")
    assert check.changed_since(appointments.now() - dt.timedelta(minutes=1))
    # Reading again keeps the change and its time; nothing moved.
    again = appointments.current_check(saved.appointment)
    assert not again.recomputed
    assert again.decision_changed_at == check.decision_changed_at


def test_a_deleted_authorization_leaves_an_error_check_not_a_stale_one(world) -> None:
    saved = store("APT-1", authorization_number="A-1001")
    db.session.delete(world["authorization"])
    db.session.flush()
    check = appointments.current_check(saved.appointment)
    assert check.decision == "error"
    assert check.result["errors"][0]["field"] == "authorization_number"


def test_a_changed_logic_fingerprint_moves_every_check(world, monkeypatch) -> None:
    store("APT-1")
    monkeypatch.setattr(appointments, "_logic_key", lambda: "another-deploy")
    assert recomputed() == {"APT-1": True}


@pytest.mark.parametrize("module", ["policy_service.services.provider_facts",
                                    "policy_service.engine"])
def test_the_logic_fingerprint_covers_every_module_deciding_a_check(monkeypatch,
                                                                     module: str) -> None:
    """provider_facts decides enrollment, prescriber specialty and drug supply, the engine
    evaluates the rules: a deploy that changes either must move the stored checks."""
    import importlib
    from pathlib import Path

    before = appointments.logic_fingerprint()
    changed = Path(importlib.import_module(module).__file__).resolve()
    read_bytes = Path.read_bytes

    def patched(path: Path) -> bytes:
        data = read_bytes(path)
        return data + b"\n# changed" if path.resolve() == changed else data

    monkeypatch.setattr(Path, "read_bytes", patched)
    appointments.logic_fingerprint.cache_clear()
    try:
        assert appointments.logic_fingerprint() != before
    finally:
        appointments.logic_fingerprint.cache_clear()


def test_the_logic_fingerprint_covers_the_icd10_code_list(monkeypatch, tmp_path) -> None:
    """Which diagnoses are valid and billable comes from the code list the ICD-10-CM library
    ships: an upgrade that changes it must move the stored checks like a change of code."""
    from policy_service.domain import icd10

    before = appointments.logic_fingerprint()
    other = tmp_path / "code-list-next.txt"
    other.write_bytes(icd10.code_list_path().read_bytes() + b"Z99.99 A new code\n")
    monkeypatch.setattr(icd10, "code_list_path", lambda: other)
    appointments.logic_fingerprint.cache_clear()
    try:
        assert appointments.logic_fingerprint() != before
    finally:
        appointments.logic_fingerprint.cache_clear()


def test_a_document_recorded_on_the_patient_reaches_the_appointments_check(world) -> None:
    """Appointments take no documents of their own (the contract names none): their checklist
    reads the patient's record, so filing a document there clears the standing warning."""
    from policy_service.services.patients import set_documentation

    world["policy"].documentation_required = [
        {"code": "TB_SCREENING", "label": "TB screening within 12 months", "max_age_days": 365}]
    db.session.flush()
    saved = store("APT-1")
    assert [e["status"] for e in saved.check.result["documentation"]] == ["missing"]
    assert "DOCUMENTATION_MISSING" in {f["code"] for f in saved.check.result["findings"]}
    set_documentation(world["patient"], [{"code": "TB_SCREENING", "date": dt.date(2026, 2, 1)}])
    db.session.flush()
    check = appointments.get_with_check("APT-1").check
    assert check.recomputed
    assert [e["status"] for e in check.result["documentation"]] == ["on_file"]
    assert "DOCUMENTATION_MISSING" not in {f["code"] for f in check.result["findings"]}
