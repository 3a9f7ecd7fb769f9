"""Eligibility with drug supply, rendering providers and prescriber specialties."""

from __future__ import annotations

import pytest

from tests.eligibility.world import (
    DERMATOLOGIST_NPI,
    RHEUMATOLOGIST_NPI,
    UNKNOWN_NPI,
    build_world,
    post,
    request_with,
)

PHARMACY_ONLY = {"drug_supply": "specialty_pharmacy"}


def _codes(body: dict) -> list[str]:
    return sorted(f["code"] for f in body["findings"])


def test_buy_and_bill_under_a_pharmacy_policy_is_blocked_without_drug_line(
        client, session, auth_header) -> None:
    build_world(policy=PHARMACY_ONLY)
    body = post(client, auth_header("scheduler"), request_with()).json
    assert body["decision"] == "not_eligible"
    assert _codes(body) == ["SPECIALTY_PHARMACY_REQUIRED"]
    finding = body["findings"][0]
    assert finding["category"] == "coverage" and finding["severity"] == "block"
    assert finding["policy"]["id"] == "MEDICARE-B/infliximab"
    # The units still count against the authorization; the practice bills no drug line.
    assert body["billing"]["administered_units"] == 40
    assert body["billing"]["lines"] == []


def test_planned_from_the_pharmacy_is_eligible_and_bills_no_drug(client, session,
                                                                  auth_header) -> None:
    build_world(policy=PHARMACY_ONLY)
    body = post(client, auth_header("scheduler"),
                request_with(drug_supply="specialty_pharmacy")).json
    assert body["decision"] == "eligible", body["findings"]
    assert body["billing"]["lines"] == []


@pytest.mark.parametrize(("supply", "lines"), [("buy_and_bill", 1), ("specialty_pharmacy", 0)])
def test_a_policy_allowing_either_follows_the_plan(client, session, auth_header, supply,
                                                   lines) -> None:
    build_world()
    body = post(client, auth_header("scheduler"), request_with(drug_supply=supply)).json
    assert body["decision"] == "eligible"
    assert len(body["billing"]["lines"]) == lines


@pytest.mark.parametrize(("changes", "field"), [
    ({"rendering_npi": "1234567890"}, "rendering_npi"),
    ({"ordering_npi": "12345"}, "ordering_npi"),
    ({"drug_supply": "white_bag"}, "drug_supply"),
])
def test_bad_supply_or_npi_is_422_naming_the_field(client, session, auth_header, changes,
                                                   field) -> None:
    build_world()
    response = post(client, auth_header("scheduler"), request_with(**changes))
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert [e["field"] for e in response.json["errors"]] == [field]


@pytest.mark.parametrize(("npi", "decision", "words"), [
    (RHEUMATOLOGIST_NPI, "eligible", None),
    (DERMATOLOGIST_NPI, "needs_information", "enrolled 2024-01-01 to 2025-12-31"),
    (UNKNOWN_NPI, "needs_information", f"rendering NPI {UNKNOWN_NPI} is not a provider on file"),
])
def test_rendering_provider_enrollment(client, session, auth_header, npi, decision,
                                       words) -> None:
    build_world()
    body = post(client, auth_header("scheduler"), request_with(rendering_npi=npi)).json
    assert body["decision"] == decision
    if words is None:
        assert body["findings"] == []
    else:
        (finding,) = body["findings"]
        assert finding["code"] == "PROVIDER_NOT_ENROLLED"
        assert finding["category"] == "information"
        assert words in finding["message"]


def test_rendering_rheumatologist_is_the_prescriber_when_no_other(client, session,
                                                                  auth_header) -> None:
    build_world(policy={"prescriber_specialties": ["rheumatology"]})
    body = post(client, auth_header("scheduler"),
                request_with(rendering_npi=RHEUMATOLOGIST_NPI)).json
    assert body["decision"] == "eligible", body["findings"]


def test_unknown_prescriber_is_missing_information(client, session, auth_header) -> None:
    build_world(policy={"prescriber_specialties": ["rheumatology"]})
    body = post(client, auth_header("scheduler"), request_with()).json
    assert body["decision"] == "needs_information"
    (finding,) = body["findings"]
    assert finding["code"] == "MISSING_INFORMATION"
    assert finding["missing"] == [{"field": "rendering_npi",
                                   "reason": "the policy requires a prescriber in rheumatology"}]
