"""An authorization's units as used / scheduled / free: the figures every admin page shows."""

from __future__ import annotations

import datetime as dt

import pytest

from admin.display import units_text
from policy_service.services.appointments import (
    UnitBalance,
    forecast,
    unit_balances,
    unit_balances_of,
)
from policy_service.services.usage import record_usage, void_usage
from tests.appointments.conftest import appointment_with
from tests.factories import make_authorization

# The schedule is read from this day; A-1001 runs from January to June 2026.
TODAY = dt.date(2026, 2, 1)


def schedule(client, headers, appointment_id: str, day: str, **changes) -> None:
    response = client.put(f"/api/v1/appointments/{appointment_id}", headers=headers,
                          json=appointment_with(date_of_service=day, **changes))
    assert response.status_code == 201, response.json


def test_used_comes_from_usage_records_and_scheduled_from_future_appointments(
        client, world, auth_header) -> None:
    record_usage("A-1001", "CLM-1", dt.date(2026, 1, 13), 40, 1, "biller@example.org")
    record_usage("A-1001", "CLM-2", dt.date(2026, 1, 20), 30, 1, "biller@example.org")
    void_usage("A-1001", "CLM-2", "biller@example.org")
    headers = auth_header("scheduler")
    schedule(client, headers, "APT-1", "2026-02-10")  # 400 mg = 40 units
    schedule(client, headers, "APT-2", "2026-03-10")
    schedule(client, headers, "PAST-1", "2026-01-20")  # before today: not scheduled
    schedule(client, headers, "LATE-1", "2026-07-07")  # after the authorization ends

    balance = unit_balances([world["authorization"]], TODAY)["A-1001"]

    assert balance == UnitBalance(is_approved=True, approved=160, used=40, scheduled=80,
                                  free=40, short=0)
    assert units_text(balance) == "40 used / 80 scheduled / 40 free"
    # The authorization's page shows the same figures in its forecast.
    assert forecast("A-1001", TODAY)["units"] == {"approved": 160, "used": 40, "scheduled": 80,
                                                  "free": 40, "short": 0}


def test_a_schedule_beyond_what_is_left_is_short_never_negative(
        client, world, auth_header) -> None:
    record_usage("A-1001", "CLM-1", dt.date(2026, 1, 13), 100, 1, "biller@example.org")
    headers = auth_header("scheduler")
    schedule(client, headers, "APT-1", "2026-02-10")
    schedule(client, headers, "APT-2", "2026-03-10")

    balance = unit_balances_of(["A-1001"], TODAY)["A-1001"]

    assert (balance.used, balance.scheduled, balance.free, balance.short) == (100, 80, 0, 20)
    assert units_text(balance) == "100 used / 80 scheduled / 0 free (20 short)"


def test_only_appointments_drawing_on_it_count(client, world, auth_header) -> None:
    # A second authorization of the same patient and payer, chosen on the appointment.
    make_authorization("A-2002", patient=world["patient"], payer=world["payer"],
                       valid_from=dt.date(2026, 1, 1), valid_to=dt.date(2026, 12, 31))
    headers = auth_header("scheduler")
    schedule(client, headers, "APT-1", "2026-02-10", authorization_number="A-2002")
    schedule(client, headers, "APT-2", "2026-03-10", authorization_number="A-1001")

    balances = unit_balances_of(["A-1001", "A-2002", "NOPE"], TODAY)

    assert set(balances) == {"A-1001", "A-2002"}
    assert balances["A-1001"].scheduled == 40
    assert balances["A-2002"].scheduled == 40


@pytest.mark.parametrize(("overrides", "text"), [
    ({"status": "requested", "approved_units": None, "approved_visits": None}, "not approved"),
    ({"status": "denied", "approved_units": 160}, "not approved"),
    ({"approved_units": None}, "0 used / 0 scheduled / no unit limit"),
    ({}, "0 used / 0 scheduled / 160 free"),
])
def test_words_for_authorizations_without_approved_units(world, overrides, text) -> None:
    auth = make_authorization("A-3003", patient=world["patient"], payer=world["payer"],
                              **overrides)
    assert units_text(unit_balances([auth], TODAY)["A-3003"]) == text
