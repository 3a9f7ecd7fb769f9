"""Queue kinds that come from the stored schedule, and doses left at the scheduled dose."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy.orm import Session

from policy_service.schemas.appointments import load_appointment
from policy_service.services import appointments
from policy_service.services.worklist import dose_outlook, worklist
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


def kinds(today: dt.date = TODAY) -> set[tuple[str, str | None, str | None]]:
    """(kind, authorization, appointment) of every queue item."""
    return {(i.kind, i.authorization, i.appointment) for i in worklist(today)}


def test_units_short_is_due_on_the_first_appointment_left_uncovered(schedule_world: Any) -> None:
    for number, days in (("S-1", 7), ("S-2", 35), ("S-3", 63)):
        book(number, days)
    assert kinds() == {("units_short", "A-1001", "S-3")}
    (item,) = worklist(TODAY)
    assert item.due_on == TODAY + dt.timedelta(days=63)
    assert "120 units" in item.message and "100 remain" in item.message
    assert "P001" not in item.message


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


def test_a_read_shows_doses_left(client: Any, schedule_world: Any, auth_header: Any) -> None:
    book("S-1", 7)
    body = client.get("/api/v1/authorizations/A-1001", headers=auth_header("scheduler")).get_json()
    assert body["doses"] == {"units_per_dose": 40, "doses_left": 2, "low": False,
                             "next_appointment": "S-1"}
