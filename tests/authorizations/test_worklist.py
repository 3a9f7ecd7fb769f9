"""The work queue's kinds, its order, owner=me, the digest and the decision figures."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select

from policy_service.extensions import db
from policy_service.models import User
from policy_service.services.authorizations import renew, transition
from policy_service.services.worklist import decision_stats, worklist
from tests.authorizations.conftest import TODAY, stored

DAY = dt.timedelta(days=1)


def kinds(client: FlaskClient, headers: dict[str, str], query: str = "") -> list[tuple[str, str]]:
    """(kind, authorization) of each queue item, in the queue's order."""
    items = client.get(f"/api/v1/worklist{query}", headers=headers).get_json()["items"]
    return [(item["kind"], item["authorization"]) for item in items]


def test_each_authorization_kind_appears_when_due(client: FlaskClient, world: Any,
                                                  coordinator: dict[str, str]) -> None:
    # ACME-MA (Medicare Advantage): 7 days to decide, renewals 30 days ahead, 65 to appeal.
    stored("submitted", "A-OVERDUE", submitted_on=TODAY - 8 * DAY, approved_units=None,
           approved_visits=None)
    stored("submitted", "A-WAITING", submitted_on=TODAY - 6 * DAY, approved_units=None,
           approved_visits=None)
    stored("info_requested", "A-INFO", approved_units=None, approved_visits=None)
    stored("denied", "A-APPEAL", appeal_due=TODAY + 20 * DAY, approved_units=0,
           approved_visits=0)
    stored("denied", "A-LATE", appeal_due=TODAY - DAY, approved_units=0, approved_visits=0)
    stored("approved", "A-ENDING", valid_to=TODAY + 10 * DAY)
    stored("approved", "A-LATER", valid_to=TODAY + 90 * DAY)
    stored("approved", "A-FOLLOW", follow_up_on=TODAY - 2 * DAY)
    stored("cancelled", "A-GONE", follow_up_on=TODAY - 2 * DAY)
    found = kinds(client, coordinator)
    assert set(found) == {
        ("decision_overdue", "A-OVERDUE"), ("info_requested", "A-INFO"),
        ("appeal_due", "A-APPEAL"), ("expiring_without_renewal", "A-ENDING"),
        ("follow_up_due", "A-FOLLOW")}
    # Most urgent first: by due date, then priority.
    due = [item["due_on"] for item in client.get(
        "/api/v1/worklist", headers=coordinator).get_json()["items"]]
    assert due == sorted(due)


def test_messages_name_records_by_number_only(client: FlaskClient, world: Any,
                                              coordinator: dict[str, str]) -> None:
    stored("submitted", "A-OVERDUE", submitted_on=TODAY - 30 * DAY)
    item = client.get("/api/v1/worklist", headers=coordinator).get_json()["items"][0]
    assert "A-OVERDUE" in item["message"]
    assert "P001" not in json.dumps(item)


def test_a_renewal_in_progress_clears_the_expiring_item(client: FlaskClient, world: Any,
                                                        coordinator: dict[str, str]) -> None:
    auth = stored("approved", "A-ENDING", valid_to=TODAY + 10 * DAY)
    assert kinds(client, coordinator) == [("expiring_without_renewal", "A-ENDING")]
    renewal = renew(auth, "coordinator@example.org")
    assert kinds(client, coordinator) == []
    transition(renewal, "cancelled", "coordinator@example.org")
    assert kinds(client, coordinator) == [("expiring_without_renewal", "A-ENDING")]


def test_owner_me_keeps_my_items(client: FlaskClient, world: Any,
                                 coordinator: dict[str, str], auth_header: Any) -> None:
    me = db.session.scalar(select(User).where(User.email == "coordinator@example.org"))
    stored("info_requested", "A-MINE", owner=me, approved_units=None)
    stored("info_requested", "A-OTHER", approved_units=None)
    assert {a for _, a in kinds(client, coordinator)} == {"A-MINE", "A-OTHER"}
    assert kinds(client, coordinator, "?owner=me") == [("info_requested", "A-MINE")]
    assert client.get("/api/v1/worklist?owner=someone",
                      headers=coordinator).status_code == 422
    assert client.get("/api/v1/worklist", headers=auth_header("biller")).status_code == 200
    assert client.get("/api/v1/worklist").status_code == 401


def test_decision_figures_over_ninety_days(world: Any) -> None:
    for number, outcome, waited in (("D-1", "approved", 4), ("D-2", "denied", 10),
                                    ("D-3", "partially_approved", 6)):
        auth = stored("submitted", number, submitted_on=TODAY - (waited + 1) * DAY,
                      approved_units=None)
        transition(auth, outcome, "c@example.org", on=TODAY - DAY,
                   decision={"approved_units": 10} if outcome != "denied" else {})
    old = stored("submitted", "D-OLD", submitted_on=TODAY - 200 * DAY, approved_units=None)
    transition(old, "denied", "c@example.org", on=TODAY - 120 * DAY)
    stats = decision_stats(TODAY)
    (acme,) = stats.payers
    assert (acme.payer, acme.decisions, acme.approved, acme.denied) == ("ACME-MA", 3, 2, 1)
    assert round(acme.approval_rate, 3) == 0.667 and round(acme.denial_rate, 3) == 0.333
    assert stats.median_days_to_decision == 6


def test_digest_prints_counts_and_numbers(runner: FlaskCliRunner, world: Any,
                                          coordinator: dict[str, str]) -> None:
    me = db.session.scalar(select(User).where(User.email == "coordinator@example.org"))
    stored("info_requested", "A-MINE", owner=me, approved_units=None)
    stored("submitted", "A-OVERDUE", submitted_on=TODAY - 30 * DAY)
    text = runner.invoke(args=["digest"])
    assert text.exit_code == 0, text.output
    assert "decision overdue: 1" in text.output and "A-OVERDUE" in text.output
    assert "P001" not in text.output
    mine = runner.invoke(args=["digest", "--owner", "coordinator@example.org",
                               "--format", "json"])
    body = json.loads(mine.output)
    assert body["counts"]["info_requested"] == 1 and body["counts"]["decision_overdue"] == 0
    assert [item["authorization"] for item in body["items"]] == ["A-MINE"]
    unknown = runner.invoke(args=["digest", "--owner", "nobody@example.org"])
    assert unknown.exit_code == 1


def test_queue_service_filters_by_owner_email(world: Any) -> None:
    stored("info_requested", "A-1", approved_units=None)
    assert [i.authorization for i in worklist(TODAY)] == ["A-1"]
    assert worklist(TODAY, owner="someone@example.org") == []
