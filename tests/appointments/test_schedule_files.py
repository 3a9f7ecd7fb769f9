"""Schedules as real practices write them: CSV or XLSX, US dates, labels in any case, kept as
appointments all or none (``policy-service check FILE --store``)."""

from __future__ import annotations

import datetime as dt
import io

import openpyxl
import pytest
from sqlalchemy import func, select

from policy_service.errors import Invalid
from policy_service.extensions import db
from policy_service.models import Appointment
from policy_service.services.schedule import (
    TEMPLATE_ROW,
    read_schedule_file,
    store_schedule,
)

SPREADSHEET_CSV = (
    "Appointment ID,Patient ID,Payer,Date of Service,HCPCS,Site of care,Diagnosis codes,"
    "Dose mg\n"
    "APT-1,P001,medicare-b,03/10/2026,j1745,Office,m05.79,400\n"
    "APT-2,P001,Medicare B,2026-04-07,J 1745,Hospital outpatient,M05.79,400\n"
)


def stored() -> dict[str, Appointment]:
    return {a.appointment_id: a for a in db.session.scalars(select(Appointment))}


def workbook_bytes(rows: list[list[object]]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_spreadsheet_headers_dates_and_labels_are_understood(world) -> None:
    rows = read_schedule_file(SPREADSHEET_CSV.encode(), "schedule.csv")
    assert [r.appointment_id for r in rows] == ["APT-1", "APT-2"]
    assert rows[0].item["date_of_service"] == "2026-03-10"
    assert rows[0].item["site_of_care"] == "office"
    assert rows[1].item["site_of_care"] == "hospital_outpatient"
    assert rows[1].item["hcpcs"] == "J1745"
    saved = store_schedule(rows, "scheduler@example.org")
    assert [s.check.decision for s in saved] == ["eligible", "needs_authorization"]
    assert stored()["APT-2"].payer.code == "MEDICARE-B"


def test_xlsx_with_date_cells_and_numbers(world) -> None:
    data = workbook_bytes([
        ["appointment_id", "patient_id", "payer", "date_of_service", "hcpcs", "site_of_care",
         "diagnosis_codes", "dose_mg_per_kg"],
        ["X-1", "P001", "MEDICARE-B", dt.datetime(2026, 3, 10), "J1745", "OFFICE", "M05.79", 5.0],
        [None, None, None, None, None, None, None, None],
    ])
    rows = read_schedule_file(data, "upload.bin")
    assert len(rows) == 1
    assert rows[0].item["date_of_service"] == "2026-03-10"
    assert rows[0].item["dose"] == {"mg_per_kg": "5"}
    [saved] = store_schedule(rows, "scheduler@example.org")
    assert saved.check.decision == "eligible"


def test_an_unreadable_workbook_is_named() -> None:
    with pytest.raises(Invalid) as caught:
        read_schedule_file(b"PK\x03\x04 not really a zip", "x.xlsx")
    assert caught.value.errors[0]["field"] == "(file)"


def test_every_bad_row_is_named_with_its_field_and_nothing_is_kept(world) -> None:
    text = ("appointment_id,patient_id,payer,date_of_service,hcpcs,dose_mg,weight_kg\n"
            "OK-1,P001,MEDICARE-B,03/10/2026,J1745,400,\n"
            "BAD-1,NOBODY,MEDICARE-B,03/10/2026,J1745,400,\n"
            ",P001,MEDICARE-B,03/10/2026,J1745,400,\n"
            "BAD-3,P001,MEDICARE-B,13/45/2026,J1745,400,\n"
            "BAD-4,P001,MEDICARE-B,03/10/2026,J1745,400,90\n"
            "bad id,P001,MEDICARE-B,03/10/2026,J1745,400,\n")
    with pytest.raises(Invalid) as caught:
        store_schedule(read_schedule_file(text.encode(), "s.csv"), "scheduler@example.org")
    fields = [e["field"] for e in caught.value.errors]
    assert fields == ["row 3, patient_id", "row 4, appointment_id", "row 5, date_of_service",
                      "row 6, weight_kg", "row 7, appointment_id"]
    assert db.session.scalar(select(func.count()).select_from(Appointment)) == 0


def test_cli_store_keeps_the_schedule_and_a_second_run_replaces_it(runner, world,
                                                                   tmp_path) -> None:
    schedule = tmp_path / "week.csv"
    schedule.write_text(SPREADSHEET_CSV)
    first = runner.invoke(args=["check", str(schedule), "--store"])
    assert first.exit_code == 0, first.output
    assert "Kept 2 appointment(s): 2 new, 0 replaced." in first.output
    second = runner.invoke(args=["check", str(schedule), "--store"])
    assert "Kept 2 appointment(s): 0 new, 2 replaced." in second.output
    assert sorted(stored()) == ["APT-1", "APT-2"]


def test_cli_store_refuses_a_bad_file_naming_rows(runner, world, tmp_path) -> None:
    schedule = tmp_path / "week.csv"
    schedule.write_text(SPREADSHEET_CSV + "APT-3,P404,MEDICARE-B,03/10/2026,J1745,office,,400\n")
    result = runner.invoke(args=["check", str(schedule), "--store"])
    assert result.exit_code == 1
    assert "row 4, patient_id: Unknown patient 'P404'." in result.output
    assert "Nothing was written" in result.output
    assert stored() == {}


def test_the_template_row_reads_back_as_a_schedule_row(world) -> None:
    header = ",".join(TEMPLATE_ROW)
    line = ",".join(TEMPLATE_ROW.values())
    [row] = read_schedule_file(f"{header}\n{line}\n".encode(), "template.csv")
    assert row.appointment_id == "APT-1001"
    assert row.item["date_of_service"] == "2026-03-10"
