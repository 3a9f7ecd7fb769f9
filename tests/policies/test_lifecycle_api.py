"""Policy versions through the API: drafts, the lock, cases, test, impact, activation, diff."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from policy_service.models import ChangeRecord, PolicyVersion
from tests.eligibility.world import BASE_REQUEST, build_world
from tests.factories import make_payer, make_policy

Header = Callable[[str], dict[str, str]]
BASE = "/api/v1/policies/MEDICARE-B/infliximab"
PASSING = {"name": "RA after methotrexate", "request": {
    **copy.deepcopy(BASE_REQUEST), "date_of_service": "2027-02-01",
    "patient": {"id": "CASE-1", "birth_date": "1961-03-02", "weight_kg": 80},
    "prior_therapies": [{"drug": "methotrexate", "start": "2025-01-01", "end": "2025-06-01",
                         "outcome": "inadequate_response"}]},
    "expect": {"decision": "needs_authorization", "codes": ["AUTH_REQUIRED"],
               "absent": ["DIAGNOSIS_NOT_COVERED"]}}


def _draft(client: FlaskClient, header: Header, **fields: Any) -> dict[str, Any]:
    response = client.post(f"{BASE}/versions", json={"effective_from": "2027-01-01", **fields},
                           headers=header("coordinator"))
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_new_version_is_a_draft_copied_from_the_newest(client: FlaskClient, session: Session,
                                                       auth_header: Header) -> None:
    build_world()
    draft = _draft(client, auth_header, min_days_between_doses=56)
    assert (draft["version"], draft["status"], draft["effective_from"]) == (2, "draft",
                                                                            "2027-01-01")
    assert draft["covered_diagnoses"] == ["M05", "M06", "L40.5", "M45"]
    assert draft["min_days_between_doses"] == 56
    assert [s["any_of"] for s in draft["step_therapy"]] == [
        ["methotrexate", "leflunomide", "sulfasalazine"]]


def test_only_drafts_are_edited_and_edits_name_the_state_they_change(
        client: FlaskClient, session: Session, auth_header: Header) -> None:
    build_world()
    _draft(client, auth_header)
    header = auth_header("coordinator")
    read = client.get(f"{BASE}/versions/2", headers=header)
    etag = read.headers["ETag"]
    assert client.patch(f"{BASE}/versions/2", json={"min_age": 21},
                        headers=header).status_code == 428
    stale = client.patch(f"{BASE}/versions/2", json={"min_age": 21},
                         headers={**header, "If-Match": '"999"'})
    assert stale.get_json()["code"] == "STALE_RECORD"
    edited = client.patch(f"{BASE}/versions/2", json={"min_age": 21},
                          headers={**header, "If-Match": etag})
    assert edited.status_code == 200 and edited.get_json()["min_age"] == 21
    v1 = client.get(f"{BASE}/versions/1", headers=header)
    locked = client.patch(f"{BASE}/versions/1", json={"min_age": 21},
                          headers={**header, "If-Match": v1.headers["ETag"]})
    assert locked.status_code == 409
    assert locked.get_json()["code"] == "POLICY_VERSION_LOCKED"
    assert "only drafts can be edited" in locked.get_json()["detail"]
    bad = client.patch(f"{BASE}/versions/2", json={"status": "active"},
                       headers={**header, "If-Match": edited.headers["ETag"]})
    assert bad.status_code == 422


def test_a_drafts_start_date_is_edited_and_a_taken_one_is_named(
        client: FlaskClient, session: Session, auth_header: Header) -> None:
    # PATCH accepted effective_from, answered 200 and kept the old date.
    build_world()
    _draft(client, auth_header)
    header = auth_header("coordinator")
    etag = client.get(f"{BASE}/versions/2", headers=header).headers["ETag"]
    moved = client.patch(f"{BASE}/versions/2", json={"effective_from": "2027-02-01"},
                         headers={**header, "If-Match": etag})
    assert moved.status_code == 200 and moved.get_json()["effective_from"] == "2027-02-01"
    first = client.get(f"{BASE}/versions/1", headers=header).get_json()["effective_from"]
    taken = client.patch(f"{BASE}/versions/2", json={"effective_from": first},
                         headers={**header, "If-Match": moved.headers["ETag"]})
    assert taken.status_code == 422
    assert taken.get_json()["errors"] == [{
        "field": "effective_from",
        "message": f"Another version of MEDICARE-B/infliximab starts on {first}."}]
    assert client.get(f"{BASE}/versions/2", headers=header).get_json()[
        "effective_from"] == "2027-02-01"


def test_a_case_is_validated_like_an_eligibility_request(client: FlaskClient, session: Session,
                                                         auth_header: Header) -> None:
    build_world()
    bad = copy.deepcopy(PASSING)
    bad["request"]["hcpcs"] = "infliximab"
    response = client.post(f"{BASE}/versions/1/cases", json=bad,
                           headers=auth_header("coordinator"))
    assert response.status_code == 422
    assert [e["field"] for e in response.get_json()["errors"]] == ["request.hcpcs"]
    created = client.post(f"{BASE}/versions/1/cases", json=PASSING,
                          headers=auth_header("coordinator"))
    assert created.status_code == 201
    again = client.post(f"{BASE}/versions/1/cases", json=PASSING,
                        headers=auth_header("coordinator"))
    assert [e["field"] for e in again.get_json()["errors"]] == ["name"]
    forbidden = client.post(f"{BASE}/versions/1/cases", json=PASSING,
                            headers=auth_header("scheduler"))
    assert forbidden.status_code == 403


def test_a_failing_case_blocks_activation_until_the_draft_is_fixed(
        client: FlaskClient, session: Session, auth_header: Header) -> None:
    build_world()
    header = auth_header("coordinator")
    client.post(f"{BASE}/versions/1/cases", json=PASSING, headers=header)
    draft = _draft(client, auth_header, covered_diagnoses=["M06"])
    tested = client.post(f"{BASE}/versions/2/test", headers=header).get_json()
    assert tested["passed"] == 0
    assert tested["failed"] == [{"name": "RA after methotrexate",
                                 "expected": PASSING["expect"],
                                 "got": {"decision": "not_eligible",
                                         "codes": ["AUTH_REQUIRED", "DIAGNOSIS_NOT_COVERED"]}}]
    refused = client.post(f"{BASE}/versions/2/activate", headers=header)
    assert refused.status_code == 409
    assert refused.get_json()["code"] == "POLICY_CASES_FAILING"
    assert refused.get_json()["failed"][0]["name"] == "RA after methotrexate"
    etag = client.get(f"{BASE}/versions/2", headers=header).headers["ETag"]
    client.patch(f"{BASE}/versions/2", json={"covered_diagnoses": ["M05", "M06"]},
                 headers={**header, "If-Match": etag})
    activated = client.post(f"{BASE}/versions/2/activate", headers=header)
    assert activated.status_code == 200, activated.get_json()
    body = activated.get_json()
    assert (body["status"], body["ended"], body["impact"]) == (
        "active", [1], {"appointments": 0, "changed": []})
    first = session.scalar(select(PolicyVersion).where(PolicyVersion.number == 1))
    assert first.effective_to == dt.date(2026, 12, 31)
    record = session.scalar(select(ChangeRecord).where(ChangeRecord.action == "activate"))
    assert record.actor.startswith("coordinator")
    assert record.after["version"] == draft["version"]
    assert record.after["appointments"] == 0


def test_impact_lists_the_appointments_whose_decision_changes(
        client: FlaskClient, session: Session, auth_header: Header) -> None:
    build_world()
    header = auth_header("coordinator")
    for number, diagnosis in (("AP-1", "M05.79"), ("AP-2", "M06.9")):
        appointment = {**copy.deepcopy(BASE_REQUEST), "date_of_service": "2027-03-01",
                       "diagnosis_codes": [diagnosis]}
        appointment.pop("prior_therapies")
        saved = client.put(f"/api/v1/appointments/{number}", json=appointment, headers=header)
        assert saved.status_code == 201, saved.get_json()
    _draft(client, auth_header, covered_diagnoses=["M06"])
    impact = client.post(f"{BASE}/versions/2/impact", headers=header).get_json()
    assert impact["appointments"] == 2
    assert [(c["appointment_id"], c["patient"], c["after"], c["added_codes"])
            for c in impact["changed"]] == [("AP-1", "P001", "not_eligible",
                                             ["DIAGNOSIS_NOT_COVERED"])]
    assert impact["changed"][0]["before"] != "not_eligible"


def test_diff_says_what_changed_in_words(client: FlaskClient, session: Session,
                                         auth_header: Header) -> None:
    build_world()
    _draft(client, auth_header, preferred_products=["Q5103"], min_days_between_doses=42,
           step_therapy=[{"any_of": ["methotrexate"], "count": 1, "min_days": 120}])
    response = client.get(f"{BASE}/diff?from=1&to=2", headers=auth_header("scheduler"))
    summaries = {c["field"]: c["summary"] for c in response.get_json()["changes"]}
    assert summaries["preferred_products"] == "Q5103 added to preferred products"
    assert summaries["min_days_between_doses"] == "minimum days between doses: 28 -> 42"
    assert summaries["step_therapy"] == (
        "step therapy: 1 of methotrexate, leflunomide, sulfasalazine for 90+ days -> "
        "1 of methotrexate for 120+ days")
    assert summaries["effective_from"] == "effective from: 2026-01-01 -> 2027-01-01"


def test_compare_shows_one_drug_across_payers(client: FlaskClient, session: Session,
                                              auth_header: Header) -> None:
    build_world()
    acme = make_payer("ACME", name="Acme Health", kind="commercial")
    make_policy("ACME/infliximab", payer=acme, prior_auth_required=False,
                preferred_products=["Q5103"], source="https://acme.example/infliximab")
    response = client.get("/api/v1/policies/compare?hcpcs=J1745&on=2026-06-01",
                          headers=auth_header("biller"))
    rows = {row["payer"]: row for row in response.get_json()["payers"]}
    assert set(rows) == {"ACME", "MEDICARE-B"}
    assert rows["ACME"]["prior_auth_required"] is False
    assert rows["ACME"]["preferred_products"] == ["Q5103"]
    assert rows["ACME"]["source"] == "https://acme.example/infliximab"
    assert rows["MEDICARE-B"]["dose_limit"] == "10 mg/kg"
    assert rows["MEDICARE-B"]["step_therapy"].startswith("1 of methotrexate")
    assert client.get("/api/v1/policies/compare?hcpcs=bad",
                      headers=auth_header("biller")).status_code == 422


def test_a_draft_takes_drug_supply_and_prescriber_specialties(client: FlaskClient,
                                                             session: Session,
                                                             auth_header: Header) -> None:
    build_world()
    draft = _draft(client, auth_header, drug_supply="specialty_pharmacy",
                   prescriber_specialties=["Rheumatology"])
    assert draft["drug_supply"] == "specialty_pharmacy"
    assert draft["prescriber_specialties"] == ["rheumatology"]
    headers = auth_header("coordinator")
    stored = session.scalar(select(PolicyVersion).where(PolicyVersion.number == 2))
    headers["If-Match"] = f'"{stored.version}"'
    bad = client.patch(f"{BASE}/versions/2", json={"drug_supply": "mail_order",
                                                   "prescriber_specialties": [" "]},
                       headers=headers)
    assert bad.status_code == 422
    assert {e["field"] for e in bad.get_json()["errors"]} == {"drug_supply",
                                                              "prescriber_specialties[0]"}
    session.expire_all()
    assert session.get(PolicyVersion, stored.id).drug_supply == "specialty_pharmacy"
    older = client.get(f"{BASE}/versions/1", headers=auth_header("scheduler")).get_json()
    assert older["drug_supply"] == "either" and older["prescriber_specialties"] == []
