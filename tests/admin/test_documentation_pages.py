"""Admin pages for documentation checklists and "Save as test case" on an eligibility result."""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from policy_service.models import Patient, PolicyCase, PolicyVersion
from tests.admin.test_forms import field_errors, version_form
from tests.claims.world import build_world

Login = Callable[[str], Any]
TB = {"code": "TB_SCREENING", "label": "TB screening within 12 months", "max_age_days": 365}
PLANNED = {
    "patient": "P001", "payer": "MEDICARE-B", "drug": "J1745", "dose": "350",
    "dose_unit": "mg", "date_of_service": "2026-03-10", "site_of_care": "office",
    "diagnoses": "M05.79", "authorization_number": "", "packages": "",
}


def _with_checklist(session: Session) -> PolicyVersion:
    build_world()
    version = session.scalar(select(PolicyVersion))
    version.documentation_required = [TB, {"code": "HBV_SCREENING",
                                           "label": "hepatitis B screening",
                                           "max_age_days": None}]
    patient = session.scalar(select(Patient).where(Patient.external_id == "P001"))
    from policy_service.services.patients import set_documentation
    set_documentation(patient, [{"code": "HBV_SCREENING", "date": dt.date(2025, 5, 1)}])
    session.flush()
    return version


def _hidden(page: str, name: str) -> str:
    match = re.search(rf'<input[^>]*name="{name}"[^>]*value="([^"]*)"', page) or re.search(
        rf'<input[^>]*value="([^"]*)"[^>]*name="{name}"', page)
    assert match, f"no field {name}"
    return html.unescape(match[1])


def test_the_eligibility_page_shows_the_checklist(client: FlaskClient, login: Login,
                                                  session: Session) -> None:
    _with_checklist(session)
    login("scheduler")
    page = client.post("/admin/eligibility/", data=PLANNED).get_data(as_text=True)
    checklist = page[page.index('id="documentation"'):]
    items = re.findall(r'documentation-item documentation-(\w+)">\s*<span[^>]*>([^<]+)</span>\s*'
                       r'([^<]+)<code>(\w+)</code>', checklist)
    assert [(status, word, label.strip(), code) for status, word, label, code in items] == [
        ("missing", "missing", "TB screening within 12 months", "TB_SCREENING"),
        ("on_file", "on file", "hepatitis B screening", "HBV_SCREENING")]
    assert "on file from 2025-05-01" in checklist
    assert "DOCUMENTATION_MISSING" in page
    # A scheduler may check but not write policy cases: no button, and a forged POST is refused.
    assert 'id="save-as-test-case"' not in page
    forged = client.post("/admin/eligibility/save-case", data={
        "name": "x", "request_json": "{}", "policy": "MEDICARE-B/infliximab", "version": "1"})
    assert forged.status_code == 403


def test_a_coordinator_saves_the_result_as_a_test_case(client: FlaskClient, login: Login,
                                                        session: Session) -> None:
    version = _with_checklist(session)
    login("coordinator")
    page = client.post("/admin/eligibility/", data={**PLANNED, "diagnoses": "L40.0"}
                       ).get_data(as_text=True)
    assert 'id="save-as-test-case"' in page
    data = {name: _hidden(page, name) for name in ("request_json", "policy", "version")}
    assert _hidden(page, "name") == "P001 J1745 2026-03-10: not eligible"
    response = client.post("/admin/eligibility/save-case",
                           data={**data, "name": "psoriasis is not covered"})
    assert response.status_code == 302
    assert f"/admin/policyversion/lifecycle/?id={version.id}" in response.headers["Location"]
    case = session.scalar(select(PolicyCase).where(PolicyCase.name == "psoriasis is not covered"))
    assert case.policy_version_id == version.id
    assert case.expect_decision == "not_eligible"
    assert "DIAGNOSIS_NOT_COVERED" in case.expect_codes
    assert "DOCUMENTATION_MISSING" in case.expect_codes
    assert case.request["diagnosis_codes"] == ["L40.0"]
    lifecycle = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "psoriasis is not covered" in lifecycle
    again = client.post("/admin/eligibility/save-case",
                        data={**data, "name": "psoriasis is not covered"}, follow_redirects=True)
    assert "already has a case named" in html.unescape(again.get_data(as_text=True))


def test_the_version_form_edits_the_checklist_one_item_a_line(
        client: FlaskClient, login: Login, records: Any, session: Session) -> None:
    login("coordinator")
    bad = client.post("/admin/policyversion/new/", data=version_form(
        records.policy.id, documentation_required="TB_SCREENING | TB screening | a year"))
    assert bad.status_code == 200
    assert "max_age_days must be a whole number" in html.unescape(
        field_errors(bad.get_data(as_text=True), "documentation_required"))
    good = client.post("/admin/policyversion/new/", data=version_form(
        records.policy.id, documentation_required="tb_screening | TB screening within 12 "
                                                  "months | 365\n\nchart notes\n"))
    assert good.status_code == 302, good.get_data(as_text=True)
    created = session.scalar(select(PolicyVersion).where(
        PolicyVersion.effective_from == dt.date(2027, 1, 1)))
    assert created.documentation_required == [
        TB, {"code": "CHART_NOTES", "label": "chart notes", "max_age_days": None}]
    edit = client.get(f"/admin/policyversion/edit/?id={created.id}").get_data(as_text=True)
    assert "TB_SCREENING | TB screening within 12 months | 365\nCHART_NOTES | chart notes" \
        in html.unescape(edit)


def test_the_patient_form_records_documents_on_file(client: FlaskClient, login: Login,
                                                    session: Session) -> None:
    login("coordinator")
    data = {"external_id": "P778", "birth_date": "1970-05-05", "weight_kg": "70",
            "documents-0-code": "tb screening", "documents-0-on_date": "2026-01-05"}
    refused = client.post("/admin/patient/new/", data=data)
    assert "Not a documentation code" in field_errors(refused.get_data(as_text=True),
                                                      "documents-0-code")
    accepted = client.post("/admin/patient/new/", data={
        **data, "documents-0-code": "TB_SCREENING",
        "documents-1-code": "TB_SCREENING", "documents-1-on_date": "2026-01-05",
        "documents-2-code": "HBV_SCREENING", "documents-2-on_date": "2025-02-01"})
    assert accepted.status_code == 302, accepted.get_data(as_text=True)
    patient = session.scalar(select(Patient).where(Patient.external_id == "P778"))
    assert sorted((d.code, d.on_date.isoformat()) for d in patient.documents) == [
        ("HBV_SCREENING", "2025-02-01"), ("TB_SCREENING", "2026-01-05")]
    listing = client.get("/admin/patient/").get_data(as_text=True)
    assert "HBV_SCREENING 2025-02-01; TB_SCREENING 2026-01-05" in listing
