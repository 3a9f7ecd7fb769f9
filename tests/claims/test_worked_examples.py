"""Every worked example of rules.md sections A-F gives exactly the codes and units it states."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.claims.world import (
    administration,
    build_world,
    claim_with,
    codes,
    finding,
)
from tests.factories import make_drug, make_payer


def drug_claim(hcpcs: str, mg: float, packages: list[tuple[int, int]],
               lines: list[dict[str, Any]], payer: str = "MEDICARE-B",
               **changes: Any) -> dict[str, Any]:
    """A claim for a drug with no timed administration (injection or unlisted drug)."""
    values: dict[str, Any] = {
        "payer": payer, "authorization_number": None,
        "administration": {"hcpcs": hcpcs, "administered_mg": mg,
                           "packages": [{"amount": a, "count": c} for a, c in packages]},
        "lines": lines}
    return claim_with(**(values | changes))


# --- A. JW / JZ ------------------------------------------------------------------------------

def test_a5_350_mg_from_four_vials_is_35_units_plus_5_jw(session, check) -> None:
    build_world()
    body = check(claim_with())
    assert body["status"] == "clean", body["findings"]
    assert body["findings"] == []
    assert body["expected_lines"][:2] == [
        {"code": "J1745", "units": 35, "modifiers": [], "ndc": "57894-0030-01"},
        {"code": "J1745", "units": 5, "modifiers": ["JW"], "ndc": "57894-0030-01"},
    ]


def test_a5_missing_jw_line_says_what_to_bill(session, check) -> None:
    build_world()
    claim = claim_with()
    del claim["lines"][1]
    body = check(claim)
    assert codes(body) == ["JW_MISSING"]
    jw = finding(body, "JW_MISSING")
    assert jw["line"] == 0
    assert "Bill J1745 x35 and J1745-JW x5 for 350 mg from 4 x 100 mg vials" in jw["message"]
    assert body["status"] == "needs_correction"


def test_a6_400_mg_from_four_vials_is_jz_40(session, check) -> None:
    build_world()
    clean = check(claim_with(
        administration=administration(administered_mg=400),
        lines=[{"code": "J1745", "units": 40, "modifiers": ["JZ"], "ndc": "57894-0030-01"},
               {"code": "96413", "units": 1}, {"code": "96415", "units": 1}]))
    assert clean["findings"] == []
    assert clean["expected_lines"][0] == {"code": "J1745", "units": 40, "modifiers": ["JZ"],
                                          "ndc": "57894-0030-01"}
    missing = check(claim_with(
        administration=administration(administered_mg=400),
        lines=[{"code": "J1745", "units": 40}, {"code": "96413", "units": 1},
               {"code": "96415", "units": 1}]))
    assert codes(missing) == ["JZ_MISSING"]
    assert finding(missing, "JZ_MISSING")["line"] == 0
    assert "J1745-JZ x40" in finding(missing, "JZ_MISSING")["message"]


def test_b_305_mg_is_31_units_and_9_jw(session, check) -> None:
    build_world()
    body = check(claim_with(
        administration=administration(administered_mg=305),
        lines=[{"code": "J1745", "units": 30}, {"code": "J1745", "units": 9, "modifiers": ["JW"]},
               {"code": "96413", "units": 1}, {"code": "96415", "units": 1}]))
    assert codes(body) == ["UNITS_MISMATCH"]
    mismatch = finding(body, "UNITS_MISMATCH")
    assert mismatch["line"] == 0
    assert "J1745 x31 and J1745-JW x9 for 305 mg from 4 x 100 mg vials" in mismatch["message"]


def test_a_77_mg_is_8_units_and_2_jw_rounding_waste_down(session, check) -> None:
    build_world()
    body = check(claim_with(
        administration=administration(administered_mg=77, packages=[{"amount": 100, "count": 1}]),
        lines=[{"code": "J1745", "units": 8}, {"code": "J1745", "units": 3, "modifiers": ["JW"]},
               {"code": "96413", "units": 1}, {"code": "96415", "units": 1}]))
    assert codes(body) == ["UNITS_MISMATCH"]
    assert finding(body, "UNITS_MISMATCH")["line"] == 1
    assert [line["units"] for line in body["expected_lines"][:2]] == [8, 2]


def test_a8_waste_above_the_smallest_vial_combination_is_flagged(session, check) -> None:
    build_world()
    make_drug("J3262", name="Actemra", generic="tocilizumab", billing_unit_amount=1,
              packages=[(80, True), (200, True), (400, True)])
    body = check(drug_claim("J3262", 480, [(400, 2)], [
        {"code": "J3262", "units": 480}, {"code": "J3262", "units": 320, "modifiers": ["JW"]}]))
    assert body["status"] == "needs_correction"
    assert codes(body) == ["UNITS_MISMATCH"]
    flagged = finding(body, "UNITS_MISMATCH")
    assert (flagged["line"], flagged["severity"]) == (1, "warn")
    assert flagged["message"] == ("320 of the JW units come from opening 2 x 400 mg vials where "
                                  "1 x 400 mg vial + 1 x 80 mg vial would cover 480 mg; that "
                                  "waste is not payable.")


def test_a7_waste_below_one_unit_forbids_jw_and_wants_jz(session, check) -> None:
    build_world()
    make_drug("J7999", name="Test single-dose drug", generic="testmab",
              billing_unit_amount=100, packages=[(100, True)])
    body = check(drug_claim("J7999", 70, [(100, 1)], [
        {"code": "J7999", "units": 1}, {"code": "J7999", "units": 1, "modifiers": ["JW"]}]))
    assert codes(body) == ["JW_NOT_ALLOWED", "JZ_MISSING"]
    assert finding(body, "JW_NOT_ALLOWED")["line"] == 1
    assert "less than one billing unit" in finding(body, "JW_NOT_ALLOWED")["message"]
    assert body["expected_lines"] == [{"code": "J7999", "units": 1, "modifiers": ["JZ"]}]


def test_a_7_mg_from_a_10_mg_vial_is_one_unit_without_jw(session, check) -> None:
    build_world()
    make_drug("J7998", name="Test small vial", generic="testumab", billing_unit_amount=10,
              packages=[(10, True)])
    body = check(drug_claim("J7998", 7, [(10, 1)],
                            [{"code": "J7998", "units": 1, "modifiers": ["JZ"]}]))
    assert body["findings"] == []
    assert body["expected_lines"] == [{"code": "J7998", "units": 1, "modifiers": ["JZ"]}]


def test_a4_multi_dose_container_takes_no_jw_or_jz(session, check) -> None:
    build_world()
    make_drug("J3301", name="Kenalog-40", generic="triamcinolone acetonide",
              packages=[(40, True), (200, False)])
    body = check(drug_claim("J3301", 40, [(200, 1)],
                            [{"code": "J3301", "units": 4, "modifiers": ["JZ"]}]))
    assert codes(body) == ["JW_NOT_ALLOWED"]
    assert "multi-dose" in finding(body, "JW_NOT_ALLOWED")["message"]
    assert body["expected_lines"] == [{"code": "J3301", "units": 4, "modifiers": []}]


def test_a10_commercial_payer_without_jw_jz(session, check) -> None:
    build_world()
    make_payer("COMM-A", name="Commercial A", kind="commercial", requires_jw_jz=False,
               timely_filing_days=90)
    body = check(drug_claim("J1745", 350, [(100, 4)], [
        {"code": "J1745", "units": 35}, {"code": "J1745", "units": 5, "modifiers": ["JW"]}],
        payer="COMM-A"))
    assert "JW_NOT_ALLOWED" in codes(body)
    assert finding(body, "JW_NOT_ALLOWED")["line"] == 1
    assert "Commercial A does not use" in finding(body, "JW_NOT_ALLOWED")["message"]


# --- B. Same drug from two syringes: one line, one initial injection code ----------------------

def test_b_evenity_two_syringes_is_j3111_x210_and_one_96372(session, check) -> None:
    build_world()
    make_drug("J3111", name="Evenity", generic="romosozumab", billing_unit_amount=1,
              packages=[(105, True)], admin_class="injection")
    body = check(drug_claim("J3111", 210, [(105, 2)], [
        {"code": "J3111", "units": 210, "modifiers": ["JZ"]}, {"code": "96372", "units": 1}],
        administration={"hcpcs": "J3111", "administered_mg": 210,
                        "packages": [{"amount": 105, "count": 2}],
                        "infusions": [{"kind": "injection", "drug": "J3111"},
                                      {"kind": "injection", "drug": "J3111"}]}))
    assert body["findings"] == []
    assert body["expected_lines"] == [{"code": "J3111", "units": 210, "modifiers": ["JZ"]},
                                      {"code": "96372", "units": 1, "modifiers": []}]


# --- C. Administration codes from start and stop times -----------------------------------------

THERAPEUTIC_TIMES = [
    # (minutes, expected administration lines) from C1.
    (75, [("96365", 1)]),
    (85, [("96365", 1)]),
    (90, [("96365", 1)]),
    (91, [("96365", 1), ("96366", 1)]),
    (105, [("96365", 1), ("96366", 1)]),
    (151, [("96365", 1), ("96366", 2)]),
    (15, [("96374", 1)]),
]


def _clock(minutes: int) -> str:
    return (dt.datetime(2026, 3, 10, 10, 0) + dt.timedelta(minutes=minutes)).strftime("%H:%M")


@pytest.mark.parametrize(("minutes", "expected"), THERAPEUTIC_TIMES,
                         ids=[f"{m}min" for m, _ in THERAPEUTIC_TIMES])
def test_c1_therapeutic_infusion_hours(session, check, minutes, expected) -> None:
    build_world()
    admin_lines = [{"code": code, "units": units} for code, units in expected]
    body = check(claim_with(
        administration=administration(infusions=[
            {"kind": "therapeutic", "start": "10:00", "stop": _clock(minutes)}]),
        lines=[*claim_with()["lines"][:2], *admin_lines]))
    assert body["findings"] == [], body["findings"]
    assert [(line["code"], line["units"]) for line in body["expected_lines"][2:]] == expected


def test_c1_91_minutes_billed_as_96365_alone_misses_96366(session, check) -> None:
    build_world()
    body = check(claim_with(
        administration=administration(infusions=[
            {"kind": "therapeutic", "start": "10:00", "stop": "11:31"}]),
        lines=[*claim_with()["lines"][:2], {"code": "96365", "units": 1}]))
    assert codes(body) == ["ADMIN_CODE_MISMATCH"]
    missing = finding(body, "ADMIN_CODE_MISMATCH")
    assert missing["line"] is None
    assert "Add 96366 x1" in missing["message"]


def test_c1_90_minutes_billed_with_96366_is_flagged(session, check) -> None:
    build_world()
    body = check(claim_with(
        administration=administration(infusions=[
            {"kind": "therapeutic", "start": "10:00", "stop": "11:30"}]),
        lines=[*claim_with()["lines"][:2], {"code": "96365", "units": 1},
               {"code": "96366", "units": 1}]))
    assert codes(body) == ["ADMIN_CODE_MISMATCH"]
    assert finding(body, "ADMIN_CODE_MISMATCH")["line"] == 3
    assert "Bill 96365 x1" in finding(body, "ADMIN_CODE_MISMATCH")["message"]


def test_c1_151_minutes_billed_with_one_96366_is_a_units_mismatch(session, check) -> None:
    build_world()
    body = check(claim_with(
        administration=administration(infusions=[
            {"kind": "therapeutic", "start": "10:00", "stop": "12:31"}]),
        lines=[*claim_with()["lines"][:2], {"code": "96365", "units": 1},
               {"code": "96366", "units": 1}]))
    assert codes(body) == ["ADMIN_UNITS_MISMATCH"]
    assert finding(body, "ADMIN_UNITS_MISMATCH")["line"] == 3
    assert "96366 x2" in finding(body, "ADMIN_UNITS_MISMATCH")["message"]


def test_c1_infliximab_2h10_complex_is_96413_plus_96415_x1(session, check) -> None:
    build_world()
    body = check(claim_with())
    assert body["findings"] == []
    assert [(line["code"], line["units"]) for line in body["expected_lines"][2:4]] == [
        ("96413", 1), ("96415", 1)]


def test_c1_hydration_of_30_minutes_is_not_billable(session, check) -> None:
    build_world()
    body = check(claim_with(
        administration=administration(infusions=[
            {"kind": "complex", "start": "10:00", "stop": "12:10"},
            {"kind": "hydration", "start": "12:10", "stop": "12:40"}]),
        lines=[*claim_with()["lines"][:4], {"code": "96361", "units": 1}]))
    assert codes(body) == ["HYDRATION_NOT_BILLABLE"]
    assert finding(body, "HYDRATION_NOT_BILLABLE")["line"] == 4
    assert "30 minutes" in finding(body, "HYDRATION_NOT_BILLABLE")["message"]


def test_c1_sequential_hydration_of_31_minutes_is_billed(session, check) -> None:
    build_world()
    body = check(claim_with(
        administration=administration(infusions=[
            {"kind": "complex", "start": "10:00", "stop": "12:10"},
            {"kind": "hydration", "start": "12:10", "stop": "12:41"}]),
        lines=[*claim_with()["lines"][:4], {"code": "96361", "units": 1}]))
    assert body["findings"] == []


def test_c4_concurrent_hydration_is_not_billable(session, check) -> None:
    build_world()
    body = check(claim_with(
        administration=administration(infusions=[
            {"kind": "complex", "start": "10:00", "stop": "12:10"},
            {"kind": "hydration", "start": "10:00", "stop": "11:00"}]),
        lines=[*claim_with()["lines"][:4], {"code": "96361", "units": 1}]))
    assert codes(body) == ["HYDRATION_NOT_BILLABLE"]
    assert "concurrently" in finding(body, "HYDRATION_NOT_BILLABLE")["message"]


def test_c2_c3_second_initial_code_is_flagged(session, check) -> None:
    build_world()
    body = check(claim_with(
        administration=administration(infusions=[
            {"kind": "complex", "start": "10:00", "stop": "12:10"},
            {"kind": "hydration", "start": "12:10", "stop": "13:00"}]),
        lines=[*claim_with()["lines"][:4], {"code": "96360", "units": 1}]))
    assert codes(body) == ["MULTIPLE_INITIAL_ADMIN"]
    assert finding(body, "MULTIPLE_INITIAL_ADMIN")["line"] == 4
    assert "96361 x1" in finding(body, "MULTIPLE_INITIAL_ADMIN")["message"]


def test_c2_second_initial_with_distinct_site_modifier_is_allowed(session, check) -> None:
    build_world()
    body = check(claim_with(
        administration=administration(infusions=[
            {"kind": "complex", "start": "10:00", "stop": "12:10"}]),
        lines=[*claim_with()["lines"][:4],
               {"code": "96365", "units": 1, "modifiers": ["XU"]}]))
    assert "MULTIPLE_INITIAL_ADMIN" not in codes(body)


def test_c5_payer_billing_biologics_as_therapeutic(session, check) -> None:
    build_world(payer={"complex_admin_for_biologics": False})
    body = check(claim_with())
    assert codes(body) == ["ADMIN_CODE_MISMATCH", "ADMIN_CODE_MISMATCH"]
    assert {f["line"] for f in body["findings"]} == {2, 3}
    assert "Bill 96365 x1 and 96366 x1" in body["findings"][0]["message"]


def test_c_missing_stop_time_is_flagged(session, check) -> None:
    build_world()
    body = check(claim_with(administration=administration(
        infusions=[{"kind": "complex", "start": "10:00"}])))
    assert codes(body) == ["ADMIN_TIME_MISSING"]
    assert finding(body, "ADMIN_TIME_MISSING")["line"] == 2
    assert "stop" in finding(body, "ADMIN_TIME_MISSING")["message"]


def test_c6_99211_with_drug_administration_is_not_payable(session, check) -> None:
    build_world()
    body = check(claim_with(lines=[*claim_with()["lines"][:4],
                                   {"code": "99211", "units": 1, "modifiers": ["25"]}]))
    assert codes(body) == ["EM_NOT_PAYABLE"]
    assert finding(body, "EM_NOT_PAYABLE")["line"] == 4
    assert all(line["code"] != "99211" for line in body["expected_lines"])


def test_c6_e_m_with_administration_needs_modifier_25(session, check) -> None:
    build_world()
    body = check(claim_with(lines=[*claim_with()["lines"][:4], {"code": "99214", "units": 1}]))
    assert codes(body) == ["MODIFIER_25_MISSING"]
    assert finding(body, "MODIFIER_25_MISSING")["line"] == 4
    assert {"code": "99214", "units": 1, "modifiers": ["25"]} in body["expected_lines"]


# --- D. Joint injections -----------------------------------------------------------------------

def joint_claim(lines: list[dict[str, Any]]) -> dict[str, Any]:
    return claim_with(administration=None, authorization_number=None, lines=lines)


def test_d1_ultrasound_guidance_is_bundled_into_20611(session, check) -> None:
    build_world()
    body = check(joint_claim([{"code": "20611", "units": 1, "modifiers": ["RT"]},
                              {"code": "76942", "units": 1}]))
    assert codes(body) == ["IMAGING_BUNDLED"]
    assert finding(body, "IMAGING_BUNDLED")["line"] == 1
    assert body["expected_lines"] == [{"code": "20611", "units": 1, "modifiers": ["RT"]}]


@pytest.mark.parametrize(("line", "flagged"), [
    ({"code": "20610", "units": 1, "modifiers": ["50"]}, False),
    ({"code": "20610", "units": 2, "modifiers": ["50"]}, True),
    ({"code": "20610", "units": 1, "modifiers": ["RT"]}, False),
    ({"code": "20610", "units": 1}, True),
    ({"code": "20605", "units": 1, "modifiers": ["RT", "LT"]}, True),
    ({"code": "20600", "units": 1, "modifiers": ["F2"]}, False),
    ({"code": "20600", "units": 1, "modifiers": ["TA"]}, False),
], ids=["bilateral-one-unit", "bilateral-two-units", "right", "no-side", "both-sides-one-line",
        "finger", "great-toe"])
def test_d4_laterality(session, check, line, flagged) -> None:
    build_world()
    body = check(joint_claim([line]))
    assert codes(body) == (["LATERALITY_MISSING"] if flagged else [])
    if flagged:
        assert "-50 x1" in finding(body, "LATERALITY_MISSING")["message"]


def test_d7_e_m_with_joint_injection_needs_modifier_25(session, check) -> None:
    build_world()
    body = check(joint_claim([{"code": "20610", "units": 1, "modifiers": ["LT"]},
                              {"code": "99213", "units": 1}]))
    assert codes(body) == ["MODIFIER_25_MISSING"]
    assert finding(body, "MODIFIER_25_MISSING")["line"] == 1


# --- E. Medically unlikely edits ---------------------------------------------------------------

def test_e_drug_mue_from_the_drug_record(session, check) -> None:
    build_world(drug={"mue_units": 30})
    body = check(claim_with())
    assert codes(body) == ["MUE_EXCEEDED"]
    mue = finding(body, "MUE_EXCEEDED")
    assert mue["line"] == 0
    assert "40 units" in mue["message"] and "30" in mue["message"]


def test_e_procedure_mue_table(session, check) -> None:
    build_world()
    body = check(claim_with(
        administration=administration(infusions=[
            {"kind": "therapeutic", "start": "2026-03-10T08:00", "stop": "2026-03-10T18:00"}]),
        lines=[*claim_with()["lines"][:2], {"code": "96365", "units": 1},
               {"code": "96366", "units": 9}]))
    assert codes(body) == ["MUE_EXCEEDED"]
    assert finding(body, "MUE_EXCEEDED")["line"] == 3
    assert "UNCONFIRMED" in finding(body, "MUE_EXCEEDED")["message"]


# --- F. Timely filing --------------------------------------------------------------------------

@pytest.mark.parametrize(("service", "submitted", "late"), [
    ("2026-02-28", "2027-03-01", True),
    ("2026-02-28", "2027-02-28", False),
    ("2028-02-29", "2029-02-28", False),
    ("2028-02-29", "2029-03-01", True),
], ids=["one-day-late", "last-day", "feb29-last-day", "feb29-late"])
def test_f_medicare_twelve_months(session, check, service, submitted, late) -> None:
    build_world(authorization={"valid_from": dt.date(2026, 1, 1),
                               "valid_to": dt.date(2029, 12, 31)})
    body = check(joint_claim([{"code": "20610", "units": 1, "modifiers": ["RT"]}]) | {
        "date_of_service": service, "submitted_on": submitted})
    assert codes(body) == (["TIMELY_FILING_EXCEEDED"] if late else [])
    if late:
        assert finding(body, "TIMELY_FILING_EXCEEDED")["line"] is None


def test_f_commercial_window_in_days(session, check) -> None:
    build_world()
    make_payer("COMM-A", name="Commercial A", kind="commercial", requires_jw_jz=False,
               timely_filing_days=90)
    body = check(joint_claim([{"code": "20610", "units": 1, "modifiers": ["RT"]}]) | {
        "payer": "COMM-A", "date_of_service": "2026-03-10", "submitted_on": "2026-06-09"})
    assert codes(body) == ["TIMELY_FILING_EXCEEDED"]
    assert "90 days" in body["findings"][0]["message"]


# --- H. Codes valid on the date of service ------------------------------------------------------

def test_h_j1030_after_march_2024_is_replaced_by_j1010(session, check) -> None:
    build_world()
    make_drug("J1030", name="Depo-Medrol", generic="methylprednisolone acetate",
              billing_unit_amount=40, packages=[(40, True)], valid_to=dt.date(2024, 3, 31))
    make_drug("J1010", name="Depo-Medrol", generic="methylprednisolone acetate",
              billing_unit_amount=1, packages=[(40, True)], valid_from=dt.date(2024, 4, 1))
    body = check(joint_claim([{"code": "20610", "units": 1, "modifiers": ["RT"]},
                              {"code": "J1030", "units": 1}]) | {
        "date_of_service": "2024-05-01", "submitted_on": "2024-05-03"})
    assert codes(body) == ["CODE_NOT_VALID_ON_DOS"]
    invalid = finding(body, "CODE_NOT_VALID_ON_DOS")
    assert invalid["line"] == 1
    assert "J1010" in invalid["message"] and "2024-03-31" in invalid["message"]
    before = check(joint_claim([{"code": "20610", "units": 1, "modifiers": ["RT"]},
                                {"code": "J1030", "units": 1}]) | {
        "date_of_service": "2024-03-29", "submitted_on": "2024-04-02"})
    assert before["findings"] == []


def test_a2_no_jz_is_expected_before_cms_required_it(session, check) -> None:
    build_world()
    body = check(drug_claim("J1745", 400, [(100, 4)], [{"code": "J1745", "units": 40}],
                            date_of_service="2023-03-01", submitted_on="2023-03-05"))
    assert "JZ_MISSING" not in codes(body)
    assert body["expected_lines"][0] == {"code": "J1745", "units": 40, "modifiers": []}
