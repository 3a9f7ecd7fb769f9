"""Policy lifecycle benchmark (issue 11): impact over 2,000 appointments, test of 50 cases.

Run from the repository root::

    .venv/bin/python -m tests.benchmarks.policy_lifecycle
    .venv/bin/python -m tests.benchmarks.policy_lifecycle --appointments 500 --cases 20

It builds a throw-away SQLite database in a temporary folder (``policy-service init`` and
``seed``), stores the appointments and a draft of Medicare Part B's infliximab policy, then
times the impact replay and the case run a few times each. Prints figures next to targets.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select

from tests.benchmarks.run import app_context, seeded_database

POLICY = "MEDICARE-B/infliximab"
DIAGNOSES = ("M05.79", "M06.9", "M45.9", "L40.50", "K50.90", "J45.909")
TARGETS = {"impact": 3.0, "test": 1.0}


def store_appointments(count: int) -> None:
    """Store ``count`` scheduled infliximab appointments over 200 patients, from 2027 on."""
    from policy_service.extensions import db
    from policy_service.models import Appointment, Patient, Payer

    payer = db.session.scalar(select(Payer).where(Payer.code == "MEDICARE-B"))
    patients = [Patient(external_id=f"BENCH-{n:03d}", birth_date=dt.date(1960, 1, 1),
                        weight_kg=Decimal(60 + n % 40)) for n in range(200)]
    db.session.add_all(patients)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    for n in range(count):
        db.session.add(Appointment(
            appointment_id=f"B-{n:05d}", status="scheduled", patient=patients[n % 200],
            payer=payer, hcpcs=("J1745", "Q5103", "Q5121")[n % 3],
            date_of_service=dt.date(2027, 1, 4) + dt.timedelta(days=n % 300),
            dose_mg_per_kg=Decimal(5), site_of_care="office",
            diagnosis_codes=[DIAGNOSES[n % len(DIAGNOSES)]], packages=[],
            created_at=now, created_by="benchmark", updated_at=now, updated_by="benchmark"))
    db.session.commit()


def add_cases(version: Any, count: int) -> None:
    """Give the version ``count`` cases varied from its seeded ones (dates and diagnoses)."""
    from policy_service.extensions import db
    from policy_service.services.policies import add_case
    from policy_service.services.policy_review import predecessor

    seeds = list(predecessor(version).cases)
    for n in range(count):
        base = seeds[n % len(seeds)]
        request = copy.deepcopy(base.request)
        request["date_of_service"] = (dt.date(2027, 2, 1) + dt.timedelta(days=n)).isoformat()
        request["patient"]["id"] = f"CASE-{n:03d}"
        add_case(version, f"{base.name} #{n}", request, base.expectation())
    db.session.commit()


@dataclass
class Runs:
    """Wall and CPU seconds of each timed run (CPU: the machine may be shared)."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)


def timed(call: Callable[[], Any], repeat: int) -> tuple[Runs, Any]:
    """Run ``call`` ``repeat`` times; return the seconds of each run and the last result."""
    runs, result = Runs(), None
    for _ in range(repeat):
        started, started_cpu = time.perf_counter(), time.process_time()
        result = call()
        runs.wall.append(time.perf_counter() - started)
        runs.cpu.append(time.process_time() - started_cpu)
    return runs, result


def line(name: str, runs: Runs, target: float, detail: str) -> str:
    """One figure: median and worst against the target, and the median CPU time."""
    samples = runs.wall
    worst = max(samples)
    verdict = "PASS" if worst <= target else "MISS"
    return (f"{name:<8} median {statistics.median(samples):.3f} s, worst {worst:.3f} s, "
            f"CPU median {statistics.median(runs.cpu):.3f} s "
            f"(target <= {target:.1f} s) {verdict}  {detail}")


def main(argv: list[str] | None = None) -> int:
    """Build the store, time impact and test, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appointments", type=int, default=2000)
    parser.add_argument("--cases", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="policy-lifecycle-") as folder:
        url = seeded_database(Path(folder))
        with app_context(url):
            from policy_service.extensions import db
            from policy_service.models import Policy
            from policy_service.services import policies, policy_review

            store_appointments(args.appointments)
            policy = db.session.scalar(select(Policy).where(Policy.code == POLICY))
            draft = policies.new_draft(policy, {"effective_from": dt.date(2027, 1, 1),
                                                "covered_diagnoses": ["M05", "M06", "M45"]})
            db.session.commit()
            # The first replay also brings every appointment's standing check up to date (the
            # new draft moved the policy revision); a running schedule keeps them current.
            cold, _ = timed(lambda: policy_review.impact(draft), 1)
            impact_samples, impact = timed(lambda: policy_review.impact(draft), args.repeat)
            add_cases(draft, args.cases)
            test_samples, tested = timed(
                lambda: policy_review.run_cases(draft, list(draft.cases)), args.repeat)
    load = ", ".join(f"{n:.1f}" for n in os.getloadavg())
    print(f"load average {load} on {os.cpu_count()} CPUs (figures scale with it)")
    print(line("impact", impact_samples, TARGETS["impact"],
               f"{impact['appointments']} appointments replayed, "
               f"{len(impact['changed'])} changed; first replay with stale standing checks "
               f"{cold.wall[0]:.3f} s"))
    print(line("test", test_samples, TARGETS["test"],
               f"{tested['passed'] + len(tested['failed'])} cases, "
               f"{len(tested['failed'])} failed"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
