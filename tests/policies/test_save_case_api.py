""""Save as test case" through the API: a case without ``expect`` records what the check gives."""

from __future__ import annotations

import copy
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from tests.eligibility.world import build_world
from tests.policies.test_lifecycle_api import BASE, PASSING


def test_a_case_without_expect_saves_the_checked_decision_and_codes(
        client: FlaskClient, session: Session, auth_header: Any) -> None:
    build_world()
    header = auth_header("coordinator")
    request = copy.deepcopy(PASSING["request"])
    request["diagnosis_codes"] = ["L40.0"]
    checked = client.post("/api/v1/eligibility", json=request, headers=header).get_json()
    assert checked["policy"] == {"id": "MEDICARE-B/infliximab", "version": 1,
                                 "source": checked["policy"]["source"],
                                 "effective_from": checked["policy"]["effective_from"]}
    saved = client.post(f"{BASE}/versions/{checked['policy']['version']}/cases",
                        json={"name": "psoriasis", "request": request}, headers=header)
    assert saved.status_code == 201, saved.get_json()
    assert saved.get_json()["expect"] == {
        "decision": checked["decision"],
        "codes": sorted({f["code"] for f in checked["findings"]}), "absent": []}
    assert saved.get_json()["expect"]["decision"] == "not_eligible"
    tested = client.post(f"{BASE}/versions/1/test", headers=header).get_json()
    assert tested == {"passed": 1, "failed": []}


def test_saving_an_unreadable_request_is_a_422_naming_the_request_field(
        client: FlaskClient, session: Session, auth_header: Any) -> None:
    build_world()
    request = {**copy.deepcopy(PASSING["request"]), "payer": "NOBODY"}
    response = client.post(f"{BASE}/versions/1/cases", json={"name": "x", "request": request},
                           headers=auth_header("coordinator"))
    assert response.status_code == 422
    assert [e["field"] for e in response.get_json()["errors"]] == ["request.payer"]
    forbidden = client.post(f"{BASE}/versions/1/cases",
                            json={"name": "x", "request": PASSING["request"]},
                            headers=auth_header("scheduler"))
    assert forbidden.status_code == 403
