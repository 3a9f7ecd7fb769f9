"""The policy write path: numbering, the draft lock, HCPCS codes, activation (services.policies)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from policy_service.domain.codes import (
    NPI_CHECK_DIGIT_MESSAGE,
    NPI_MESSAGE,
    hcpcs_error,
    npi_error,
)
from policy_service.errors import Conflict, Invalid
from policy_service.models import ChangeRecord
from policy_service.services import policies
from policy_service.services.bundle import import_bundle
from tests.factories import make_drug, make_payer, make_policy

LOCKED = "only drafts can be edited. Make a new version instead."


@pytest.mark.parametrize("status", ["active", "retired"])
def test_import_refuses_to_rewrite_a_locked_version(session: Session, status: str) -> None:
    make_drug()
    version = make_policy(status=status, covered_diagnoses=["M05"])
    with pytest.raises(Invalid) as exc:
        import_bundle({"policies": [{"id": version.policy.code, "effective_from": "2026-01-01",
                                     "covered_diagnoses": ["M05", "L40.5"]}]})
    assert exc.value.errors == [{
        "field": "policies[0].covered_diagnoses",
        "message": f"Version 1 of MEDICARE-B/infliximab is {status}: {LOCKED}"}]
    session.refresh(version)
    assert version.covered_diagnoses == ["M05"]


def test_import_of_an_unchanged_locked_version_is_a_no_op(session: Session) -> None:
    make_drug()
    version = make_policy(covered_diagnoses=["M05"])
    summary = import_bundle({"policies": [{"id": version.policy.code,
                                           "effective_from": "2026-01-01",
                                           "covered_diagnoses": ["M05"]}]})
    assert summary["policies"] == {"created": 0, "updated": 0, "unchanged": 1}


def test_import_may_edit_a_draft(session: Session) -> None:
    make_drug()
    version = make_policy(status="draft")
    import_bundle({"policies": [{"id": version.policy.code, "effective_from": "2026-01-01",
                                 "min_days_between_doses": 42}]})
    session.refresh(version)
    assert version.min_days_between_doses == 42


def test_a_version_names_at_least_one_hcpcs_code(session: Session) -> None:
    make_drug()
    version = make_policy(status="draft")
    with pytest.raises(Invalid) as exc:
        import_bundle({"policies": [{"id": "MEDICARE-B/infliximab", "hcpcs": [],
                                     "effective_from": "2026-01-01"},
                                    {"id": "MEDICARE-B/infliximab",
                                     "effective_from": "2027-01-01"}]})
    assert [e["field"] for e in exc.value.errors] == ["policies[0].hcpcs", "policies[1].hcpcs"]
    assert {e["message"] for e in exc.value.errors} == {policies.HCPCS_REQUIRED}
    with pytest.raises(Invalid):
        policies.update_version(version, {"hcpcs": []})


@pytest.mark.parametrize(("values", "errors"), [
    ({"code": "MEDICARE-B/rituximab"}, [{
        "field": "code", "message": "Another policy already has the code MEDICARE-B/rituximab: "
                                    "type a different one."}]),
    ({"code": ""}, [{"field": "code", "message": policies.CODE_REQUIRED}]),
    ({"payer": None, "title": "Renamed"}, [{"field": "payer",
                                            "message": policies.PAYER_REQUIRED}]),
])
def test_a_policy_edit_is_checked_before_anything_changes(
        session: Session, values: dict[str, Any], errors: list[dict[str, str]]) -> None:
    version = make_policy()
    make_policy(code="MEDICARE-B/rituximab")
    with pytest.raises(Invalid) as exc:
        policies.update_policy(version.policy, values)
    assert exc.value.errors == errors
    assert (version.policy.code, version.policy.title) == ("MEDICARE-B/infliximab", None)


def test_an_import_moving_a_policy_to_another_payer_records_both(session: Session) -> None:
    make_drug()
    version = make_policy()
    commercial = make_payer("ACME", name="Acme Health", kind="commercial")
    import_bundle({"policies": [{"id": version.policy.code, "payer": "ACME",
                                 "effective_from": "2026-01-01"}]})
    assert {row.payer_id for row in version.codes} == {commercial.id}
    change = session.scalar(select(ChangeRecord).where(
        ChangeRecord.entity_key == version.policy.code, ChangeRecord.action == "update"))
    assert change is not None
    assert (change.before["payer"], change.after["payer"]) == ("MEDICARE-B", "ACME")


def test_update_of_a_locked_version_is_a_conflict(session: Session) -> None:
    make_drug()
    version = make_policy()
    with pytest.raises(Conflict) as exc:
        policies.update_version(version, {"min_age": 12})
    assert exc.value.code == "POLICY_VERSION_LOCKED"
    assert version.min_age == 18


def test_new_draft_copies_the_newest_version(session: Session) -> None:
    make_drug()
    first = make_policy(steps=[{"any_of": ["methotrexate"], "count": 1, "min_days": 90}])
    draft = policies.new_draft(first.policy, {"effective_from": dt.date(2027, 1, 1),
                                              "min_days_between_doses": 56})
    assert (draft.number, draft.status, draft.effective_to) == (2, "draft", None)
    assert draft.covered_diagnoses == first.covered_diagnoses
    assert draft.max_dose_mg_per_kg == first.max_dose_mg_per_kg
    assert [s.any_of for s in draft.steps] == [["methotrexate"]]
    assert draft.min_days_between_doses == 56
    with pytest.raises(Invalid) as exc:
        policies.new_draft(first.policy, {"effective_from": dt.date(2027, 1, 1)})
    assert exc.value.errors[0]["field"] == "effective_from"


def test_activation_ends_the_previous_version_the_day_before(session: Session) -> None:
    make_drug()
    first = make_policy()
    draft = policies.new_draft(first.policy, {"effective_from": dt.date(2027, 1, 1)})
    result = policies.activate(draft)
    assert draft.status == "active"
    assert first.effective_to == dt.date(2026, 12, 31)
    assert result.ended == [first]
    # Activating again is refused: it is no longer a draft.
    with pytest.raises(Conflict):
        policies.activate(draft)
    changes = session.scalars(select(ChangeRecord).where(
        ChangeRecord.entity_key == "MEDICARE-B/infliximab@2026-01-01")).all()
    assert changes[-1].after["effective_to"] == "2026-12-31"


def test_activation_retires_a_version_it_fully_replaces(session: Session) -> None:
    make_drug()
    first = make_policy()
    later = make_policy(effective_from=dt.date(2027, 6, 1))
    draft = policies.new_draft(first.policy, {"effective_from": dt.date(2027, 1, 1)})
    result = policies.activate(draft)
    assert (later.status, result.retired) == ("retired", [later])
    assert first.effective_to == dt.date(2026, 12, 31)


@pytest.mark.parametrize(("npi", "message"), [
    ("1234567893", None),
    ("1234567890", NPI_CHECK_DIGIT_MESSAGE),
    ("123456789", NPI_MESSAGE),
    ("12345678AB", NPI_MESSAGE),
    (1234567893, NPI_MESSAGE),
    ("1234567893\n", NPI_MESSAGE),  # a regex's $ would let the newline through
    ("\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669\u0663", NPI_MESSAGE),  # Arabic-Indic
    ("\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff19\uff13", NPI_MESSAGE),  # fullwidth
])
def test_npi_check_digit(npi: object, message: str | None) -> None:
    assert npi_error(npi) == message


@pytest.mark.parametrize(("code", "valid"), [
    ("J1745", True), ("96413", True), ("0001F", True), ("Q5103", True),
    ("J174", False), ("j1745", False), ("J17455", False), (1745, False),
    ("J1745\n", False),  # a regex's $ would let the newline through
    ("J\u0661\u0667\u0664\u0665", False),  # Arabic-Indic digits
    ("\uff19\uff16\uff14\uff113", False),  # fullwidth digits
])
def test_hcpcs_code_shape(code: object, valid: bool) -> None:
    assert (hcpcs_error(code) is None) is valid
