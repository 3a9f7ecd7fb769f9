"""Stored-schedule benchmark (issue 9): prints figures next to their targets, PASS or MISS.

Run from the repository root::

    .venv/bin/python -m tests.benchmarks.appointments           # full run, about a minute
    .venv/bin/python -m tests.benchmarks.appointments --quick   # smoke run, small counts

Three figures, on throw-away SQLite stores built with ``policy-service init`` + ``seed``:

* re-reading 2,000 stored appointments after a policy change: every answer recomputed and
  current (compared with a fresh eligibility check), total time;
* listing one week (about 300 appointments) with their checks through
  ``GET /api/v1/appointments`` (in-process WSGI client, token auth, JSON), unchanged data: p50;
* ``policy-service check FILE --store`` of a 10,000-row CSV schedule, end to end.

Not a test: nothing here fails a build.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.benchmarks.run import (
    REQUESTS,
    Report,
    app_context,
    percentile,
    run_cli,
    seeded_database,
    stopwatch,
)

TARGETS = {"reread_s": 2.0, "week_p50_ms": 50.0, "store_s": 10.0}
FIRST_DAY = dt.date(2026, 11, 23)  # a Monday near the demo data's dates
DAYS = 49  # seven weeks: 2,000 appointments are about 290 a week


def planned(i: int) -> tuple[str, dict[str, Any]]:
    """The i-th appointment: the benchmark's request mix, spread over seven weeks."""
    item = {k: v for k, v in REQUESTS[i % len(REQUESTS)].items() if k != "prior_therapies"}
    day = FIRST_DAY + dt.timedelta(days=i % DAYS)
    return f"BENCH-{i:05d}", {**item, "date_of_service": day.isoformat()}


def store(count: int) -> None:
    """Store ``count`` appointments through the appointments service, in one transaction."""
    from policy_service.extensions import db
    from policy_service.schemas.appointments import load_appointment
    from policy_service.services.appointments import upsert_many

    items = [(appointment_id, load_appointment(body))
             for appointment_id, body in map(planned, range(count))]
    upsert_many(items, "bench@example.org")
    db.session.commit()


def change_a_policy() -> None:
    """Edit one policy version (a note), which moves the policy revision marker."""
    from sqlalchemy import select

    from policy_service.extensions import db
    from policy_service.models import PolicyVersion

    version = db.session.scalars(select(PolicyVersion).limit(1)).one()
    version.notes = f"benchmark edit {time.time()}"
    db.session.commit()


def phase_reread(report: Report, url: str, count: int) -> None:
    """Store ``count`` appointments, change a policy, read them all back: time and currency."""
    from policy_service.extensions import db
    from policy_service.services.appointments import Filters, list_with_checks
    from policy_service.services.eligibility import check_batch

    with app_context(url):
        with stopwatch() as watch:
            store(count)
        report.figure(f"store {count:,} appointments (service, one batch)", str(watch))
        change_a_policy()
        db.session.remove()
        with stopwatch() as watch:
            rows, total = list_with_checks(Filters(status=None))
            db.session.commit()
        recomputed = sum(1 for row in rows if row.check.recomputed)
        # Current means: the same answer a fresh eligibility check gives now.
        from policy_service.services.appointments import _request

        fresh = check_batch([_request(row.appointment, row.patient, row.payer) for row in rows])
        same = sum(1 for row, outcome in zip(rows, fresh, strict=True)
                   if not isinstance(outcome, Exception)
                   and outcome["decision"] == row.check.decision
                   and outcome["findings"] == row.check.result["findings"])
        report.figure("after the policy change", f"{recomputed:,} of {total:,} recomputed, "
                                                 f"{same:,} identical to a fresh check")
        report.figure("re-read: wall and CPU", str(watch))
        report.target(f"re-read {count:,} appointments after a policy change", watch.wall, "s",
                      TARGETS["reread_s"], at_most=True)
        db.session.remove()
        with stopwatch() as watch:
            rows, _ = list_with_checks(Filters(status=None))
            db.session.commit()
        again = sum(1 for row in rows if row.check.recomputed)
        report.figure("the same read again, nothing moved", f"{watch}, {again} recomputed")


def phase_week(report: Report, url: str, requests: int) -> None:
    """p50 of GET /api/v1/appointments for one week, with checks, unchanged data."""
    from policy_service.auth import create_token, create_user
    from policy_service.extensions import db

    with app_context(url) as app:
        user = create_user(f"week-{time.time_ns()}@example.org", "scheduler",
                           "benchmark-password")
        token = create_token(user)
        db.session.commit()
        db.session.remove()
        client = app.test_client()
        headers = {"Authorization": f"Bearer {token}"}
        week = f"/api/v1/appointments?from={FIRST_DAY + dt.timedelta(days=7)}" \
               f"&to={FIRST_DAY + dt.timedelta(days=13)}"
        first = client.get(week, headers=headers)
        if first.status_code != 200:
            raise RuntimeError(f"GET {week}: {first.status_code} {first.get_data(as_text=True)}")
        samples, cpu = [], []
        for _ in range(requests):
            start, start_cpu = time.perf_counter(), time.process_time()
            response = client.get(week, headers=headers)
            samples.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
            assert response.status_code == 200
        listed = len(first.json["items"])
        report.figure(f"one week: {listed} appointments, {len(first.data) / 1024:.0f} KB JSON",
                      f"p90 {percentile(samples, .9) * 1e3:.1f} ms over {requests} requests, "
                      f"CPU p50 {percentile(cpu, .5) * 1e3:.1f} ms")
        report.target("list one week with checks (unchanged), p50", percentile(samples, .5)
                      * 1e3, "ms", TARGETS["week_p50_ms"], at_most=True)
        # The work queue reads every running authorization's whole future schedule (units
        # short come from the same balance as the authorizations list).
        queue = client.get("/api/v1/worklist", headers=headers)
        if queue.status_code != 200:
            raise RuntimeError(f"GET /api/v1/worklist: {queue.status_code}")
        samples = []
        for _ in range(max(requests // 5, 3)):
            start = time.perf_counter()
            assert client.get("/api/v1/worklist", headers=headers).status_code == 200
            samples.append(time.perf_counter() - start)
        report.figure(f"work queue over the stored schedule ({len(queue.json['items'])} items)",
                      f"p50 {percentile(samples, .5) * 1e3:.1f} ms")


def write_schedule(path: Path, rows: int) -> None:
    """A CSV schedule with an appointment_id column, US dates and labels as people type."""
    columns = ["Appointment ID", "Patient ID", "Payer", "Date of service", "HCPCS",
               "Site of care", "Diagnosis codes", "Dose mg", "Dose mg per kg", "Packages"]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for i in range(rows):
            appointment_id, item = planned(i)
            day = dt.date.fromisoformat(item["date_of_service"])
            packages = " ".join(f"{p['amount']}x{p['count']}" for p in item.get("packages", []))
            writer.writerow([
                appointment_id, item["patient"]["id"], item["payer"].lower(),
                day.strftime("%m/%d/%Y"), item["hcpcs"],
                item.get("site_of_care", "").replace("_", " ").capitalize(),
                " ".join(item["diagnosis_codes"]), item["dose"].get("mg", ""),
                item["dose"].get("mg_per_kg", ""), packages])


def phase_store(report: Report, url: str, folder: Path, rows: int) -> None:
    """``policy-service check FILE --store`` of a ``rows``-row schedule, end to end."""
    schedule = folder / "schedule.csv"
    write_schedule(schedule, rows)
    with stopwatch() as watch:
        result = run_cli(["check", str(schedule), "--store"], url)
    kept = next((line for line in result.stdout.splitlines() if line.startswith("Kept")), "")
    report.figure(f"{rows:,}-row CSV kept as schedule", kept)
    report.figure("the command's wall and CPU time", str(watch))
    report.target(f"upload and store {rows:,} rows (`check FILE --store`)", watch.wall, "s",
                  TARGETS["store_s"], at_most=True)


def phase_store_in_process(report: Report, url: str, folder: Path, rows: int) -> None:
    """The same upload read and kept in a warm process (a serving host's "keep as schedule"):
    the ICD-10-CM code set, loaded once per process, is loaded before the clock starts."""
    from policy_service.domain import icd10
    from policy_service.extensions import db
    from policy_service.services.schedule import read_schedule_file, store_schedule

    schedule = folder / "schedule-warm.csv"
    write_schedule(schedule, rows)
    with app_context(url):
        start = time.perf_counter()
        icd10.is_valid_code("M05.79")
        report.figure("ICD-10-CM code set ready (0 when an earlier phase loaded it)",
                      f"{time.perf_counter() - start:>10.2f} s")
        with stopwatch() as watch:
            saved = store_schedule(read_schedule_file(schedule.read_bytes(), schedule.name),
                                   "bench@example.org")
            db.session.commit()
    report.figure("rows kept in the warm process", f"{len(saved):,}, {watch}")
    report.target(f"read and store {rows:,} rows in a warm process", watch.wall, "s",
                  TARGETS["store_s"], at_most=True)


def main(argv: list[str] | None = None) -> int:
    """Run the three phases and print the figures; exit 0 even when a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke run")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="policy-bench-appointments-"))
    report = Report()
    try:
        url = seeded_database(folder)
        store_path = folder / "store.db"
        shutil.copy(url.removeprefix("sqlite:///"), store_path)
        report.section("standing checks")
        phase_reread(report, url, 200 if args.quick else 2_000)
        phase_week(report, url, 5 if args.quick else 50)
        report.section("schedule upload kept as appointments")
        warm_path = folder / "warm.db"
        shutil.copy(store_path, warm_path)
        phase_store(report, f"sqlite:///{store_path}", folder, 500 if args.quick else 10_000)
        phase_store_in_process(report, f"sqlite:///{warm_path}", folder,
                               500 if args.quick else 10_000)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print("\n== summary")
    print(f"  targets missed: {', '.join(report.misses)}" if report.misses
          else "  every target met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
