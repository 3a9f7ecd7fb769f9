"""``policy-service check``: a day's schedule from CSV or JSON, a table, results to a file."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os

from policy_service.services.schedule import _check_chunk as _CHECK_CHUNK
from tests.eligibility.world import BASE_REQUEST, build_world

SCHEDULE = """patient_id,payer,date_of_service,hcpcs,site_of_care,diagnosis_codes,dose_mg,packages
P001,MEDICARE-B,2026-03-10,J1745,office,M05.79,400,100x4
P001,MEDICARE-B,2026-03-10,J1745,office,L40.0,350,
P001,NOPE,2026-03-10,J1745,office,M05.79,400,
P001,MEDICARE-B,2026-03-10,J1745,office,M05.79,,
"""


def test_csv_schedule_prints_a_row_per_appointment(runner, tmp_path) -> None:
    build_world()
    schedule = tmp_path / "tomorrow.csv"
    schedule.write_text(SCHEDULE)
    out = tmp_path / "results.csv"
    result = runner.invoke(args=["check", str(schedule), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "1 eligible, 2 error, 1 not_eligible" in result.output
    assert "Row 5 not checked: dose_mg: Give the dose" in result.output
    with out.open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["decision"] for r in rows] == ["eligible", "not_eligible", "error", "error"]
    assert rows[0]["billing"] == "J1745-JZ x40"
    assert rows[1]["billing"] == "J1745 x35 + J1745-JW x5"
    assert "DIAGNOSIS_NOT_COVERED" in rows[1]["codes"]
    assert rows[2]["reasons"] == "payer: Unknown payer 'NOPE'."
    assert [r["row"] for r in rows] == ["2", "3", "4", "5"]
    # The policy lists no documentation: the added column is there and empty.
    assert [r["documentation_missing"] for r in rows] == ["", "", "", ""]


def test_json_schedule_and_json_output(runner, tmp_path) -> None:
    build_world()
    schedule = tmp_path / "schedule.json"
    schedule.write_text(json.dumps({"items": [BASE_REQUEST]}))
    out = tmp_path / "results.json"
    result = runner.invoke(args=["check", str(schedule), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())[0]["decision"] == "eligible"


def test_unknown_column_is_refused_with_exit_1(runner, tmp_path) -> None:
    schedule = tmp_path / "bad.csv"
    schedule.write_text("patient_id,payer,date_of_service,hcpcs,colour\n"
                        "P1,X,2026-01-01,J1745,red\n")
    result = runner.invoke(args=["check", str(schedule)])
    assert result.exit_code == 1
    assert "Unknown column(s): colour" in result.output
    assert "Traceback" not in result.output


def test_csv_out_reads_like_the_page_download(runner, tmp_path) -> None:
    """`check --out` writes the CSV the schedule page offers: a patient not on file is said so
    in words (the decision keeps the contract's value) and no cell can run as a formula."""
    from policy_service.services.schedule import not_on_file_reason

    build_world()
    schedule = tmp_path / "tomorrow.csv"
    schedule.write_text(
        "patient_id,payer,date_of_service,hcpcs,site_of_care,diagnosis_codes,dose_mg,packages\n"
        "P001,MEDICARE-B,2026-03-10,J1745,office,M05.79,400,100x4\n"
        '"=HYPERLINK(""http://evil"")",MEDICARE-B,2026-03-10,J1745,office,M05.79,400,100x4\n')
    out = tmp_path / "results.csv"
    result = runner.invoke(args=["check", str(schedule), "--out", str(out)])
    assert result.exit_code == 0, result.output
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0]["decision"] == "eligible"
    assert rows[1]["patient_id"] == "'=HYPERLINK(\"http://evil\")"
    assert rows[1]["decision"] == "not_eligible"
    assert rows[1]["reasons"] == not_on_file_reason('=HYPERLINK("http://evil")')
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row.values())


# --- the documentation checklist in `check`'s report and CSV -------------------------------

TB = {"code": "TB_SCREENING", "label": "TB screening within 12 months", "max_age_days": 365}
HBV = {"code": "HBV_SCREENING", "label": "hepatitis B screening", "max_age_days": None}
RESULT_COLUMNS = ["row", "patient_id", "payer", "date_of_service", "hcpcs", "drug_supply",
                  "rendering_npi", "decision", "codes", "billing", "authorization", "reasons"]
TWO_ROWS = (
    "patient_id,payer,date_of_service,hcpcs,site_of_care,diagnosis_codes,dose_mg,packages\n"
    "P001,MEDICARE-B,2026-03-10,J1745,office,M05.79,400,100x4\n"
    "P001,NOPE,2026-03-10,J1745,office,M05.79,400,\n"
)


def test_documentation_not_on_file_is_reported_and_added_as_the_last_csv_column(
        runner, tmp_path) -> None:
    """A TB screening too old and a hepatitis B screening never filed: the decision stays
    eligible (a warning), the report and the CSV name both items with their status."""
    build_world(policy={"documentation_required": [TB, HBV]},
                patient={"documents": [("TB_SCREENING", dt.date(2024, 12, 1))]})
    schedule = tmp_path / "tomorrow.csv"
    schedule.write_text(TWO_ROWS)
    out = tmp_path / "results.csv"
    result = runner.invoke(args=["check", str(schedule), "--out", str(out)])
    assert result.exit_code == 0, result.output
    lacking = ("TB screening within 12 months (out of date: on file from 2024-12-01); "
               "hepatitis B screening (missing)")
    assert f"Row 2 documentation: {lacking}" in result.output
    assert "Row 3 documentation" not in result.output
    with out.open(newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    # Clients read the columns by position too: the new one only comes last.
    assert reader.fieldnames == [*RESULT_COLUMNS, "documentation_missing"]
    assert rows[0]["decision"] == "eligible"
    assert "DOCUMENTATION_MISSING" in rows[0]["codes"]
    assert rows[0]["documentation_missing"] == lacking
    assert rows[1]["decision"] == "error"
    assert rows[1]["documentation_missing"] == ""


def test_documentation_on_file_leaves_the_column_empty(runner, tmp_path) -> None:
    build_world(policy={"documentation_required": [TB]},
                patient={"documents": [("TB_SCREENING", dt.date(2025, 9, 1))]})
    schedule = tmp_path / "tomorrow.csv"
    schedule.write_text(TWO_ROWS)
    out = tmp_path / "results.json"
    result = runner.invoke(args=["check", str(schedule), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "documentation:" not in result.output
    assert json.loads(out.read_text())[0]["documentation_missing"] == ""


def test_a_hostile_checklist_label_stays_neutralised_in_the_csv(runner, tmp_path) -> None:
    hostile = {"code": "CHART_NOTES", "label": '=HYPERLINK("http://evil","chart notes")',
               "max_age_days": None}
    build_world(policy={"documentation_required": [hostile, HBV]})
    schedule = tmp_path / "tomorrow.csv"
    schedule.write_text(TWO_ROWS)
    out = tmp_path / "results.csv"
    result = runner.invoke(args=["check", str(schedule), "--out", str(out)])
    assert result.exit_code == 0, result.output
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0]["documentation_missing"] == (
        "'=HYPERLINK(\"http://evil\",\"chart notes\") (missing); hepatitis B screening (missing)")
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row.values())


def test_kept_rows_report_the_documentation_of_their_stored_check(runner, tmp_path) -> None:
    build_world(policy={"documentation_required": [TB]})
    schedule = tmp_path / "kept.csv"
    schedule.write_text(
        "appointment_id,patient_id,payer,date_of_service,hcpcs,site_of_care,diagnosis_codes,"
        "dose_mg,packages\n"
        "APT-1,P001,MEDICARE-B,2026-03-10,J1745,office,M05.79,400,100x4\n")
    out = tmp_path / "kept-results.csv"
    result = runner.invoke(args=["check", str(schedule), "--store", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Row 2 documentation: TB screening within 12 months (missing)" in result.output
    with out.open(newline="") as handle:
        reader = csv.DictReader(handle)
        [row] = list(reader)
    assert reader.fieldnames == ["appointment_id", *RESULT_COLUMNS, "documentation_missing"]
    assert row["documentation_missing"] == "TB screening within 12 months (missing)"


def _check_noting_process(chunk):
    """The chunk check, with the id of the process that ran it on each result."""
    return [{**summary, "pid": os.getpid()} for summary in _CHECK_CHUNK(chunk)]


def test_a_schedule_checked_in_two_processes_reads_as_checked_in_one(committed_db, monkeypatch):
    from policy_service.extensions import db
    from policy_service.services import schedule

    build_world()
    db.session.commit()
    header, *lines = SCHEDULE.strip().splitlines()
    rows = schedule.read_schedule("\n".join([header, *lines * 4]) + "\n", "day.csv")
    monkeypatch.setattr(schedule, "CHUNK_SIZE", 3)  # 16 rows: six chunks
    monkeypatch.setattr(schedule, "_check_chunk", _check_noting_process)
    here = schedule.check_schedule(rows)
    forked = schedule.check_schedule(rows, processes=2)
    assert {r.pop("pid") for r in here} == {os.getpid()}
    assert os.getpid() not in {r.pop("pid") for r in forked}
    assert forked == here
    assert [r["row"] for r in here] == list(range(2, 18))
    assert [r["decision"] for r in here[:4]] == ["eligible", "not_eligible", "error", "error"]


def test_only_a_long_schedule_is_checked_in_several_processes() -> None:
    from policy_service.cli import PARALLEL_CHECK_ROWS, checker_processes

    assert checker_processes(PARALLEL_CHECK_ROWS - 1) == 1
    assert checker_processes(PARALLEL_CHECK_ROWS) == (os.cpu_count() or 1)


def test_an_in_memory_database_is_never_checked_in_forked_processes() -> None:
    from sqlalchemy import make_url

    from policy_service.services.schedule import in_memory

    assert in_memory(make_url("sqlite://"))
    assert in_memory(make_url("sqlite:///:memory:"))
    assert in_memory(make_url("sqlite:///file:shared?mode=memory&cache=shared&uri=true"))
    assert not in_memory(make_url("sqlite:////srv/policy/policy.db"))
    assert not in_memory(make_url("postgresql+psycopg://postgres@127.0.0.1/policy"))
