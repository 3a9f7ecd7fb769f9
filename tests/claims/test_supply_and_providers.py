"""Claims with a specialty-pharmacy drug, rendering provider enrollment and NPI validation."""

from __future__ import annotations

import pytest

from tests.claims.world import CLEAN_CLAIM, build_world, claim_with, codes

PHARMACY_ONLY = {"drug_supply": "specialty_pharmacy"}
ADMIN_ONLY_LINES = CLEAN_CLAIM["lines"][2:]


def test_drug_lines_under_a_pharmacy_policy_are_not_billable(session, check) -> None:
    build_world(policy=PHARMACY_ONLY)
    body = check(claim_with())
    assert codes(body) == ["DRUG_LINE_NOT_BILLABLE", "DRUG_LINE_NOT_BILLABLE"]
    assert [f["line"] for f in body["findings"]] == [0, 1]
    assert "Medicare Part B's infliximab policy" in body["findings"][0]["message"]
    assert body["status"] == "needs_correction"
    # What should be billed: the administration and the visit, no drug line.
    assert [line["code"] for line in body["expected_lines"]] == ["96413", "96415", "99214"]


def test_administration_only_claim_under_a_pharmacy_policy_is_clean(session, check) -> None:
    build_world(policy=PHARMACY_ONLY)
    body = check(claim_with(lines=ADMIN_ONLY_LINES))
    assert body["findings"] == []
    assert body["status"] == "clean"


def test_claim_saying_the_pharmacy_supplied_the_drug_bills_no_drug(session, check) -> None:
    build_world()
    body = check(claim_with(drug_supply="specialty_pharmacy"))
    assert codes(body) == ["DRUG_LINE_NOT_BILLABLE", "DRUG_LINE_NOT_BILLABLE"]
    assert "the claim says the drug came from a specialty pharmacy" in \
        body["findings"][0]["message"]
    assert check(claim_with(drug_supply="specialty_pharmacy",
                            lines=ADMIN_ONLY_LINES))["status"] == "clean"


@pytest.mark.parametrize(("npi", "found"), [
    ("1234567893", []),
    ("1245319599", ["PROVIDER_NOT_ENROLLED"]),
    ("1003000126", ["PROVIDER_NOT_ENROLLED"]),
])
def test_rendering_provider_must_be_enrolled_on_the_date(session, check, npi, found) -> None:
    build_world()
    body = check(claim_with(rendering_npi=npi))
    assert codes(body) == found
    if found:
        assert body["findings"][0]["severity"] == "block"
        assert body["findings"][0]["line"] is None


@pytest.mark.parametrize("field", ["rendering_npi", "ordering_npi"])
def test_invalid_npi_is_422_naming_the_field(client, session, auth_header, field) -> None:
    build_world()
    response = client.post("/api/v1/claims/check", json=claim_with(**{field: "1234567894"}),
                           headers=auth_header("biller"))
    assert response.status_code == 422
    assert [e["field"] for e in response.json["errors"]] == [field]
    assert "check digit" in response.json["errors"][0]["message"]
