"""The policy version page: rules in words, cases, impact, new version and activation."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from policy_service.models import PolicyVersion
from policy_service.services.policies import add_case, new_draft

Login = Any


def _case(diagnosis: str) -> dict[str, Any]:
    return {"patient": {"id": "CASE-1", "birth_date": "1960-01-15", "weight_kg": 70},
            "payer": "ACME", "date_of_service": "2030-01-10", "site_of_care": "office",
            "diagnosis_codes": [diagnosis], "hcpcs": "J1745", "dose": {"mg": 100},
            "prior_therapies": [{"drug": "methotrexate", "start": "2028-01-01",
                                 "end": "2029-01-01", "outcome": "inadequate_response"}]}


def test_a_coordinator_reads_the_rules_tests_and_activates_a_draft(
        client: FlaskClient, login: Login, records: Any, session: Session) -> None:
    add_case(records.version, "asthma is not covered", _case("J45.909"),
             {"decision": "not_eligible", "codes": ["DIAGNOSIS_NOT_COVERED"], "absent": []})
    login("coordinator")
    created = client.post(f"/admin/policyversion/new-draft/?id={records.version.id}")
    assert created.status_code == 302 and "/admin/policyversion/edit/" in created.location
    draft = session.get(PolicyVersion, int(created.location.rsplit("id=", 1)[1]))
    assert (draft.status, draft.number) == ("draft", 2)
    page = client.get(f"/admin/policyversion/lifecycle/?id={draft.id}").get_data(as_text=True)
    assert "The rules in words" in page
    assert "Covered diagnoses:</strong> M05, M06" in page
    assert "Test cases: 1 passed, 0 failed" in page
    assert "0 of 0 scheduled appointment(s) would change." in page
    refused = client.post(f"/admin/policyversion/activate/?id={draft.id}",
                          follow_redirects=True)
    assert "Tick the confirmation to activate." in refused.get_data(as_text=True)
    done = client.post(f"/admin/policyversion/activate/?id={draft.id}", data={"confirm": "yes"},
                       follow_redirects=True)
    assert f"Version 2 is active from {draft.effective_from}" in done.get_data(as_text=True)
    session.expire_all()
    assert session.get(PolicyVersion, draft.id).status == "active"


def test_a_failing_case_is_shown_and_blocks_activation(
        client: FlaskClient, login: Login, records: Any, session: Session) -> None:
    draft = new_draft(records.policy, {"covered_diagnoses": ["M06"]})
    add_case(records.version, "RA qualifies", _case("M05.79"),
             {"decision": "needs_authorization", "codes": [], "absent": ["DIAGNOSIS_NOT_COVERED"]})
    login("coordinator")
    page = client.get(f"/admin/policyversion/lifecycle/?id={draft.id}").get_data(as_text=True)
    assert "Test cases: 0 passed, 1 failed" in page
    assert "Failing cases block activation." in page
    assert "M05 removed from covered diagnoses" in page
    forced = client.post(f"/admin/policyversion/activate/?id={draft.id}",
                         data={"confirm": "yes"}, follow_redirects=True)
    assert "case(s) fail: RA qualifies" in forced.get_data(as_text=True)
    session.expire_all()
    assert session.get(PolicyVersion, draft.id).status == "draft"


def test_schedulers_read_the_page_but_cannot_activate(
        client: FlaskClient, login: Login, records: Any, session: Session) -> None:
    draft = new_draft(records.policy, {})
    login("scheduler")
    page = client.get(f"/admin/policyversion/lifecycle/?id={draft.id}")
    assert page.status_code == 200
    assert "activate-form" not in page.get_data(as_text=True)
    assert client.post(f"/admin/policyversion/activate/?id={draft.id}",
                       data={"confirm": "yes"}).status_code == 403
    assert client.post(f"/admin/policyversion/new-draft/?id={draft.id}").status_code == 403
