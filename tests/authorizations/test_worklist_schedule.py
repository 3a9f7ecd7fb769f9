"""Queue kinds that come from the stored schedule, and doses left at the scheduled dose.

Units short come from the balance every page shows (``unit_balances``: used / scheduled / free),
so the queue never counts a different set of appointments than the authorizations list.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy.orm import Session

from policy_service import database
from policy_service.schemas.appointments import load_appointment
from policy_service.services import appointments
from policy_service.services.appointments import unit_balances_of
from policy_service.services.worklist import WorkItem, dose_outlook, worklist
from tests.factories import (
    METHOTREXATE_FAILED,
    make_authorization,
    make_drug,
    make_patient,
    make_payer,
    make_policy,
)

TODAY = dt.date.today()


def book(appointment_id: str, days_ahead: int, patient: str = "P001",
         diagnosis: str = "M05.79") -> None:
    """Store a 400 mg infliximab infusion (40 units) ``days_ahead`` from today."""
    body = {"patient": {"id": patient}, "payer": "MEDICARE-B",
            "date_of_service": (TODAY + dt.timedelta(days=days_ahead)).isoformat(),
            "site_of_care": "office", "diagnosis_codes": [diagnosis], "hcpcs": "J1745",
            "dose": {"mg": 400}}
    appointments.upsert(appointment_id, load_appointment(body), "scheduler@example.org")


@pytest.fixture
def schedule_world(session: Session) -> Any:
    """Medicare Part B infliximab, P001 with A-1001 (100 units, 6 visits), P002 with none."""
    payer = make_payer()
    make_drug("J1745")
    make_policy(payer=payer, effective_from=TODAY - dt.timedelta(days=365))
    patient = make_patient("P001", therapies=[METHOTREXATE_FAILED])
    make_patient("P002", therapies=[METHOTREXATE_FAILED])
    return make_authorization("A-1001", patient=patient, payer=payer, approved_units=100,
                              approved_visits=6, valid_from=TODAY,
                              valid_to=TODAY + dt.timedelta(days=180))


# Patients in the crowded schedule, and the IN-list length the slicing test cuts them into.
CROWD = 12
SHORT_SLICE = 2


@pytest.fixture
def crowded_schedule(schedule_world: Any) -> None:
    """Twelve more patients, each with an authorization for one dose and two doses booked
    (units short), every third one also blocked, and three patients booked with no
    authorization: each kind the schedule gives, over many more patients than a short slice."""
    for n in range(CROWD):
        patient = make_patient(f"P{100 + n}", therapies=[METHOTREXATE_FAILED])
        make_authorization(f"A-{2000 + n}", patient=patient, payer=schedule_world.payer,
                           approved_units=40, approved_visits=6, valid_from=TODAY,
                           valid_to=TODAY + dt.timedelta(days=180))
        book(f"S-{n}-1", 7, patient=patient.external_id)
        book(f"S-{n}-2", 35, patient=patient.external_id)
        if n % 3 == 0:
            book(f"B-{n}", 63, patient=patient.external_id, diagnosis="K50.90")
    for n in range(3):
        make_patient(f"P{200 + n}", therapies=[METHOTREXATE_FAILED])
        book(f"N-{n}", 10, patient=f"P{200 + n}")


def kinds(today: dt.date = TODAY) -> set[tuple[str, str | None, str | None]]:
    """(kind, authorization, appointment) of every queue item."""
    return {(i.kind, i.authorization, i.appointment) for i in worklist(today)}


def units_short(today: dt.date = TODAY) -> dict[str | None, WorkItem]:
    """The queue's units_short items by authorization."""
    return {i.authorization: i for i in worklist(today) if i.kind == "units_short"}


def test_units_short_is_due_on_the_first_appointment_left_uncovered(schedule_world: Any) -> None:
    for number, days in (("S-1", 7), ("S-2", 35), ("S-3", 63)):
        book(number, days)
    assert kinds() == {("units_short", "A-1001", "S-3")}
    (item,) = worklist(TODAY)
    assert item.due_on == TODAY + dt.timedelta(days=63)
    assert "120 units scheduled, 100 remain (20 short)" in item.message
    assert "P001" not in item.message


# Each case is one where counting the checked authorization over the next 90 days gave another
# answer than the balance the authorizations list and the appointment page show.
@pytest.mark.parametrize(("changes", "bookings", "first_uncovered", "short"), [
    pytest.param({}, (("S-1", 7), ("S-2", 35), ("S-3", 120)), "S-3", 20,
                 id="an appointment beyond 90 days still draws on it"),
    pytest.param({"valid_to": TODAY + dt.timedelta(days=40)},
                 (("S-1", 7), ("S-2", 35), ("S-3", 63)), None, 0,
                 id="an appointment after its end draws nothing"),
    pytest.param({"used_units": 90}, (("S-1", 7), ("S-2", 35), ("S-3", 63)), "S-1", 110,
                 id="used units leave every scheduled unit beyond the first 10 short"),
])
def test_the_queue_is_short_by_the_shared_balance(schedule_world: Any, changes: dict[str, Any],
                                                  bookings: tuple[tuple[str, int], ...],
                                                  first_uncovered: str | None,
                                                  short: int) -> None:
    for field, value in changes.items():
        setattr(schedule_world, field, value)
    for number, days in bookings:
        book(number, days)

    balance = unit_balances_of(["A-1001"], TODAY)["A-1001"]
    items = units_short()

    assert balance.short == short
    if first_uncovered is None:
        assert "A-1001" not in items
    else:
        item = items["A-1001"]
        assert item.appointment == first_uncovered
        assert item.due_on == TODAY + dt.timedelta(days=dict(bookings)[first_uncovered])
        assert (f"{balance.scheduled} units scheduled, {balance.remaining} remain "
                f"({balance.short} short)") in item.message


def test_visits_short_are_units_short_too(schedule_world: Any) -> None:
    schedule_world.used_visits = 5
    book("S-1", 7)
    book("S-2", 120)
    item = units_short()["A-1001"]
    assert (item.appointment, item.due_on) == ("S-2", TODAY + dt.timedelta(days=120))
    assert "2 visits scheduled, 1 remain (1 short)" in item.message
    assert "units scheduled" not in item.message


def test_appointments_without_authorization_or_blocked(schedule_world: Any) -> None:
    book("N-1", 10, patient="P002")
    book("B-1", 12, diagnosis="K50.90")
    found = kinds()
    assert ("appointment_without_authorization", None, "N-1") in found
    assert any(kind == "appointment_blocked" and appointment == "B-1"
               for kind, _auth, appointment in found)
    messages = " ".join(i.message for i in worklist(TODAY))
    assert "P002" not in messages and "P001" not in messages


def test_doses_left_at_the_scheduled_dose(schedule_world: Any) -> None:
    book("S-1", 7)
    outlook = dose_outlook(TODAY)["A-1001"]
    assert (outlook.units_per_dose, outlook.doses_left, outlook.low) == (40, 2, False)
    schedule_world.used_units = 70
    outlook = dose_outlook(TODAY)["A-1001"]
    assert (outlook.doses_left, outlook.low) == (0, True)


def test_doses_left_count_from_a_dose_beyond_90_days(schedule_world: Any) -> None:
    book("S-1", 120)
    outlook = dose_outlook(TODAY)["A-1001"]
    assert (outlook.units_per_dose, outlook.doses_left, outlook.next_appointment) == (40, 2, "S-1")


def test_doses_left_ignore_an_appointment_after_the_end(schedule_world: Any) -> None:
    schedule_world.valid_to = TODAY + dt.timedelta(days=40)
    book("S-1", 63)
    assert "A-1001" not in dose_outlook(TODAY)


def test_a_read_shows_doses_left(client: Any, schedule_world: Any, auth_header: Any) -> None:
    book("S-1", 7)
    body = client.get("/api/v1/authorizations/A-1001", headers=auth_header("scheduler")).get_json()
    assert body["doses"] == {"units_per_dose": 40, "doses_left": 2, "low": False,
                             "next_appointment": "S-1"}


def test_the_queue_reads_its_lists_in_slices(crowded_schedule: None, bound_parameters: list[int],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL refuses a statement binding more than 65,535 parameters: with IN lists cut
    to two keys, the queue gives the very same items, and no statement binds one parameter
    per patient or authorization."""
    whole, doses = worklist(TODAY), dose_outlook(TODAY)
    found = {i.kind for i in whole}
    assert {"units_short", "appointment_blocked", "appointment_without_authorization"} <= found
    assert len([i for i in whole if i.kind == "units_short"]) == CROWD
    assert len(doses) == CROWD

    bound_parameters.clear()
    monkeypatch.setattr(database, "IN_LIMIT", SHORT_SLICE)
    assert worklist(TODAY) == whole
    assert dose_outlook(TODAY) == doses
    assert max(bound_parameters) < CROWD
