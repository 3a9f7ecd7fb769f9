"""Policy pages: found by HCPCS code or drug name; the details page shows the rules in words."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from tests.factories import make_drug, make_payer, make_policy

Login = Callable[[str], Any]
TB = {"code": "TB_SCREENING", "label": "TB screening within 12 months", "max_age_days": 365}
STEP = {"any_of": ["methotrexate", "leflunomide"], "count": 1, "min_days": 90,
        "accepted_outcomes": ["inadequate_response"]}


@pytest.fixture
def two_policies(session: Session) -> None:
    """An infliximab policy (J1745, Q5103) and a rituximab one (J9312) of one payer."""
    payer = make_payer()
    make_drug("J1745")
    make_drug("Q5103", name="Inflectra", generic="infliximab-dyyb", biosimilar_of="J1745")
    make_drug("J9312", name="Rituxan", generic="rituximab")
    make_policy(payer=payer, code="MEDICARE-B/infliximab", hcpcs=["J1745", "Q5103"],
                steps=[STEP], documentation_required=[TB], max_dose_mg_per_kg=10,
                min_days_between_doses=56, min_age=18)
    make_policy(payer=payer, code="MEDICARE-B/rituximab", hcpcs=["J9312"])


def _codes(page: str) -> list[str]:
    return sorted(set(re.findall(r"MEDICARE-B/(\w+)", page[page.index("<table"):])))


@pytest.mark.parametrize(("search", "found"), [
    ("j1745", ["infliximab"]),
    ("Q5103", ["infliximab"]),
    ("inflectra", ["infliximab"]),
    ("RITUX", ["rituximab"]),
    ("infliximab", ["infliximab"]),
    ("MEDICARE-B", ["infliximab", "rituximab"]),
    ("100%_", []),
])
def test_policies_are_found_by_hcpcs_code_and_drug_name(
        client: FlaskClient, login: Login, two_policies: None, search: str,
        found: list[str]) -> None:
    login("scheduler")
    for view in ("policy", "policyversion"):
        page = client.get(f"/admin/{view}/", query_string={"search": search}
                          ).get_data(as_text=True)
        assert _codes(page) == found, view
    assert "HCPCS code or drug name" in page


def test_the_api_lists_policies_by_drug_name(client: FlaskClient, auth_header: Any,
                                             two_policies: None) -> None:
    body = client.get("/api/v1/policies", query_string={"drug": "Inflectra"},
                      headers=auth_header("scheduler")).get_json()
    assert [item["id"] for item in body["items"]] == ["MEDICARE-B/infliximab"]


def test_the_details_page_shows_the_rules_in_words_and_version_once(
        client: FlaskClient, login: Login, two_policies: None, session: Session) -> None:
    from policy_service.models import PolicyVersion
    version = next(v for v in session.query(PolicyVersion) if "J1745" in v.hcpcs)
    login("scheduler")
    page = client.get(f"/admin/policyversion/details/?id={version.id}").get_data(as_text=True)
    rows = dict((label.strip(), re.sub(r"\s+", " ", value).strip()) for label, value in
                re.findall(r"<td>\s*<b>([^<]+)</b>\s*</td>\s*<td>(.*?)</td>", page, re.S))
    assert [label for label in rows if label == "Version"] == ["Version"]
    assert rows["Step therapy"] == "1 of methotrexate, leflunomide for 90+ days"
    assert rows["Dose limit"] == "10 mg/kg"
    assert rows["Interval"] == "at least 56 days between doses"
    assert rows["Age"] == "18 to any age"
    assert rows["Documentation"] == ("TB screening within 12 months (TB_SCREENING, at most 365 "
                                     "days old)")
