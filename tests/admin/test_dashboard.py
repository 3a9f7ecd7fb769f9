"""The home dashboard lists what needs attention, each entry linking to its record."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from policy_service.models import Authorization, PolicyVersion

Login = Callable[[str], Any]


def section(page: str, section_id: str) -> str:
    """Return the HTML of one dashboard card."""
    start = page.index(f'id="{section_id}"')
    return page[start:page.find('class="card dash-card"', start + 1)]


def test_dashboard_lists_each_kind_of_attention(client: FlaskClient, login: Login,
                                                records: Any, session: Session) -> None:
    today = dt.date.today()
    session.add_all([
        Authorization(number="A-PENDING", patient=records.patient, payer=records.payer,
                      hcpcs=["J1745"], status="pending", valid_from=today,
                      valid_to=today + dt.timedelta(days=200)),
        Authorization(number="A-LOW", patient=records.patient, payer=records.payer,
                      hcpcs=["J1745"], status="approved", approved_units=100, used_units=95,
                      approved_visits=10, used_visits=2, valid_from=today,
                      valid_to=today + dt.timedelta(days=25)),
        PolicyVersion(policy=records.policy, number=2,
                      effective_from=today + dt.timedelta(days=20), status="draft",
                      hcpcs=["J1745"]),
    ])
    session.flush()
    login("scheduler")
    page = client.get("/admin/").get_data(as_text=True)
    auth_link = f'href="/admin/authorization/details/?id={records.authorization.id}"'
    assert auth_link in section(page, "expiring-14")
    assert "A-1001" not in section(page, "expiring-30")
    assert "A-LOW" in section(page, "expiring-30")
    assert "A-LOW" in section(page, "low-remaining")
    assert "A-1001" not in section(page, "low-remaining")
    assert "A-PENDING" in section(page, "needs-action")
    changing = section(page, "policies-changing")
    assert re.search(r'href="/admin/policyversion/details/\?id=\d+">ACME/infliximab', changing)
    changed = section(page, "policies-changed")
    assert "ACME/infliximab@" in changed
    assert "/admin/policyversion/details/" in changed


def test_dashboard_says_when_nothing_needs_attention(client: FlaskClient, login: Login) -> None:
    login("biller")
    page = client.get("/admin/").get_data(as_text=True)
    assert "None expire in the next 14 days." in page
    assert "Nothing is waiting on a payer decision." in page
