"""``policy-service check``: a day's schedule from CSV or JSON, a table, results to a file."""

from __future__ import annotations

import csv
import json

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
