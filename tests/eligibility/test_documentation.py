"""Documentation checklists: the policy's items against what is on file on the date of service."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from policy_service.domain.documentation import (
    DocumentationItem,
    DocumentOnFile,
    DocumentStatus,
    checklist,
    code_for_label,
)
from tests.eligibility.world import (
    METHOTREXATE_FAILED,
    build_world,
    post,
    request_with,
)
from tests.factories import make_authorization, make_patient, make_payer

TB = {"code": "TB_SCREENING", "label": "TB screening within 12 months", "max_age_days": 365}
HBV = {"code": "HBV_SCREENING", "label": "hepatitis B screening", "max_age_days": None}
DAY = dt.date(2026, 3, 10)


@pytest.mark.parametrize(("documents", "expected"), [
    ([], [DocumentStatus.MISSING]),
    ([DocumentOnFile("TB_SCREENING", dt.date(2025, 3, 10))], [DocumentStatus.ON_FILE]),
    ([DocumentOnFile("TB_SCREENING", dt.date(2025, 3, 9))], [DocumentStatus.OUT_OF_DATE]),
    # A result dated after the infusion did not exist for it.
    ([DocumentOnFile("TB_SCREENING", dt.date(2026, 3, 11))], [DocumentStatus.MISSING]),
    # The newest document counts: an old one does not hide a recent one.
    ([DocumentOnFile("TB_SCREENING", dt.date(2020, 1, 1)),
      DocumentOnFile("TB_SCREENING", dt.date(2026, 1, 5))], [DocumentStatus.ON_FILE]),
    ([DocumentOnFile("HBV_SCREENING", dt.date(2026, 1, 5))], [DocumentStatus.MISSING]),
])
def test_checklist_status_on_the_date_of_service(documents: list[DocumentOnFile],
                                                 expected: list[DocumentStatus]) -> None:
    items = [DocumentationItem(**TB)]
    assert [entry.status for entry in checklist(items, documents, DAY)] == expected


def test_an_item_without_age_limit_is_on_file_however_old() -> None:
    entries = checklist([DocumentationItem(**HBV)],
                        [DocumentOnFile("HBV_SCREENING", dt.date(2001, 1, 1))], DAY)
    assert entries[0].as_dict() == {**HBV, "status": "on_file", "on_file_date": "2001-01-01"}


@pytest.mark.parametrize(("label", "code"), [
    ("chart notes", "CHART_NOTES"),
    ("prescribed by or in consultation with a rheumatologist",
     "PRESCRIBED_BY_OR_IN_CONSULTATION_WITH_A"),
    ("3-month trial", "DOC_3_MONTH_TRIAL"),
])
def test_a_bare_label_gets_a_code_made_from_its_words(label: str, code: str) -> None:
    assert code_for_label(label) == code


def _world(documents: list[tuple[str, dt.date]] | None = None) -> None:
    payer = make_payer()
    build_world(policy={"documentation_required": [TB, HBV]}, with_auth=False)
    make_authorization("A-2002", patient=make_patient("P002", therapies=[METHOTREXATE_FAILED],
                                                      documents=documents), payer=payer)


def test_the_result_lists_the_checklist_and_the_finding_names_what_is_missing(
        client: FlaskClient, session: Session, auth_header: Any) -> None:
    _world(documents=[("TB_SCREENING", dt.date(2024, 1, 2))])
    body = post(client, auth_header("scheduler"), request_with(patient={"id": "P002"})).json
    assert body["decision"] == "eligible"
    assert body["documentation"] == [
        {**TB, "status": "out_of_date", "on_file_date": "2024-01-02"},
        {**HBV, "status": "missing", "on_file_date": None}]
    finding = next(f for f in body["findings"] if f["code"] == "DOCUMENTATION_MISSING")
    assert finding["severity"] == "warn"
    assert [item["code"] for item in finding["documentation"]] == ["TB_SCREENING",
                                                                   "HBV_SCREENING"]
    assert "TB screening within 12 months (at most 365 days old) (out of date)" \
        in finding["message"]
    assert "hepatitis B screening" in finding["message"]
    assert finding["policy"]["id"] == "MEDICARE-B/infliximab"


def test_documentation_on_file_in_the_request_adds_to_the_stored_record(
        client: FlaskClient, session: Session, auth_header: Any) -> None:
    _world(documents=[("TB_SCREENING", dt.date(2026, 2, 1))])
    body = post(client, auth_header("scheduler"), request_with(
        patient={"id": "P002"},
        documentation_on_file=[{"code": "HBV_SCREENING", "date": "2025-12-01"}])).json
    assert "DOCUMENTATION_MISSING" not in [f["code"] for f in body["findings"]]
    assert [(e["code"], e["status"], e["on_file_date"]) for e in body["documentation"]] == [
        ("TB_SCREENING", "on_file", "2026-02-01"), ("HBV_SCREENING", "on_file", "2025-12-01")]


def test_a_policy_without_documentation_has_an_empty_checklist(
        client: FlaskClient, session: Session, auth_header: Any) -> None:
    build_world()
    body = post(client, auth_header("scheduler"), request_with()).json
    assert body["documentation"] == []
    assert body["findings"] == []


@pytest.mark.parametrize(("entry", "field"), [
    ({"code": "tb screening", "date": "2026-01-01"}, "documentation_on_file[0].code"),
    ({"code": "TB_SCREENING"}, "documentation_on_file[0].date"),
    ({"code": "TB_SCREENING", "date": "2026-01-01", "result": "negative"},
     "documentation_on_file[0].result"),
])
def test_bad_documentation_on_file_is_a_422_naming_the_field(
        client: FlaskClient, session: Session, auth_header: Any, entry: dict[str, Any],
        field: str) -> None:
    build_world()
    response = post(client, auth_header("scheduler"),
                    request_with(documentation_on_file=[entry]))
    assert response.status_code == 422
    assert field in [e["field"] for e in response.json["errors"]]


def test_a_document_recorded_later_changes_a_stored_appointments_check(
        client: FlaskClient, session: Session, auth_header: Any) -> None:
    """A document on file is patient data: the standing check of an appointment follows it."""
    build_world(policy={"documentation_required": [TB]})
    header = auth_header("coordinator")
    body = {key: value for key, value in request_with().items() if key != "prior_therapies"}
    assert client.put("/api/v1/appointments/APT-1", json=body,
                      headers=header).status_code == 201
    first = client.get("/api/v1/appointments/APT-1", headers=header).json
    assert "DOCUMENTATION_MISSING" in [f["code"] for f in first["check"]["findings"]]
    from policy_service.models import Patient, PatientDocument
    patient = session.query(Patient).filter_by(external_id="P001").one()
    patient.documents.append(PatientDocument(code="TB_SCREENING", on_date=dt.date(2026, 1, 2)))
    session.flush()
    again = client.get("/api/v1/appointments/APT-1", headers=header).json
    assert "DOCUMENTATION_MISSING" not in [f["code"] for f in again["check"]["findings"]]


def test_diff_compare_and_drafts_word_the_checklist(
        client: FlaskClient, session: Session, auth_header: Any) -> None:
    build_world(policy={"documentation_required": [TB]})
    header = auth_header("coordinator")
    draft = client.post("/api/v1/policies/MEDICARE-B/infliximab/versions", headers=header,
                        json={"effective_from": "2027-01-01",
                              "documentation_required": [TB, HBV]})
    assert draft.status_code == 201, draft.get_json()
    assert draft.get_json()["documentation_required"] == [TB, HBV]
    changes = client.get("/api/v1/policies/MEDICARE-B/infliximab/diff?from=1&to=2",
                         headers=header).get_json()["changes"]
    assert [(c["field"], c["summary"]) for c in changes] == [
        ("effective_from", "effective from: 2026-01-01 -> 2027-01-01"),
        ("documentation_required",
         "hepatitis B screening (HBV_SCREENING) added to documentation")]
    row = client.get("/api/v1/policies/compare?hcpcs=J1745&on=2026-06-01",
                     headers=header).get_json()["payers"][0]
    assert row["documentation"] == ["TB screening within 12 months (TB_SCREENING, at most 365 "
                                    "days old)"]
    bad = client.post("/api/v1/policies/MEDICARE-B/infliximab/versions", headers=header,
                      json={"effective_from": "2027-02-01",
                            "documentation_required": [TB, {**TB, "label": "again"}]})
    assert bad.status_code == 422
    assert [e["field"] for e in bad.get_json()["errors"]] == ["documentation_required"]
