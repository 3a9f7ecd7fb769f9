"""Read endpoints: payers, drugs, policies and authorizations, in the bundle's shapes."""

from __future__ import annotations

import pytest

from tests.factories import make_authorization


@pytest.fixture
def seeded(runner) -> None:
    result = runner.invoke(args=["seed"])
    assert result.exit_code == 0, result.output


def test_payer_list_filters_and_pages(client, seeded, auth_header) -> None:
    headers = auth_header("scheduler")
    everything = client.get("/api/v1/payers?per_page=2", headers=headers).json
    assert everything["per_page"] == 2 and len(everything["items"]) == 2
    assert everything["total"] == 7
    medicare = client.get("/api/v1/payers?kind=medicare", headers=headers).json
    assert [p["id"] for p in medicare["items"]] == ["MEDICARE-B"]
    assert medicare["items"][0]["requires_jw_jz"] is True


@pytest.mark.parametrize("path", [
    "/api/v1/payers", "/api/v1/drugs", "/api/v1/drugs?q=mab", "/api/v1/policies",
    "/api/v1/policies?payer=UHC", "/api/v1/authorizations", "/api/v1/providers",
])
def test_every_page_reports_the_same_total(client, seeded, auth_header, path) -> None:
    """The total rides on each page's rows (a window count): every page, the last one and one
    past the end all report what one count of the whole list gives."""
    headers = auth_header("coordinator")
    joiner = "&" if "?" in path else "?"
    everything = client.get(f"{path}{joiner}per_page=500", headers=headers).json
    listed = [item for item in everything["items"]]
    assert everything["total"] == len(listed) > 0
    pages = -(-len(listed) // 3)
    seen = []
    for page in range(1, pages + 2):
        body = client.get(f"{path}{joiner}per_page=3&page={page}", headers=headers).json
        assert body["total"] == len(listed), page
        seen.extend(body["items"])
    assert seen == listed  # nothing repeated or skipped; the page past the end is empty


def test_one_drug_in_bundle_shape(client, seeded, auth_header) -> None:
    drug = client.get("/api/v1/drugs/J1745", headers=auth_header("biller")).json
    assert drug["billing_unit"] == {"amount": 10, "unit": "mg"}
    assert drug["packages"][0]["amount"] == 100
    assert drug["packages"][0]["single_dose"] is True


def test_policies_by_payer_and_code(client, seeded, auth_header) -> None:
    headers = auth_header("coordinator")
    listed = client.get("/api/v1/policies?payer=UHC&hcpcs=Q5103&in_effect_on=2026-11-26",
                        headers=headers).json
    assert [p["id"] for p in listed["items"]] == ["UHC/infliximab"]
    assert set(listed["items"][0]["preferred_products"]) >= {"Q5103", "Q5121"}
    one = client.get("/api/v1/policies/UHC/infliximab", headers=headers).json
    assert one["id"] == "UHC/infliximab"
    assert len(one["versions"]) == 2


def test_authorization_shows_what_remains(client, session, auth_header) -> None:
    make_authorization(used_units=35, used_visits=1)
    headers = auth_header("scheduler")
    auth = client.get("/api/v1/authorizations/A-1001", headers=headers).json
    assert (auth["remaining_units"], auth["remaining_visits"]) == (125, 3)
    listed = client.get("/api/v1/authorizations?patient=P001&hcpcs=J1745&valid_on=2026-03-10",
                        headers=headers).json
    assert [a["number"] for a in listed["items"]] == ["A-1001"]
    none = client.get("/api/v1/authorizations?hcpcs=Q5103", headers=headers).json
    assert none["items"] == []


def test_unknown_record_is_404_problem(client, session, auth_header) -> None:
    response = client.get("/api/v1/payers/NOPE", headers=auth_header("scheduler"))
    assert response.status_code == 404
    assert response.content_type == "application/problem+json"
    assert response.json["code"] == "NOT_FOUND"


def test_bad_filter_is_422_naming_it(client, session, auth_header) -> None:
    response = client.get("/api/v1/authorizations?status=maybe&per_page=0&colour=red",
                          headers=auth_header("scheduler"))
    assert response.status_code == 422
    assert {e["field"] for e in response.json["errors"]} == {"status", "per_page", "colour"}


@pytest.mark.parametrize("path", ["/api/v1/payers", "/api/v1/drugs", "/api/v1/policies",
                                  "/api/v1/authorizations", "/api/v1/payers/MEDICARE-B"])
def test_reads_need_a_token(client, session, path) -> None:
    assert client.get(path).status_code == 401


def test_openapi_document_lists_the_contract(client, session, auth_header) -> None:
    assert client.get("/api/v1/openapi.json").status_code == 401
    spec = client.get("/api/v1/openapi.json", headers=auth_header("biller")).json
    for path in ("/api/v1/eligibility", "/api/v1/eligibility/batch", "/api/v1/claims/check",
                 "/api/v1/authorizations/{number}/usage", "/api/v1/payers"):
        assert path in spec["paths"], path
