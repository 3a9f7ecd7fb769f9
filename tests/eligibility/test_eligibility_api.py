"""POST /api/v1/eligibility: every finding code, the decision, billing lines and errors."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from policy_service.models import Patient
from tests.eligibility.world import (
    BASE_REQUEST,
    CSDMARD_STEP,
    build_world,
    post,
    request_with,
)
from tests.factories import make_authorization, make_drug, make_patient, make_payer, make_policy


def test_clean_request_is_eligible_with_jz_line(client, session, auth_header) -> None:
    build_world()
    response = post(client, auth_header("scheduler"), BASE_REQUEST)
    assert response.status_code == 200, response.json
    body = response.json
    assert body["decision"] == "eligible"
    assert body["findings"] == []
    assert body["billing"] == {"administered_units": 40, "discarded_units": 0,
                               "lines": [{"code": "J1745", "units": 40, "modifiers": ["JZ"]}]}
    assert body["authorization"]["number"] == "A-1001"
    assert body["authorization"]["remaining_units"] == 160
    assert body["policy"]["id"] == "MEDICARE-B/infliximab"


def test_waste_gives_jw_line(client, session, auth_header) -> None:
    build_world()
    body = post(client, auth_header("scheduler"), request_with(dose={"mg": 350})).json
    assert body["billing"]["lines"] == [
        {"code": "J1745", "units": 35, "modifiers": []},
        {"code": "J1745", "units": 5, "modifiers": ["JW"]},
    ]


Setup = Callable[[], None]

def _world_without_history() -> None:
    payer = make_payer()
    make_drug("J1745")
    make_drug("Q5103", name="Inflectra", generic="infliximab-dyyb", biosimilar_of="J1745")
    make_policy(payer=payer, steps=[CSDMARD_STEP])
    make_authorization("A-1001", patient=make_patient("P001"), payer=payer)


FINDING_CASES: list[tuple[str, Setup, dict[str, Any], str, str]] = [
    ("DIAGNOSIS_NOT_COVERED", build_world, {"diagnosis_codes": ["L40.0"]}, "not_eligible",
     "L40.0"),
    ("STEP_THERAPY_NOT_MET", _world_without_history, {}, "not_eligible", "methotrexate"),
    ("NON_PREFERRED_PRODUCT", lambda: build_world(policy={"preferred_products": ["Q5103"]}),
     {}, "not_eligible", "Q5103"),
    ("SITE_OF_CARE_NOT_ALLOWED", lambda: build_world(policy={"sites_of_care": ["office"]}),
     {"site_of_care": "home"}, "not_eligible", "home"),
    ("DOSE_EXCEEDS_LIMIT", build_world,
     {"dose": {"mg": 900}, "packages": [{"amount": 100, "count": 9}]}, "not_eligible", "800"),
    ("DOSE_TOO_SOON", build_world, {"last_dose_date": "2026-03-01"}, "not_eligible", "28"),
    ("AGE_NOT_COVERED", lambda: build_world(patient={"birth_date": dt.date(2012, 5, 1)}), {},
     "not_eligible", "18"),
    ("DIAGNOSIS_NOT_BILLABLE", lambda: build_world(policy={"covered_diagnoses": ["M1A"]}),
     {"diagnosis_codes": ["M1A.071"]}, "needs_information", "M1A.0710 or M1A.0711"),
    ("MISSING_INFORMATION", lambda: build_world(patient={"weight_kg": None}),
     {"dose": {"mg_per_kg": 5}, "packages": []}, "needs_information", "weight"),
    ("NO_POLICY", lambda: (build_world(), make_payer("CIGNA", name="Cigna", kind="commercial")),
     {"payer": "CIGNA"}, "needs_information", "Cigna"),
    ("AUTH_REQUIRED", lambda: build_world(with_auth=False), {}, "needs_authorization",
     "authorization"),
    ("AUTH_EXPIRED", lambda: build_world(authorization={"valid_to": dt.date(2026, 3, 1)}), {},
     "needs_authorization", "2026-03-01"),
    ("AUTH_NOT_YET_VALID",
     lambda: build_world(authorization={"valid_from": dt.date(2026, 4, 1)}), {},
     "needs_authorization", "2026-04-01"),
    ("AUTH_NOT_APPROVED", lambda: build_world(authorization={"status": "pending"}), {},
     "needs_authorization", "pending"),
    ("AUTH_DRUG_MISMATCH", lambda: build_world(authorization={"hcpcs": ["Q5103"]}), {},
     "needs_authorization", "Q5103"),
    ("AUTH_DIAGNOSIS_MISMATCH", lambda: build_world(authorization={"diagnoses": ["M45"]}), {},
     "needs_authorization", "M45"),
    ("AUTH_SITE_MISMATCH", lambda: build_world(authorization={"site_of_care": "home"}), {},
     "needs_authorization", "home"),
    ("AUTH_UNITS_EXCEEDED", lambda: build_world(authorization={"used_units": 130}), {},
     "needs_authorization", "30"),
    ("AUTH_VISITS_EXHAUSTED", lambda: build_world(authorization={"used_visits": 4}), {},
     "needs_authorization", "visit"),
    ("AUTH_EXPIRING_SOON", build_world, {"date_of_service": "2026-06-15"}, "eligible",
     "2026-06-30"),
    ("AUTH_UNITS_LOW",
     lambda: build_world(authorization={"approved_units": 400, "used_units": 330}), {},
     "eligible", "70"),
    ("DOCUMENTATION_MISSING",
     lambda: build_world(policy={"documentation_required": [
         {"code": "TB_SCREENING", "label": "TB screening within 12 months",
          "max_age_days": 365}]}), {},
     "eligible", "TB screening within 12 months"),
    ("SPECIALTY_PHARMACY_REQUIRED",
     lambda: build_world(policy={"drug_supply": "specialty_pharmacy"}), {}, "not_eligible",
     "from a specialty pharmacy"),
    ("PROVIDER_NOT_ENROLLED", build_world, {"rendering_npi": "1245319599"},
     "needs_information", "not enrolled with Medicare Part B on 2026-03-10"),
    ("PRESCRIBER_SPECIALTY_NOT_COVERED",
     lambda: build_world(policy={"prescriber_specialties": ["rheumatology"]}),
     {"rendering_npi": "1234567893", "ordering_npi": "1245319599"}, "not_eligible",
     "dermatology"),
]


@pytest.mark.parametrize(("code", "setup", "changes", "decision", "in_message"), FINDING_CASES,
                         ids=[case[0] for case in FINDING_CASES])
def test_every_finding_code_through_the_api(client, session, auth_header, code, setup, changes,
                                            decision, in_message) -> None:
    setup()
    response = post(client, auth_header("scheduler"), request_with(**changes))
    assert response.status_code == 200, response.json
    body = response.json
    codes = [f["code"] for f in body["findings"]]
    assert code in codes
    assert body["decision"] == decision
    finding = next(f for f in body["findings"] if f["code"] == code)
    assert in_message in finding["message"], finding["message"]


def test_every_eligibility_code_has_an_api_case() -> None:
    from rulesets import get_ruleset

    assert set(get_ruleset("eligibility").codes()) == {case[0] for case in FINDING_CASES}


def test_policy_version_in_effect_on_date_of_service_is_used(client, session,
                                                              auth_header) -> None:
    build_world(policy={"effective_to": dt.date(2026, 6, 30), "covered_diagnoses": ["M05"]})
    make_policy(effective_from=dt.date(2026, 7, 1), covered_diagnoses=["M45"],
                steps=[CSDMARD_STEP])
    march = post(client, auth_header("scheduler"), BASE_REQUEST).json
    assert "DIAGNOSIS_NOT_COVERED" not in [f["code"] for f in march["findings"]]
    assert march["policy"]["version"] == 1
    july = post(client, auth_header("scheduler"),
                request_with(date_of_service="2026-07-10")).json
    assert "DIAGNOSIS_NOT_COVERED" in [f["code"] for f in july["findings"]]
    assert july["policy"]["version"] == 2


def test_new_starts_only_exempts_a_patient_on_the_drug(client, session, auth_header) -> None:
    build_world(policy={"new_starts_only_lookback_days": 120})
    headers = auth_header("scheduler")
    on_drug = {"drug": "J1745", "start": "2025-10-01", "end": None, "outcome": "ongoing"}
    without = post(client, headers, request_with(patient={"id": "P002"})).json
    assert "STEP_THERAPY_NOT_MET" in [f["code"] for f in without["findings"]]
    exempt = post(client, headers, request_with(patient={"id": "P002"},
                                                prior_therapies=[on_drug])).json
    assert "STEP_THERAPY_NOT_MET" not in [f["code"] for f in exempt["findings"]]


def test_mg_per_kg_dose_uses_stored_weight(client, session, auth_header) -> None:
    build_world()
    body = post(client, auth_header("scheduler"),
                request_with(dose={"mg_per_kg": 5}, packages=[])).json
    assert body["billing"]["administered_units"] == 40


def test_bad_input_names_each_field(client, session, auth_header) -> None:
    build_world()
    body = request_with(payer="", hcpcs="J17", diagnosis_codes=["M05.79", "M99.999"],
                        dose={"mg": -1}, colour="blue")
    response = post(client, auth_header("scheduler"), body)
    assert response.status_code == 422
    assert response.content_type == "application/problem+json"
    fields = {e["field"] for e in response.json["errors"]}
    assert {"payer", "hcpcs", "diagnosis_codes[1]", "dose.mg", "colour"} <= fields


def test_unknown_payer_is_a_422_naming_the_field(client, session, auth_header) -> None:
    build_world()
    response = post(client, auth_header("scheduler"), request_with(payer="NOPE"))
    assert response.status_code == 422
    assert response.json["errors"] == [{"field": "payer", "message": "Unknown payer 'NOPE'."}]


@pytest.mark.parametrize(("role", "status"), [("scheduler", 200), ("coordinator", 200),
                                              ("admin", 200), ("biller", 403)])
def test_roles_that_may_check_eligibility(client, session, auth_header, role, status) -> None:
    build_world()
    assert post(client, auth_header(role), BASE_REQUEST).status_code == status


def test_no_token_is_401_problem(client, session) -> None:
    response = client.post("/api/v1/eligibility", json=BASE_REQUEST)
    assert response.status_code == 401
    assert response.json["code"] == "UNAUTHORIZED"


def test_batch_keeps_order_and_isolates_a_bad_item(client, session, auth_header) -> None:
    build_world()
    items = [BASE_REQUEST, request_with(hcpcs="XX"), request_with(diagnosis_codes=["L40.0"])]
    response = client.post("/api/v1/eligibility/batch", json={"items": items},
                           headers=auth_header("scheduler"))
    assert response.status_code == 200
    results = response.json["results"]
    assert [r.get("decision") for r in results] == ["eligible", None, "not_eligible"]
    assert results[1]["status"] == 422
    assert results[1]["errors"][0]["field"] == "hcpcs"


def test_vials_that_do_not_cover_the_dose_are_a_422(client, session, auth_header) -> None:
    build_world()
    response = post(client, auth_header("scheduler"), request_with(dose={"mg": 900}))
    assert response.status_code == 422
    assert response.json["errors"][0]["field"] == "packages"
    assert "do not cover the dose" in response.json["errors"][0]["message"]


def test_batch_item_that_is_not_an_object_fails_alone(client, session, auth_header) -> None:
    build_world()
    response = client.post("/api/v1/eligibility/batch", json={"items": [BASE_REQUEST, 5]},
                           headers=auth_header("scheduler"))
    assert response.status_code == 200
    first, second = response.json["results"]
    assert first["decision"] == "eligible"
    assert second["status"] == 422


def test_a_usable_authorization_wins_over_a_used_up_one(client, session, auth_header) -> None:
    build_world(authorization={"used_visits": 4, "valid_to": dt.date(2026, 12, 31)})
    make_authorization("A-2002", patient=session.query(Patient).one(), payer=make_payer(),
                       valid_to=dt.date(2026, 12, 30))
    body = post(client, auth_header("scheduler"), BASE_REQUEST).json
    assert body["decision"] == "eligible"
    assert body["authorization"]["number"] == "A-2002"


def test_no_prior_auth_required_ignores_unrelated_authorizations(client, session,
                                                                 auth_header) -> None:
    build_world(policy={"prior_auth_required": False},
                authorization={"hcpcs": ["J3262"], "status": "expired",
                               "valid_to": dt.date(2026, 2, 1)})
    body = post(client, auth_header("scheduler"), BASE_REQUEST).json
    assert body["decision"] == "eligible"
    assert body["findings"] == []
    assert body["authorization"] is None


def test_a_trial_counts_only_up_to_the_date_of_service(client, session, auth_header) -> None:
    build_world()
    started_recently = {"drug": "leflunomide", "start": "2026-03-01", "end": "2026-12-31",
                        "outcome": "inadequate_response"}
    body = post(client, auth_header("scheduler"),
                request_with(patient={"id": "P009"}, prior_therapies=[started_recently])).json
    assert "STEP_THERAPY_NOT_MET" in [f["code"] for f in body["findings"]]


def test_new_starts_only_exempts_from_the_preferred_product_rule(client, session,
                                                                 auth_header) -> None:
    build_world(policy={"preferred_products": ["Q5103"], "new_starts_only_lookback_days": 120})
    headers = auth_header("scheduler")
    new_start = post(client, headers, BASE_REQUEST).json
    assert "NON_PREFERRED_PRODUCT" in [f["code"] for f in new_start["findings"]]
    on_drug = {"drug": "Remicade", "start": "2024-01-01", "end": None, "outcome": "ongoing"}
    current = post(client, headers, request_with(prior_therapies=[on_drug])).json
    assert "NON_PREFERRED_PRODUCT" not in [f["code"] for f in current["findings"]]


def test_every_validation_problem_has_the_same_type(client, session, auth_header) -> None:
    build_world()
    headers = auth_header("scheduler")
    schema_error = post(client, headers, request_with(hcpcs="J17")).json
    service_error = post(client, headers, request_with(payer="NOPE")).json
    assert schema_error["type"] == service_error["type"] == (
        "https://policy-service.local/problems/validation-failed")


def test_a_family_is_not_billable_and_names_codes_under_it(client, session, auth_header) -> None:
    """A policy keeps families (M05); a request must name a billable code (I2)."""
    build_world(policy={"covered_diagnoses": ["M05"]}, authorization={"diagnoses": ["M05"]})
    body = post(client, auth_header("scheduler"), request_with(diagnosis_codes=["M05.7"])).json
    assert body["decision"] == "needs_information"
    [finding] = [f for f in body["findings"] if f["code"] == "DIAGNOSIS_NOT_BILLABLE"]
    assert finding["category"] == "information" and finding["severity"] == "block"
    assert finding["message"].startswith("Diagnosis codes must be billable ICD-10-CM codes: "
                                         "M05.7 (bill one of M05.70, M05.711, M05.712")
    assert finding["policy"] is None
    leaf = post(client, auth_header("scheduler"), request_with(diagnosis_codes=["M05.711"])).json
    assert leaf["decision"] == "eligible", leaf["findings"]


def test_missing_facts_come_back_as_data(client, session, auth_header) -> None:
    """MISSING_INFORMATION names each missing fact as data, not only in its message."""
    build_world(patient={"weight_kg": None}, policy={"sites_of_care": ["office"]})
    request = request_with(dose={"mg_per_kg": 5})
    del request["packages"], request["site_of_care"]
    body = post(client, auth_header("scheduler"), request).json
    [finding] = [f for f in body["findings"] if f["code"] == "MISSING_INFORMATION"]
    assert finding["missing"] == [
        {"field": "weight_kg", "reason": "the dose is in mg/kg"},
        {"field": "site_of_care", "reason": None},
        {"field": "weight_kg", "reason": "the policy limits mg/kg"},
    ]
    # The fields are data; the message, which pages and EHR cards show, says them in words.
    assert finding["message"] == (
        "Cannot decide without: the patient's weight (the dose is in mg/kg), the site of care, "
        "the patient's weight (the policy limits mg/kg).")
    assert finding["category"] == "information"
    assert all("missing" not in f for f in body["findings"] if f is not finding)


def test_batch_size_is_capped_and_the_cap_is_documented(client, session, auth_header) -> None:
    from policy_service.schemas.common import MAX_BATCH_ITEMS

    headers = auth_header("scheduler")
    response = client.post("/api/v1/eligibility/batch", headers=headers,
                           json={"items": [BASE_REQUEST] * (MAX_BATCH_ITEMS + 1)})
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert response.json["errors"] == [{
        "field": "items",
        "message": "Give 1 to 1,000 appointments per batch; split a longer schedule."}]
    document = client.get("/api/v1/openapi.json", headers=headers).json
    operation = document["paths"]["/api/v1/eligibility/batch"]["post"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    if "$ref" in body:
        body = document["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
    assert body["properties"]["items"]["maxItems"] == MAX_BATCH_ITEMS == 1_000
