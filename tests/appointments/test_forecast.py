"""GET /api/v1/authorizations/{number}/forecast: what the scheduled appointments will draw."""

from __future__ import annotations

import datetime as dt

from policy_service.services.usage import record_usage
from tests.appointments.conftest import appointment_with
from tests.factories import make_authorization, make_patient


def schedule(client, headers, appointment_id: str, day: str, **changes) -> None:
    response = client.put(f"/api/v1/appointments/{appointment_id}", headers=headers,
                          json=appointment_with(date_of_service=day, **changes))
    assert response.status_code == 201, response.json


def test_forecast_counts_units_and_visits_and_finds_where_it_runs_out(
        client, world, auth_header) -> None:
    # A-1001: 160 units, 4 visits, Jan to June; 40 units used already, 400 mg = 40 units each.
    record_usage("A-1001", "CLM-1", dt.date(2026, 1, 13), 40, 1, "biller@example.org")
    headers = auth_header("scheduler")
    for n, day in enumerate(["2026-02-10", "2026-03-10", "2026-04-07", "2026-05-05",
                             "2026-07-07"], start=1):
        schedule(client, headers, f"APT-{n}", day)
    # Another patient's appointment never draws on this authorization.
    make_patient("P002")
    schedule(client, headers, "OTHER-1", "2026-03-10", patient={"id": "P002"})
    # Before the day asked about: not in the forecast.
    schedule(client, headers, "PAST-1", "2026-01-20")

    response = client.get("/api/v1/authorizations/A-1001/forecast?from=2026-02-01",
                          headers=auth_header("biller"))
    assert response.status_code == 200, response.json
    body = response.json
    rows = body["appointments"]
    assert [r["appointment_id"] for r in rows] == ["APT-1", "APT-2", "APT-3", "APT-4", "APT-5"]
    assert [r["cumulative_units"] for r in rows] == [40, 80, 120, 160, 200]
    assert [r["cumulative_visits"] for r in rows] == [1, 2, 3, 4, 5]
    # 120 units and 3 visits remain: the fourth appointment is the first it cannot cover.
    assert body["runs_out_on"] == "2026-05-05"
    assert body["runs_out_with"] == "APT-4"
    assert body["after_valid_to"] == ["APT-5"]
    assert body["units"] == {"approved": 160, "used": 40, "scheduled": 160, "free": 0,
                             "short": 40}
    assert body["visits"]["free"] == 0


def test_forecast_of_a_covered_authorization_runs_out_never(client, world, auth_header) -> None:
    headers = auth_header("scheduler")
    schedule(client, headers, "APT-1", "2026-02-10")
    body = client.get("/api/v1/authorizations/A-1001/forecast?from=2026-02-01",
                      headers=headers).json
    assert body["runs_out_on"] is None
    assert body["after_valid_to"] == []
    assert body["units"] == {"approved": 160, "used": 0, "scheduled": 40, "free": 120,
                             "short": 0}


def test_forecast_follows_usage_recorded_after_scheduling(client, world, auth_header) -> None:
    headers = auth_header("scheduler")
    schedule(client, headers, "APT-1", "2026-02-10")
    record_usage("A-1001", "CLM-1", dt.date(2026, 1, 13), 150, 1, "biller@example.org")
    body = client.get("/api/v1/authorizations/A-1001/forecast?from=2026-02-01",
                      headers=headers).json
    assert body["runs_out_on"] == "2026-02-10"
    assert body["appointments"][0]["decision"] == "needs_authorization"


def test_forecast_of_an_unknown_authorization_is_404(client, world, auth_header) -> None:
    response = client.get("/api/v1/authorizations/NOPE/forecast", headers=auth_header("biller"))
    assert response.status_code == 404
    assert response.json["code"] == "NOT_FOUND"


def test_one_appointment_shows_its_authorizations_units_used_scheduled_free(
        client, world, auth_header) -> None:
    today = dt.date.today()
    make_authorization("A-2002", patient=world["patient"], payer=world["payer"],
                       valid_from=today - dt.timedelta(days=10),
                       valid_to=today + dt.timedelta(days=100))
    record_usage("A-2002", "CLM-1", today - dt.timedelta(days=3), 40, 1, "biller@example.org")
    headers = auth_header("scheduler")
    schedule(client, headers, "APT-1", (today + dt.timedelta(days=7)).isoformat(),
             authorization_number="A-2002")
    schedule(client, headers, "APT-2", (today + dt.timedelta(days=200)).isoformat(),
             authorization_number="A-2002")
    body = client.get("/api/v1/appointments/APT-1", headers=headers).json
    # APT-2 falls after the authorization ends: it is not scheduled against its units.
    assert body["authorization_balance"]["units"] == {
        "approved": 160, "used": 40, "scheduled": 40, "free": 80, "short": 0}
    assert body["authorization_balance"]["visits"]["scheduled"] == 1
