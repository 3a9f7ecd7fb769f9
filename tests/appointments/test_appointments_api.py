"""PUT / GET / DELETE /api/v1/appointments: the stored schedule and its standing checks."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from policy_service.extensions import db
from policy_service.models import Appointment, ChangeRecord
from policy_service.services.usage import record_usage
from tests.appointments.conftest import APPOINTMENT, appointment_with
from tests.factories import make_authorization


def put(client: Any, headers: dict[str, str], appointment_id: str, body: dict[str, Any]) -> Any:
    return client.put(f"/api/v1/appointments/{appointment_id}", json=body, headers=headers)


def stored_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Appointment))


def test_put_creates_then_replaces_and_get_shows_the_check(client, world, auth_header) -> None:
    headers = auth_header("scheduler")
    created = put(client, headers, "APT-1", APPOINTMENT)
    assert created.status_code == 201, created.json
    assert created.json["check"]["decision"] == "eligible"
    assert created.json["check"]["authorization"]["number"] == "A-1001"
    assert created.json["patient"] == {"id": "P001"}

    replaced = put(client, headers, "APT-1", appointment_with(date_of_service="2026-03-17"))
    assert replaced.status_code == 200
    assert replaced.json["date_of_service"] == "2026-03-17"
    assert stored_count() == 1

    read = client.get("/api/v1/appointments/APT-1", headers=auth_header("biller"))
    assert read.status_code == 200
    assert read.json["check"]["decision"] == "eligible"
    assert read.json["check"]["billing"]["administered_units"] == 40


def test_every_write_is_in_the_change_history_with_its_author(client, world, make_user) -> None:
    user, token = make_user("coordinator")
    put(client, {"Authorization": f"Bearer {token}"}, "APT-1", APPOINTMENT)
    record = db.session.scalars(select(ChangeRecord).where(
        ChangeRecord.entity_type == "appointment")).one()
    assert (record.action, record.entity_key, record.actor) == ("create", "APT-1", user.email)
    assert record.after["patient"] == "P001"


def test_a_policy_change_is_reflected_by_the_next_read(client, world, auth_header) -> None:
    headers = auth_header("scheduler")
    put(client, headers, "APT-1", APPOINTMENT)
    world["policy"].covered_diagnoses = ["L40.5"]
    db.session.flush()
    read = client.get("/api/v1/appointments/APT-1", headers=headers).json
    assert read["check"]["decision"] == "not_eligible"
    assert "DIAGNOSIS_NOT_COVERED" in {f["code"] for f in read["check"]["findings"]}
    assert read["previous_decision"] == "eligible"
    assert read["decision_changed_recently"] is True


def test_a_corrected_weight_is_reflected_by_the_next_read(client, world, auth_header) -> None:
    # 10 mg/kg at 80 kg allows 800 mg: 900 mg is too much until the weight is corrected.
    headers = auth_header("scheduler")
    put(client, headers, "APT-1", appointment_with(dose={"mg": 900}))
    assert client.get("/api/v1/appointments/APT-1",
                      headers=headers).json["check"]["decision"] == "not_eligible"
    world["patient"].weight_kg = Decimal(95)
    db.session.flush()
    assert client.get("/api/v1/appointments/APT-1",
                      headers=headers).json["check"]["decision"] == "eligible"


def test_recorded_use_is_reflected_by_the_next_read(client, world, auth_header) -> None:
    headers = auth_header("scheduler")
    put(client, headers, "APT-1", APPOINTMENT)
    record_usage("A-1001", "CLM-1", dt.date(2026, 2, 10), 130, 1, "biller@example.org")
    read = client.get("/api/v1/appointments/APT-1", headers=headers).json
    assert read["check"]["decision"] == "needs_authorization"
    assert "AUTH_UNITS_EXCEEDED" in {f["code"] for f in read["check"]["findings"]}


def test_a_new_authorization_for_the_patient_is_found_by_the_next_read(
        client, world, auth_header) -> None:
    headers = auth_header("scheduler")
    put(client, headers, "APT-1", appointment_with(date_of_service="2026-08-04"))
    assert client.get("/api/v1/appointments/APT-1",
                      headers=headers).json["check"]["decision"] == "needs_authorization"
    make_authorization("A-2002", patient=world["patient"], payer=world["payer"],
                       valid_from=dt.date(2026, 7, 1), valid_to=dt.date(2026, 12, 31))
    read = client.get("/api/v1/appointments/APT-1", headers=headers).json
    assert read["check"]["decision"] == "eligible"
    assert read["check"]["authorization"]["number"] == "A-2002"


def test_delete_cancels_and_the_list_leaves_it_out(client, world, auth_header) -> None:
    headers = auth_header("scheduler")
    put(client, headers, "APT-1", APPOINTMENT)
    put(client, headers, "APT-2", appointment_with(date_of_service="2026-04-07"))
    cancelled = client.delete("/api/v1/appointments/APT-1", headers=headers)
    assert cancelled.status_code == 200
    assert cancelled.json["status"] == "cancelled"
    listed = client.get("/api/v1/appointments", headers=headers).json
    assert [item["appointment_id"] for item in listed["items"]] == ["APT-2"]
    everything = client.get("/api/v1/appointments?status=all", headers=headers).json
    assert everything["total"] == 2
    assert client.delete("/api/v1/appointments/NOPE", headers=headers).status_code == 404


def test_list_filters_by_dates_decision_and_payer(client, world, auth_header) -> None:
    headers = auth_header("scheduler")
    put(client, headers, "APT-1", APPOINTMENT)
    put(client, headers, "APT-2", appointment_with(date_of_service="2026-04-07",
                                                   diagnosis_codes=["J45.909"]))
    put(client, headers, "APT-3", appointment_with(date_of_service="2026-05-05"))

    def ids(query: str) -> list[str]:
        response = client.get(f"/api/v1/appointments?{query}", headers=headers)
        assert response.status_code == 200, response.json
        return [item["appointment_id"] for item in response.json["items"]]

    assert ids("from=2026-04-01&to=2026-04-30") == ["APT-2"]
    assert ids("decision=not_eligible") == ["APT-2"]
    assert ids("decision=eligible") == ["APT-1", "APT-3"]
    assert ids("payer=MEDICARE-B&drug=J1745") == ["APT-1", "APT-2", "APT-3"]
    assert ids("payer=UHC") == []
    assert ids("authorization=A-1001&decision=eligible") == ["APT-1", "APT-3"]
    assert ids("per_page=1&page=2") == ["APT-2"]


@pytest.mark.parametrize(("changes", "field"), [
    ({"patient": {"id": "NOBODY"}}, "patient.id"),
    ({"payer": "NOPAYER"}, "payer"),
    ({"hcpcs": "J9999"}, "hcpcs"),
    ({"authorization_number": "A-404"}, "authorization_number"),
    ({"date_of_service": "03/10/2026x"}, "date_of_service"),
    ({"site_of_care": "garage"}, "site_of_care"),
    ({"dose": {}}, "dose.mg"),
    ({"packages": [{"amount": 100, "count": 1}]}, "packages"),
    ({"patient": {"id": "P001", "weight_kg": 90}}, "patient.weight_kg"),
    ({"surprise": 1}, "surprise"),
    # Documents are the patient's record, not an appointment's: refused, never silently dropped.
    ({"documentation_on_file": [{"code": "TB_SCREENING", "date": "2026-02-01"}]},
     "documentation_on_file"),
])
def test_bad_input_is_a_422_naming_the_field_and_stores_nothing(
        client, world, auth_header, changes, field) -> None:
    response = put(client, auth_header("scheduler"), "APT-1", appointment_with(**changes))
    assert response.status_code == 422, response.json
    assert response.json["code"] == "VALIDATION_FAILED"
    assert field in {e["field"] for e in response.json["errors"]}
    assert stored_count() == 0


@pytest.mark.parametrize("appointment_id", ["a" * 65, "bad id", "semi;colon", "ünï"])
def test_appointment_ids_are_bounded_in_length_and_characters(
        client, world, auth_header, appointment_id) -> None:
    response = put(client, auth_header("scheduler"), appointment_id, APPOINTMENT)
    assert response.status_code == 422
    assert [e["field"] for e in response.json["errors"]] == ["appointment_id"]
    assert stored_count() == 0


@pytest.mark.parametrize(("role", "status"), [
    ("scheduler", 201), ("coordinator", 201), ("admin", 201), ("biller", 403)])
def test_schedulers_coordinators_and_admins_write_billers_read(
        client, world, auth_header, role, status) -> None:
    headers = auth_header(role)
    assert put(client, headers, "APT-1", APPOINTMENT).status_code == status
    assert client.get("/api/v1/appointments", headers=headers).status_code == 200
    if status == 403:
        assert client.delete("/api/v1/appointments/APT-1", headers=headers).status_code == 403
        assert client.post("/api/v1/appointments/series", json={},
                           headers=headers).status_code == 403


def test_no_token_is_401(client, world) -> None:
    assert client.get("/api/v1/appointments").status_code == 401
    assert put(client, {}, "APT-1", APPOINTMENT).status_code == 401


def test_series_creates_each_appointment_on_its_day(client, world, auth_header) -> None:
    headers = auth_header("scheduler")
    response = client.post("/api/v1/appointments/series", headers=headers, json={
        "appointment_id_prefix": "S1", "first": APPOINTMENT, "every_days": 56,
        "until": "2026-06-30"})
    assert response.status_code == 201, response.json
    assert response.json["appointment_ids"] == ["S1-1", "S1-2", "S1-3"]
    assert [i["date_of_service"] for i in response.json["items"]] == [
        "2026-03-10", "2026-05-05", "2026-06-30"]
    # Each stands alone: one can be moved without touching the others.
    put(client, headers, "S1-2", appointment_with(date_of_service="2026-05-12"))
    listed = client.get("/api/v1/appointments", headers=headers).json["items"]
    assert [i["date_of_service"] for i in listed] == ["2026-03-10", "2026-05-12", "2026-06-30"]
    again = client.post("/api/v1/appointments/series", headers=headers, json={
        "appointment_id_prefix": "S1", "first": APPOINTMENT, "every_days": 56,
        "until": "2026-06-30"})
    assert again.status_code == 422
    assert again.json["errors"][0]["field"] == "appointment_id_prefix"


def test_a_bad_series_names_the_field_and_stores_nothing(client, world, auth_header) -> None:
    response = client.post("/api/v1/appointments/series", headers=auth_header("scheduler"),
                           json={"appointment_id_prefix": "S1",
                                 "first": appointment_with(payer="NOPE"),
                                 "every_days": 28, "until": "2026-06-30"})
    assert response.status_code == 422
    assert response.json["errors"][0]["field"] == "first.payer"
    assert stored_count() == 0
