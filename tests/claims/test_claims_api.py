"""POST /api/v1/claims/check: every claim finding code, authorization codes, errors, roles."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from tests.claims.world import CLEAN_CLAIM, administration, build_world, claim_with, codes
from tests.factories import make_drug, make_payer

Setup = Callable[[], None]


def _lines(*extra: dict[str, Any], keep: int = 5) -> list[dict[str, Any]]:
    return [*CLEAN_CLAIM["lines"][:keep], *extra]


def _ndc_world() -> None:
    build_world(payer={"requires_ndc": True})


def _j1030_world() -> None:
    build_world()
    make_drug("J1030", name="Depo-Medrol", generic="methylprednisolone acetate",
              billing_unit_amount=40, packages=[(40, True)], valid_to=dt.date(2024, 3, 31))


def _joint(lines: list[dict[str, Any]]) -> dict[str, Any]:
    return {"administration": None, "authorization_number": None, "lines": lines}


# (code, world, claim changes, line the finding names, text in its message)
CLAIM_CASES: list[tuple[str, Setup, dict[str, Any], int | None, str]] = [
    ("UNITS_MISMATCH", build_world,
     {"lines": [{"code": "J1745", "units": 40}, *_lines(keep=5)[1:]]}, 0, "J1745 x35"),
    ("JW_MISSING", build_world, {"lines": [_lines()[0], *_lines()[2:]]}, 0, "J1745-JW x5"),
    ("JW_NOT_ALLOWED", build_world,
     {"administration": administration(administered_mg=400),
      "lines": [{"code": "J1745", "units": 40, "modifiers": ["JZ"]},
                {"code": "J1745", "units": 1, "modifiers": ["JW"]}, *_lines()[2:]]},
     1, "J1745-JZ x40"),
    ("JZ_MISSING", build_world,
     {"administration": administration(administered_mg=400),
      "lines": [{"code": "J1745", "units": 40}, *_lines()[2:]]}, 0, "J1745-JZ x40"),
    ("JW_JZ_CONFLICT", build_world,
     {"lines": [{"code": "J1745", "units": 35, "modifiers": ["JZ"]}, *_lines()[1:]]}, 0, "JZ"),
    ("NDC_MISSING", _ndc_world, {}, 1, "NDC"),
    ("ADMIN_TIME_MISSING", build_world,
     {"administration": administration(infusions=[])}, 2, "start and stop"),
    ("ADMIN_UNITS_MISMATCH", build_world,
     {"lines": _lines(keep=3) + [{"code": "96415", "units": 2}, _lines()[4]]}, 3, "96415 x1"),
    ("ADMIN_CODE_MISMATCH", build_world,
     {"lines": _lines(keep=2) + [{"code": "96365", "units": 1}, _lines()[3], _lines()[4]]},
     2, "Bill 96413 x1 and 96415 x1"),
    ("MULTIPLE_INITIAL_ADMIN", build_world,
     {"lines": _lines(keep=3) + [{"code": "96413", "units": 1}, *_lines()[3:]]}, 3, "59/XU"),
    ("HYDRATION_NOT_BILLABLE", build_world,
     {"administration": administration(infusions=[
         {"kind": "complex", "start": "10:00", "stop": "12:10"},
         {"kind": "hydration", "start": "10:30", "stop": "11:30"}]),
      "lines": _lines(keep=4) + [{"code": "96361", "units": 1}]}, 4, "concurrently"),
    ("MODIFIER_25_MISSING", build_world,
     {"lines": _lines(keep=4) + [{"code": "99215", "units": 1}]}, 4, "99215-25"),
    ("EM_NOT_PAYABLE", build_world,
     {"lines": _lines(keep=4) + [{"code": "99211", "units": 1}]}, 4, "99211"),
    ("IMAGING_BUNDLED", build_world,
     _joint([{"code": "20604", "units": 1, "modifiers": ["LT"]},
             {"code": "76942", "units": 1}]), 1, "20604"),
    ("LATERALITY_MISSING", build_world, _joint([{"code": "20611", "units": 1}]), 0, "20611-RT"),
    ("DIAGNOSIS_NOT_BILLABLE", build_world, {"diagnosis_codes": ["M1A.071"]}, None,
     "M1A.071 (bill M1A.0710 or M1A.0711)"),
    ("MUE_EXCEEDED", lambda: build_world(drug={"mue_units": 20}), {}, 0, "20"),
    ("TIMELY_FILING_EXCEEDED", build_world, {"submitted_on": "2027-03-11"}, None, "2027-03-10"),
    ("CODE_NOT_VALID_ON_DOS", _j1030_world,
     _joint([{"code": "J1030", "units": 1}]) | {"date_of_service": "2024-05-01",
                                                "submitted_on": "2024-05-02"}, 0, "2024-03-31"),
    ("DRUG_LINE_NOT_BILLABLE", lambda: build_world(policy={"drug_supply": "specialty_pharmacy"}),
     {}, 0, "requires it from a specialty pharmacy"),
    ("PROVIDER_NOT_ENROLLED", build_world, {"rendering_npi": "1245319599"}, None,
     "not enrolled with Medicare Part B on 2026-03-10; enrolled 2024-01-01 to 2025-12-31"),
]


@pytest.mark.parametrize(("code", "setup", "changes", "line", "in_message"), CLAIM_CASES,
                         ids=[case[0] for case in CLAIM_CASES])
def test_every_claim_finding_code_through_the_api(session, check, code, setup, changes, line,
                                                  in_message) -> None:
    setup()
    body = check(claim_with(**changes))
    assert body["status"] == "needs_correction"
    matching = [f for f in body["findings"] if f["code"] == code]
    assert matching, body["findings"]
    assert matching[0]["line"] == line
    assert in_message in matching[0]["message"], matching[0]["message"]
    assert matching[0]["severity"] == "block"


def test_every_claim_rule_code_has_an_api_case() -> None:
    from rulesets import get_ruleset

    assert set(get_ruleset("claims").codes()) == {case[0] for case in CLAIM_CASES}


# Authorization and coverage codes come from the eligibility case built for the claim's drug.
AUTH_CASES: list[tuple[str, Setup, dict[str, Any], str]] = [
    ("AUTH_EXPIRED", lambda: build_world(authorization={"valid_to": dt.date(2026, 3, 1)}), {},
     "2026-03-01"),
    ("AUTH_NOT_YET_VALID", lambda: build_world(authorization={"valid_from": dt.date(2026, 4, 1)}),
     {}, "2026-04-01"),
    ("AUTH_NOT_APPROVED", lambda: build_world(authorization={"status": "denied"}), {}, "denied"),
    ("AUTH_DRUG_MISMATCH", lambda: build_world(authorization={"hcpcs": ["Q5103"]}), {}, "Q5103"),
    ("AUTH_DIAGNOSIS_MISMATCH", lambda: build_world(authorization={"diagnoses": ["M45"]}), {},
     "M45"),
    ("AUTH_SITE_MISMATCH", build_world, {"place_of_service": "12"}, "home"),
    ("AUTH_UNITS_EXCEEDED", lambda: build_world(authorization={"used_units": 140}), {}, "20"),
    ("AUTH_VISITS_EXHAUSTED", lambda: build_world(authorization={"used_visits": 4}), {},
     "visit"),
    ("AUTH_REQUIRED", lambda: build_world(with_auth=False), {"authorization_number": None},
     "authorization"),
    ("DIAGNOSIS_NOT_COVERED", build_world, {"diagnosis_codes": ["L40.0"]}, "L40.0"),
    ("PRESCRIBER_SPECIALTY_NOT_COVERED",
     lambda: build_world(policy={"prescriber_specialties": ["rheumatology"]}),
     {"rendering_npi": "1234567893", "ordering_npi": "1245319599"}, "dermatology"),
]


@pytest.mark.parametrize(("code", "setup", "changes", "in_message"), AUTH_CASES,
                         ids=[case[0] for case in AUTH_CASES])
def test_authorization_and_coverage_codes(session, check, code, setup, changes,
                                          in_message) -> None:
    setup()
    body = check(claim_with(**changes))
    assert code in codes(body), body["findings"]
    found = next(f for f in body["findings"] if f["code"] == code)
    assert found["line"] == 0
    assert in_message in found["message"], found["message"]
    assert body["status"] == "needs_correction"


@pytest.mark.parametrize(("pos", "site"), [("11", "office"), ("22", "hospital_outpatient"),
                                           ("19", "hospital_outpatient"), ("12", "home"),
                                           ("49", "ambulatory_infusion_center")])
def test_place_of_service_maps_to_the_authorized_site(session, check, pos, site) -> None:
    build_world(authorization={"site_of_care": site})
    assert "AUTH_SITE_MISMATCH" not in codes(check(claim_with(place_of_service=pos)))


def test_clean_claim_of_the_contract(session, check) -> None:
    build_world()
    body = check(claim_with())
    assert body == {"status": "clean", "findings": [], "authorization": {
        "number": "A-1001", "status": "approved", "remaining_units": 160, "remaining_visits": 4,
        "valid_from": "2026-01-01", "valid_to": "2026-06-30"}, "expected_lines": [
        {"code": "J1745", "units": 35, "modifiers": [], "ndc": "57894-0030-01"},
        {"code": "J1745", "units": 5, "modifiers": ["JW"], "ndc": "57894-0030-01"},
        {"code": "96413", "units": 1, "modifiers": []},
        {"code": "96415", "units": 1, "modifiers": []},
        {"code": "99214", "units": 1, "modifiers": ["25"]},
    ]}


@pytest.mark.parametrize("role", ["biller", "admin"])
def test_biller_and_admin_may_check(client, session, auth_header, role) -> None:
    build_world()
    response = client.post("/api/v1/claims/check", json=claim_with(), headers=auth_header(role))
    assert response.status_code == 200
    assert response.json["status"] == "clean"


@pytest.mark.parametrize("role", ["scheduler", "coordinator"])
def test_other_roles_are_forbidden(client, session, auth_header, role) -> None:
    build_world()
    response = client.post("/api/v1/claims/check", json=claim_with(), headers=auth_header(role))
    assert response.status_code == 403
    assert response.mimetype == "application/problem+json"


def test_no_token_is_401(client, session) -> None:
    response = client.post("/api/v1/claims/check", json=claim_with())
    assert response.status_code == 401


def test_bad_input_names_every_field(client, session, auth_header) -> None:
    build_world()
    body = claim_with(colour="blue", date_of_service="10/03/2026", place_of_service="office",
                      lines=[{"code": "J17", "units": 0, "modifiers": ["JWX"], "ndc": "12"}])
    body["administration"] = administration(infusions=[{"kind": "drip", "start": "25:00"}])
    response = client.post("/api/v1/claims/check", json=body, headers=auth_header("biller"))
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    fields = {e["field"] for e in response.json["errors"]}
    assert {"colour", "date_of_service", "place_of_service", "lines[0].code",
            "lines[0].units", "lines[0].modifiers[0]", "lines[0].ndc",
            "administration.infusions[0].kind", "administration.infusions[0].start"} <= fields


def test_unknown_payer_and_drug_are_422(client, session, auth_header) -> None:
    build_world()
    body = claim_with(payer="NOPE", administration=administration(hcpcs="J9999"))
    response = client.post("/api/v1/claims/check", json=body, headers=auth_header("biller"))
    assert response.status_code == 422
    assert {e["field"] for e in response.json["errors"]} == {"payer", "administration.hcpcs"}


def test_packages_that_do_not_cover_the_dose_are_422(client, session, auth_header) -> None:
    build_world()
    body = claim_with(administration=administration(packages=[{"amount": 100, "count": 3}]))
    response = client.post("/api/v1/claims/check", json=body, headers=auth_header("biller"))
    assert response.status_code == 422
    assert response.json["errors"][0]["field"] == "administration.packages"


def test_stop_before_start_is_422(client, session, auth_header) -> None:
    build_world()
    body = claim_with(administration=administration(
        infusions=[{"kind": "complex", "start": "12:00", "stop": "10:00"}]))
    response = client.post("/api/v1/claims/check", json=body, headers=auth_header("biller"))
    assert response.status_code == 422
    assert response.json["errors"][0]["field"] == "administration.infusions"


def test_commercial_payer_claim_needs_no_medicare_rules(session, check) -> None:
    build_world()
    make_payer("COMM-A", name="Commercial A", kind="commercial", requires_jw_jz=False,
               timely_filing_days=90)
    body = check(claim_with(payer="COMM-A", authorization_number=None,
                            lines=[{"code": "J1745", "units": 35}, *_lines()[2:]]))
    assert body["findings"] == []
    assert body["expected_lines"][0] == {"code": "J1745", "units": 35, "modifiers": []}


def test_openapi_documents_the_claim_check(client, session, auth_header) -> None:
    spec = client.get("/api/v1/openapi.json", headers=auth_header("biller")).json
    operation = spec["paths"]["/api/v1/claims/check"]["post"]
    assert "200" in operation["responses"]
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    request_schema = spec["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    assert {"place_of_service", "administration", "lines"} <= set(request_schema["properties"])


def test_a_documentation_checklist_does_not_make_a_claim_need_correction(session, check) -> None:
    """DOCUMENTATION_MISSING is the scheduler's pre-visit checklist (a warning on eligibility);
    a biller cannot correct a claim for it, so the claim stays clean."""
    build_world(policy={"documentation_required": [
        {"code": "TB_SCREENING", "label": "TB screening within 12 months", "max_age_days": 365}]})
    body = check(claim_with())
    assert body["status"] == "clean", body["findings"]
    assert "DOCUMENTATION_MISSING" not in codes(body)
