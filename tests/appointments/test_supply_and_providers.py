"""Appointments carry drug supply and the rendering NPI: stored, checked, uploaded, exported."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

import openpyxl
import pytest
from sqlalchemy import func, select

from policy_service.errors import Invalid
from policy_service.extensions import db
from policy_service.models import Appointment
from policy_service.services.bundle import import_bundle
from policy_service.services.schedule import check_schedule, read_schedule_file, store_schedule
from tests.appointments.conftest import appointment_with
from tests.factories import make_provider

ENDED = "1245319599"
ENROLLED = "1234567893"


def _providers(world: dict[str, Any]) -> None:
    make_provider(ENROLLED, enrollments=[(world["payer"], dt.date(2024, 1, 1), None)])
    make_provider(ENDED, name="Grace Hopper, MD", specialty="dermatology",
                  enrollments=[(world["payer"], dt.date(2024, 1, 1), dt.date(2025, 12, 31))])


def _count() -> int:
    return db.session.scalar(select(func.count()).select_from(Appointment)) or 0


def test_put_stores_supply_and_npi_and_checks_them(client, world, auth_header) -> None:
    _providers(world)
    headers = auth_header("scheduler")
    response = client.put("/api/v1/appointments/APT-1", headers=headers, json=appointment_with(
        drug_supply="specialty_pharmacy", rendering_npi=ENDED))
    assert response.status_code == 201, response.json
    body = response.json
    assert body["drug_supply"] == "specialty_pharmacy"
    assert body["rendering_npi"] == ENDED
    assert body["check"]["decision"] == "needs_information"
    assert [f["code"] for f in body["check"]["findings"]] == ["PROVIDER_NOT_ENROLLED"]
    assert body["check"]["billing"]["lines"] == []
    again = client.put("/api/v1/appointments/APT-1", headers=headers,
                       json=appointment_with(rendering_npi=ENROLLED)).json
    assert again["drug_supply"] == "buy_and_bill"
    assert again["check"]["decision"] == "eligible"


def test_bad_npi_or_supply_is_422_and_nothing_is_written(client, world, auth_header) -> None:
    headers = auth_header("scheduler")
    for changes, field in (({"rendering_npi": "1234567890"}, "rendering_npi"),
                           ({"drug_supply": "mail"}, "drug_supply")):
        response = client.put("/api/v1/appointments/APT-1", headers=headers,
                              json=appointment_with(**changes))
        assert response.status_code == 422
        assert [e["field"] for e in response.json["errors"]] == [field]
    assert _count() == 0


def test_series_copies_supply_and_npi(client, world, auth_header) -> None:
    _providers(world)
    response = client.post("/api/v1/appointments/series", headers=auth_header("scheduler"),
                           json={"appointment_id_prefix": "S1", "every_days": 56,
                                 "until": "2026-05-31",
                                 "first": appointment_with(drug_supply="specialty_pharmacy",
                                                           rendering_npi=ENROLLED)})
    assert response.status_code == 201, response.json
    rows = db.session.scalars(select(Appointment).order_by(Appointment.date_of_service)).all()
    assert [(a.drug_supply, a.rendering_npi) for a in rows] == [
        ("specialty_pharmacy", ENROLLED), ("specialty_pharmacy", ENROLLED)]


def test_a_change_of_enrollment_reaches_the_standing_check(client, world, auth_header,
                                                           session) -> None:
    _providers(world)
    headers = auth_header("scheduler")
    client.put("/api/v1/appointments/APT-1", headers=headers,
               json=appointment_with(rendering_npi=ENROLLED))
    import_bundle({"providers": [{"npi": ENROLLED, "enrollments": [
        {"payer": "MEDICARE-B", "effective_from": "2024-01-01",
         "effective_to": "2026-01-31"}]}]}, "coordinator@example.org")
    session.flush()
    body = client.get("/api/v1/appointments/APT-1", headers=headers).json
    assert body["check"]["decision"] == "needs_information"
    assert "enrolled 2024-01-01 to 2026-01-31" in body["check"]["findings"][0]["message"]


CSV_WITH_COLUMNS = (
    "Appointment ID,Patient ID,Payer,Date of Service,HCPCS,Site of care,Diagnosis codes,"
    "Dose mg,Drug supply,Rendering NPI\n"
    f"APT-1,P001,MEDICARE-B,03/10/2026,J1745,Office,M05.79,400,Specialty pharmacy,{ENROLLED}\n"
    f"APT-2,P001,MEDICARE-B,03/10/2026,J1745,Office,M05.79,400,,{ENDED}\n"
)


def test_csv_upload_reads_the_columns_and_the_result_shows_them(world) -> None:
    _providers(world)
    rows = read_schedule_file(CSV_WITH_COLUMNS.encode(), "schedule.csv")
    assert rows[0].item["drug_supply"] == "specialty_pharmacy"
    assert rows[0].item["rendering_npi"] == ENROLLED
    assert "drug_supply" not in rows[1].item
    results = check_schedule(rows)
    assert [(r["drug_supply"], r["rendering_npi"], r["decision"]) for r in results] == [
        ("specialty_pharmacy", ENROLLED, "eligible"),
        ("buy_and_bill", ENDED, "needs_information")]
    assert results[0]["billing"] == ""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(results[0]))
    writer.writeheader()
    writer.writerows(results)
    header = out.getvalue().splitlines()[0].split(",")
    assert "drug_supply" in header and "rendering_npi" in header
    saved = store_schedule(rows, "scheduler@example.org")
    assert [(s.appointment.drug_supply, s.appointment.rendering_npi) for s in saved] == [
        ("specialty_pharmacy", ENROLLED), ("buy_and_bill", ENDED)]


def test_xlsx_upload_with_a_bad_npi_names_the_row_and_keeps_nothing(world) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["appointment_id", "patient_id", "payer", "date_of_service", "hcpcs",
                  "dose_mg", "drug_supply", "rendering_npi"])
    sheet.append(["X-1", "P001", "MEDICARE-B", dt.datetime(2026, 3, 10), "J1745", 400,
                  "buy and bill", 1234567890])
    data = io.BytesIO()
    book.save(data)
    rows = read_schedule_file(data.getvalue(), "upload.xlsx")
    assert rows[0].item["drug_supply"] == "buy_and_bill"
    [result] = check_schedule(rows)
    assert result["decision"] == "error"
    assert "rendering_npi: Not a valid NPI" in result["reasons"]
    with pytest.raises(Invalid) as refused:
        store_schedule(rows, "scheduler@example.org")
    assert [e["field"] for e in refused.value.errors] == ["row 2, rendering_npi"]
    assert _count() == 0
