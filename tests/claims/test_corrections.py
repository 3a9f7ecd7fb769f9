"""Issue 8 part A: claims that went out wrong in the first release, each with its fix."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.claims.world import (
    METHOTREXATE_FAILED,
    administration,
    build_world,
    claim_with,
    codes,
    finding,
)
from tests.factories import make_authorization, make_drug, make_patient, make_payer, make_policy

JOINT_ONLY: dict[str, Any] = {"administration": None, "authorization_number": None}


# --- A1: administration without a drug -----------------------------------------------------------

def test_hydration_only_visit_is_checked_without_a_drug(session, check) -> None:
    """96360 + 96361 for 1 h 45 min of hydration, no drug line: clean, no 422."""
    build_world()
    body = check(claim_with(
        authorization_number=None,
        administration={"infusions": [{"kind": "hydration", "start": "09:00",
                                       "stop": "10:45"}]},
        lines=[{"code": "96360", "units": 1}, {"code": "96361", "units": 1}]))
    assert body["findings"] == [], body["findings"]
    assert body["expected_lines"] == [{"code": "96360", "units": 1, "modifiers": []},
                                      {"code": "96361", "units": 1, "modifiers": []}]
    assert body["authorization"] is None


def test_white_bagged_drug_keeps_the_administration_rules(session, check) -> None:
    """A patient-supplied drug has no drug line: no unit or JW/JZ rule applies, the hours do."""
    build_world()
    body = check(claim_with(
        authorization_number=None,
        administration={"infusions": [{"kind": "therapeutic", "start": "10:00",
                                       "stop": "11:45"}]},
        lines=[{"code": "96365", "units": 1}]))
    assert codes(body) == ["ADMIN_CODE_MISMATCH"]
    assert "96366 x1" in finding(body, "ADMIN_CODE_MISMATCH")["message"]
    assert not {"UNITS_MISMATCH", "JW_MISSING", "JZ_MISSING"} & set(codes(body))


def test_administration_without_a_drug_may_still_lack_times(session, check) -> None:
    """Without a drug and without times, a timed code still needs its times."""
    build_world()
    body = check(claim_with(authorization_number=None, administration={"infusions": []},
                            lines=[{"code": "96365", "units": 1}]))
    assert codes(body) == ["ADMIN_TIME_MISSING"]


# --- A2: 76942 with the unguided joint codes -----------------------------------------------------

@pytest.mark.parametrize(("unguided", "guided"), [("20600", "20604"), ("20605", "20606"),
                                                  ("20610", "20611")])
def test_ultrasound_with_an_unguided_joint_code_is_bundled(session, check, unguided,
                                                           guided) -> None:
    """Since CPT 2015 20600/20605/20610 exclude guidance: bill the guided code instead."""
    build_world()
    body = check(claim_with(**JOINT_ONLY, lines=[
        {"code": unguided, "units": 1, "modifiers": ["RT"]}, {"code": "76942", "units": 1}]))
    flagged = finding(body, "IMAGING_BUNDLED")
    assert flagged["line"] == 1
    assert f"{unguided} means without ultrasound guidance" in flagged["message"]
    assert f"bill {guided}" in flagged["message"]
    assert body["expected_lines"] == [{"code": guided, "units": 1, "modifiers": ["RT"]}]


def test_ultrasound_with_a_guided_joint_code_still_bundled(session, check) -> None:
    build_world()
    body = check(claim_with(**JOINT_ONLY, lines=[
        {"code": "20611", "units": 1, "modifiers": ["LT"]}, {"code": "76942", "units": 1}]))
    assert codes(body) == ["IMAGING_BUNDLED"]
    assert body["expected_lines"] == [{"code": "20611", "units": 1, "modifiers": ["LT"]}]


def test_ultrasound_with_another_procedure_is_not_bundled(session, check) -> None:
    build_world()
    body = check(claim_with(**JOINT_ONLY, lines=[{"code": "20552", "units": 1},
                                                 {"code": "76942", "units": 1}]))
    assert "IMAGING_BUNDLED" not in codes(body)


# --- A3: billable diagnosis codes ----------------------------------------------------------------

def test_a_diagnosis_that_is_not_a_leaf_blocks_the_claim(session, check) -> None:
    """M1A.071 has 7th-character codes below it; M1A.0710 is billable."""
    build_world()
    body = check(claim_with(diagnosis_codes=["M05.79", "M1A.071"]))
    flagged = finding(body, "DIAGNOSIS_NOT_BILLABLE")
    assert (flagged["severity"], flagged["category"], flagged["line"]) == (
        "block", "claim data", None)
    assert flagged["message"] == ("Diagnosis codes must be billable ICD-10-CM codes: M1A.071 "
                                  "(bill M1A.0710 or M1A.0711).")
    assert body["status"] == "needs_correction"
    assert "DIAGNOSIS_NOT_BILLABLE" not in codes(check(claim_with(
        diagnosis_codes=["M05.79", "M1A.0710"])))


# --- A4: expected lines are what should be billed ------------------------------------------------

def test_bilateral_joint_injection_is_one_line_of_one_unit(session, check) -> None:
    build_world()
    body = check(claim_with(**JOINT_ONLY, lines=[
        {"code": "20610", "units": 2, "modifiers": ["50"]}]))
    assert codes(body) == ["LATERALITY_MISSING"]
    assert body["expected_lines"] == [{"code": "20610", "units": 1, "modifiers": ["50"]}]


def test_both_sides_on_one_line_become_modifier_50(session, check) -> None:
    build_world()
    body = check(claim_with(**JOINT_ONLY, lines=[
        {"code": "20611", "units": 2, "modifiers": ["RT", "LT"]}]))
    assert codes(body) == ["LATERALITY_MISSING"]
    assert body["expected_lines"] == [{"code": "20611", "units": 1, "modifiers": ["50"]}]


def test_a_joint_injection_without_a_side_is_not_an_expected_line(session, check) -> None:
    """The claim does not say which knee: no 20610 line could be right, so none is expected."""
    build_world()
    body = check(claim_with(**JOINT_ONLY, lines=[
        {"code": "20610", "units": 1}, {"code": "20605", "units": 1, "modifiers": ["LT"]}]))
    assert codes(body) == ["LATERALITY_MISSING"]
    assert finding(body, "LATERALITY_MISSING")["line"] == 0
    assert body["expected_lines"] == [{"code": "20605", "units": 1, "modifiers": ["LT"]}]


@pytest.mark.parametrize("lines", [
    [{"code": "20610", "units": 1}, {"code": "20605", "units": 1, "modifiers": ["LT"]}],
    [{"code": "20610", "units": 2, "modifiers": ["50"]}],
    [{"code": "20611", "units": 2, "modifiers": ["RT", "LT"]}, {"code": "76942", "units": 1}],
    [{"code": "20610", "units": 1, "modifiers": ["RT"]}, {"code": "76942", "units": 1},
     {"code": "99213", "units": 1}],
    [{"code": "20600", "units": 1}, {"code": "20600", "units": 1, "modifiers": ["F2"]}],
], ids=["one-without-side", "bilateral-two-units", "both-sides-with-guidance",
        "unguided-with-guidance-and-e-m", "finger-without-digit"])
def test_expected_lines_billed_as_given_draw_no_line_finding(session, check, lines) -> None:
    """Whatever the findings of a claim, its expected lines submitted as they are draw no
    finding on any line: the service never proposes a line its own rules call wrong."""
    build_world()
    first = check(claim_with(**JOINT_ONLY, lines=lines))
    assert first["status"] == "needs_correction"
    again = check(claim_with(**JOINT_ONLY, lines=first["expected_lines"]))
    assert [f["code"] for f in again["findings"] if f["line"] is not None] == []


def _tocilizumab_claim(lines: list[dict[str, Any]]) -> dict[str, Any]:
    make_drug("J3262", name="Actemra", generic="tocilizumab", billing_unit_amount=1,
              packages=[(80, True), (200, True), (400, True)])
    return claim_with(authorization_number=None, administration=administration(
        hcpcs="J3262", administered_mg=480, packages=[{"amount": 400, "count": 2}]),
        lines=[*lines, {"code": "96413", "units": 1}, {"code": "96415", "units": 1}])


def test_avoidable_waste_gets_no_jw_line_and_jz_instead(session, check) -> None:
    """480 mg from 2 x 400 mg: 400 + 80 would waste nothing, so bill J3262-JZ x480 only."""
    build_world()
    body = check(_tocilizumab_claim([{"code": "J3262", "units": 480},
                                     {"code": "J3262", "units": 320, "modifiers": ["JW"]}]))
    assert codes(body) == ["UNITS_MISMATCH"]
    assert body["expected_lines"][0] == {"code": "J3262", "units": 480, "modifiers": ["JZ"]}
    assert not any("JW" in line["modifiers"] for line in body["expected_lines"])


def test_avoidable_waste_without_jw_jz_gets_one_plain_line(session, check) -> None:
    """A payer that does not use JW/JZ: the expected drug line carries neither."""
    build_world(payer={"requires_jw_jz": False})
    body = check(_tocilizumab_claim([{"code": "J3262", "units": 480}]))
    assert body["expected_lines"][0] == {"code": "J3262", "units": 480, "modifiers": []}


def test_part_of_the_waste_avoidable_keeps_the_rest_on_jw(session, check) -> None:
    """270 mg from 2 x 200 mg wastes 130; 80 + 200 would waste 10: bill JW x10 only."""
    build_world()
    make_drug("J3262", name="Actemra", generic="tocilizumab", billing_unit_amount=1,
              packages=[(80, True), (200, True), (400, True)])
    body = check(claim_with(authorization_number=None, administration=administration(
        hcpcs="J3262", administered_mg=270, packages=[{"amount": 200, "count": 2}]),
        lines=[{"code": "J3262", "units": 270},
               {"code": "J3262", "units": 130, "modifiers": ["JW"]},
               {"code": "96413", "units": 1}, {"code": "96415", "units": 1}]))
    assert codes(body) == ["UNITS_MISMATCH"]
    assert body["expected_lines"][:2] == [
        {"code": "J3262", "units": 270, "modifiers": []},
        {"code": "J3262", "units": 10, "modifiers": ["JW"]}]


# --- A8: the claim check returns the authorization it chose --------------------------------------

def test_claim_returns_the_authorization_the_check_chose(session, check) -> None:
    """Without a number the check picks the matching authorization and says which."""
    build_world()
    body = check(claim_with(authorization_number=None))
    assert body["authorization"]["number"] == "A-1001"
    assert body["status"] == "clean"


def test_claim_prefers_the_usable_authorization_over_a_used_up_one(session, check) -> None:
    """Two authorizations hold the date; the one with units left is the one shown."""
    payer = make_payer()
    make_drug("J1745")
    make_policy(payer=payer)
    person = make_patient("P001", therapies=[METHOTREXATE_FAILED])
    make_authorization("A-0001", patient=person, payer=payer, used_units=160, used_visits=4)
    make_authorization("A-0002", patient=person, payer=payer)
    body = check(claim_with(authorization_number=None))
    assert body["authorization"]["number"] == "A-0002"
    assert not [code for code in codes(body) if code.startswith("AUTH")]


def _methylprednisolone_world() -> None:
    build_world()
    make_drug("J1030", name="Depo-Medrol", generic="methylprednisolone acetate",
              billing_unit_amount=40, packages=[(40, True)], valid_to=dt.date(2024, 3, 31))
    make_drug("J1010", name="Depo-Medrol", generic="methylprednisolone acetate",
              billing_unit_amount=1, packages=[(40, True), (80, True)],
              valid_from=dt.date(2024, 4, 1))


def test_a_deleted_code_is_expected_under_its_replacement(session, check) -> None:
    """J1030 (40 mg) is not valid after 2024-03-31: the same 40 mg is J1010 x40."""
    _methylprednisolone_world()
    body = check(claim_with(**JOINT_ONLY, date_of_service="2024-05-01",
                            submitted_on="2024-05-02",
                            lines=[{"code": "J1030", "units": 1}]))
    assert "CODE_NOT_VALID_ON_DOS" in codes(body)
    assert body["expected_lines"] == [{"code": "J1010", "units": 40, "modifiers": []}]


def test_a_deleted_code_with_its_dose_is_billed_again_in_the_new_units(session, check) -> None:
    """60 mg given under J1030: J1010 x60 and the 20 mg left in the 80 mg vial as JW."""
    _methylprednisolone_world()
    body = check(claim_with(
        authorization_number=None, date_of_service="2024-05-01", submitted_on="2024-05-02",
        administration={"hcpcs": "J1030", "administered_mg": 60,
                        "packages": [{"amount": 40, "count": 2}]},
        lines=[{"code": "J1030", "units": 2}]))
    assert "CODE_NOT_VALID_ON_DOS" in codes(body)
    assert body["expected_lines"] == [{"code": "J1010", "units": 60, "modifiers": []},
                                      {"code": "J1010", "units": 20, "modifiers": ["JW"]}]


def test_a_repeated_initial_code_is_expected_once(session, check) -> None:
    """Two 96365 lines without a second vascular access: one initial service is billed."""
    build_world()
    body = check(claim_with(**JOINT_ONLY, lines=[{"code": "96365", "units": 1},
                                                 {"code": "96365", "units": 1}]))
    assert "MULTIPLE_INITIAL_ADMIN" in codes(body)
    assert body["expected_lines"] == [{"code": "96365", "units": 1, "modifiers": []}]


def test_a_missing_ndc_is_named_from_the_package_opened(session, check) -> None:
    """The payer requires NDCs: the message and the expected lines give the vial's NDC."""
    build_world(payer={"requires_ndc": True})
    make_drug("J1745").packages[0].ndc = "57894-0030-01"
    session.flush()
    lines = [{"code": "J1745", "units": 35}, {"code": "J1745", "units": 5, "modifiers": ["JW"]},
             {"code": "96413", "units": 1}, {"code": "96415", "units": 1}]
    body = check(claim_with(lines=lines))
    missing = [f for f in body["findings"] if f["code"] == "NDC_MISSING"]
    assert [f["line"] for f in missing] == [0, 1]
    assert "add it to J1745 (the package opened is NDC 57894-0030-01)" in missing[0]["message"]
    assert body["expected_lines"][:2] == [
        {"code": "J1745", "units": 35, "modifiers": [], "ndc": "57894-0030-01"},
        {"code": "J1745", "units": 5, "modifiers": ["JW"], "ndc": "57894-0030-01"}]
