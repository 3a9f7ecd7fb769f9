"""Activating a version through a bundle import passes the same case gate as the API."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from flask.testing import FlaskCliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from policy_service.models import PolicyVersion
from tests.eligibility.world import build_world
from tests.policies.test_lifecycle_api import PASSING


def _bundle(tmp_path: Path, covered: list[str], status: str = "active") -> Path:
    entry: dict[str, Any] = {
        "id": "MEDICARE-B/infliximab", "payer": "MEDICARE-B", "hcpcs": ["J1745"],
        "effective_from": "2027-01-01", "status": status, "prior_auth_required": True,
        "covered_diagnoses": covered, "cases": [copy.deepcopy(PASSING)]}
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps({"policies": [entry]}))
    return path


def _versions(session: Session) -> list[tuple[int, str, str | None]]:
    return [(v.number, v.status, v.effective_to and v.effective_to.isoformat())
            for v in session.scalars(select(PolicyVersion).order_by(PolicyVersion.number))]


def test_import_refuses_an_activation_whose_cases_fail_naming_the_policy(
        runner: FlaskCliRunner, session: Session, tmp_path: Path) -> None:
    build_world()
    session.commit()  # a savepoint of the test's transaction: the failed import's rollback keeps it
    before = _versions(session)
    result = runner.invoke(args=["import", str(_bundle(tmp_path, covered=["M06"]))])
    assert result.exit_code == 1
    assert "policies[0].status: POLICY_CASES_FAILING: MEDICARE-B/infliximab v2 cannot be " \
           "activated: 1 case(s) fail: RA after methotrexate" in result.output
    assert _versions(session) == before


def test_import_activates_when_the_cases_pass_and_ends_the_previous_version(
        runner: FlaskCliRunner, session: Session, tmp_path: Path) -> None:
    build_world()
    result = runner.invoke(args=["import", str(_bundle(tmp_path, covered=["M05", "M06"]))])
    assert result.exit_code == 0, result.output
    assert _versions(session) == [(1, "active", "2026-12-31"), (2, "active", None)]


def test_import_of_a_draft_runs_no_gate_and_a_later_activating_import_does(
        runner: FlaskCliRunner, session: Session, tmp_path: Path) -> None:
    build_world()
    draft = runner.invoke(args=["import", str(_bundle(tmp_path, ["M06"], status="draft"))])
    assert draft.exit_code == 0, draft.output
    refused = runner.invoke(args=["import", str(_bundle(tmp_path, ["M06"]))])
    assert refused.exit_code == 1
    assert "POLICY_CASES_FAILING" in refused.output
    assert _versions(session)[-1][:2] == (2, "draft")


def test_a_stored_predecessors_cases_gate_the_import_as_they_gate_the_api(
        runner: FlaskCliRunner, client: Any, session: Session, tmp_path: Path,
        auth_header: Any) -> None:
    build_world()
    client.post("/api/v1/policies/MEDICARE-B/infliximab/versions/1/cases", json=PASSING,
                headers=auth_header("coordinator"))
    path = _bundle(tmp_path, covered=["M06"])
    bundle = json.loads(path.read_text())
    del bundle["policies"][0]["cases"]
    path.write_text(json.dumps(bundle))
    refused = runner.invoke(args=["import", str(path)])
    assert refused.exit_code == 1
    assert "MEDICARE-B/infliximab v2 cannot be activated: 1 case(s) fail: RA after " \
           "methotrexate" in refused.output


def test_a_whole_history_in_one_bundle_gates_each_version_on_its_own_cases(
        runner: FlaskCliRunner, session: Session, tmp_path: Path) -> None:
    build_world()
    new_case = copy.deepcopy(PASSING)
    new_case["request"]["payer"] = "ACME"
    old_case = copy.deepcopy(new_case)
    old_case["expect"] = {"decision": "not_eligible", "codes": ["DIAGNOSIS_NOT_COVERED"],
                          "absent": []}
    history = [
        {"id": "ACME/infliximab", "payer": "ACME", "hcpcs": ["J1745"],
         "effective_from": "2020-01-01", "status": "active", "covered_diagnoses": ["M06"],
         "cases": [old_case]},
        {"id": "ACME/infliximab", "hcpcs": ["J1745"], "effective_from": "2021-01-01",
         "status": "active", "covered_diagnoses": ["M05"], "cases": [new_case]},
    ]
    path = tmp_path / "history.json"
    payers = [{"id": "ACME", "name": "Acme Health", "kind": "commercial"}]
    path.write_text(json.dumps({"payers": payers, "policies": history}))
    result = runner.invoke(args=["import", str(path)])
    assert result.exit_code == 0, result.output
