"""The home dashboard lists what needs attention, each entry linking to its record."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from policy_service.models import Appointment, Authorization, ChangeRecord, PolicyVersion
from policy_service.schemas.appointments import load_appointment
from policy_service.services import appointments
from tests.factories import make_patient
from tests.test_policy_index import count_queries

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
                      hcpcs=["J1745"], status="submitted", valid_from=today,
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
    # Units read as on every page: used / scheduled / free, or why there are none to draw.
    assert "95 used / 0 scheduled / 5 free" in section(page, "low-remaining")
    assert "not approved" in section(page, "needs-action")
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


def test_recent_policy_changes_are_grouped_and_capped(client: FlaskClient, login: Login,
                                                      records: Any, session: Session) -> None:
    # A seed writes dozens of changes: 30 by one actor in one minute, plus 12 later minutes.
    session.execute(delete(ChangeRecord))
    start = dt.datetime.now().replace(second=0, microsecond=0) - dt.timedelta(hours=2)
    rows = [ChangeRecord(at=start + dt.timedelta(seconds=i), actor="seed", action="update",
                         entity_type="policy", entity_key=f"ACME/infliximab@2026-01-{i + 1:02}",
                         before={}, after={})
            for i in range(30)]
    rows += [ChangeRecord(at=start + dt.timedelta(minutes=5 + i), actor="ana@example.org",
                          action="update", entity_type="policy",
                          entity_key="ACME/infliximab@2026-02-01", before={}, after={})
             for i in range(12)]
    session.add_all(rows)
    session.flush()
    login("coordinator")
    page = client.get("/admin/").get_data(as_text=True)
    changed = section(page, "policies-changed")
    assert 'badge-secondary">42</span>' in changed
    groups = re.findall(r'<tr class="change-group">(.*?)</tr>', changed, re.S)
    assert len(groups) == 10
    # Newest first: the ten latest minutes of ana's edits, one row each.
    assert all("ana@example.org" in g for g in groups)
    assert (start + dt.timedelta(minutes=16)).strftime("%Y-%m-%d %H:%M") in groups[0]
    link = re.search(r'id="all-policy-changes" href="([^"]+)"', changed)
    assert link is not None
    history = client.get(link[1].replace("&amp;", "&"))
    assert history.status_code == 200
    assert "ACME/infliximab@2026-01-30" in history.get_data(as_text=True)


def test_one_actors_burst_of_changes_is_one_row_with_a_count(
        client: FlaskClient, login: Login, records: Any, session: Session) -> None:
    at = dt.datetime.now().replace(second=5, microsecond=0) - dt.timedelta(hours=1)
    session.add_all([ChangeRecord(at=at, actor="seed", action="create", entity_type="policy",
                                  entity_key=f"ACME/p{i}@2026-01-01", before=None, after={})
                     for i in range(50)])
    session.flush()
    login("scheduler")
    changed = section(client.get("/admin/").get_data(as_text=True), "policies-changed")
    [burst] = [g for g in re.findall(r'<tr class="change-group">(.*?)</tr>', changed, re.S)
               if "seed" in g]
    assert "50 changes" in burst
    assert "and 47 more" in burst


def test_dashboard_reloads_its_authorizations_once_however_many(
        client: FlaskClient, login: Login, records: Any, session: Session) -> None:
    # Reading the work queue recomputes stale checks, which expires the listed authorizations;
    # the reload meant for them read the ids of the change records shown instead, so each row
    # was read again on its own.
    today = dt.date.today()

    def expiring_with_an_appointment(n: int) -> None:
        patient = make_patient(f"P{500 + n}")
        session.add(Authorization(
            number=f"A-{500 + n}", patient=patient, payer=records.payer, hcpcs=["J1745"],
            status="approved", approved_units=160, approved_visits=4, valid_from=today,
            valid_to=today + dt.timedelta(days=20), diagnoses=["M05.79"],
            site_of_care="office"))
        session.flush()
        appointments.upsert(f"D-{n}", load_appointment({
            "patient": {"id": patient.external_id}, "payer": "ACME",
            "date_of_service": (today + dt.timedelta(days=5)).isoformat(),
            "site_of_care": "office", "diagnosis_codes": ["M05.79"], "hcpcs": "J1745",
            "dose": {"mg": 400}}), "scheduler@example.org")

    def dashboard_queries() -> int:
        session.execute(update(Appointment).values(check_logic="stale"))
        with count_queries() as statements:
            page = client.get("/admin/").get_data(as_text=True)
        assert "A-500" in section(page, "expiring-30")
        return len(statements)

    login("coordinator")
    client.get("/admin/")  # the first request loads the user and the policy index
    for n in range(2):
        expiring_with_an_appointment(n)
    few = dashboard_queries()
    for n in range(2, 8):
        expiring_with_an_appointment(n)
    assert dashboard_queries() == few
