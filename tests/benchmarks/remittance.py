"""Remittance (X12 835) import benchmark: prints figures, never fails a build.

Run from the repository root::

    .venv/bin/python -m tests.benchmarks.remittance            # 2,000 claims
    .venv/bin/python -m tests.benchmarks.remittance --claims 200

It builds a throw-away SQLite database (``policy-service init`` + ``seed``), adds one patient and
one authorization per claim, writes an 835 paying every claim (one in ten denied CO-197), and
times reading the file, importing it through ``policy-service import-remittance``, and importing
it a second time (which changes nothing).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.remittances.builder import Cas, Claim, Line, build_835

REPO = Path(__file__).resolve().parents[2]
CLI = [str(Path(sys.executable).parent / "policy-service")]
DAY = dt.date(2026, 11, 20)


def run_cli(args: list[str], url: str) -> float:
    """Run a ``policy-service`` command against ``url``; return its wall time in seconds."""
    started = time.perf_counter()
    result = subprocess.run([*CLI, *args], cwd=REPO, env={**os.environ, "DATABASE_URL": url},
                            capture_output=True, text=True, timeout=1800, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"policy-service {' '.join(args)} failed:\n{result.stderr}")
    return time.perf_counter() - started


def add_authorizations(url: str, count: int) -> None:
    """One patient and one approved J1745 authorization at MEDICARE-B per claim."""
    from policy_service import create_app
    from policy_service.extensions import db
    from policy_service.models import Authorization, Patient, Payer

    app = create_app({"SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        payer = db.session.query(Payer).filter_by(code="MEDICARE-B").one()
        for index in range(count):
            db.session.add(Authorization(
                number=f"BENCH-A-{index}", patient=Patient(external_id=f"BENCH-{index}"),
                payer=payer, hcpcs=["J1745"], status="approved", approved_units=400,
                approved_visits=8, valid_from=DAY - dt.timedelta(days=60),
                valid_to=DAY + dt.timedelta(days=300)))
        db.session.commit()
        db.engine.dispose()


def remittance(count: int) -> str:
    """An 835 paying ``count`` claims; every tenth denied, half without REF*G1."""
    claims = []
    for index in range(count):
        drug = Line("J1745", 1000, units=35,
                    adjustments=[Cas("CO", "45", 200), Cas("CO", "253", 16)])
        admin = Line("96413", 300, adjustments=[Cas("CO", "45", 100)])
        if index % 10 == 9:
            claims.append(Claim(f"BENCH-CLM-{index}", [Line(
                "J1745", 1000, units=35, adjustments=[Cas("CO", "197", 1000)], rarcs=["N54"])],
                patient=f"BENCH-{index}", status="4"))
            continue
        claims.append(Claim(f"BENCH-CLM-{index}", [drug, admin], patient=f"BENCH-{index}",
                            authorization=f"BENCH-A-{index}" if index % 2 else None))
    return build_835(claims, payer="MEDICARE-B", trace="BENCH-TRACE", paid_on=DAY,
                     produced_on=DAY, default_day=DAY - dt.timedelta(days=10))


def main(argv: list[str] | None = None) -> int:
    """Build the data, time the phases, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=int, default=2000, help="claims in the 835")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="remit-bench-") as folder:
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        run_cli(["init"], url)
        run_cli(["seed"], url)
        add_authorizations(url, args.claims)
        text = remittance(args.claims)
        path = Path(folder) / "bench.835"
        path.write_text(text)

        from policy_service.services.x12_835 import read_835

        started = time.perf_counter()
        read_835(text)
        parse = time.perf_counter() - started
        first = run_cli(["import-remittance", str(path)], url)
        second = run_cli(["import-remittance", str(path)], url)
        size = len(text.encode()) / 1024
        print(f"835 with {args.claims} claims ({size:,.0f} KiB, {text.count('~')} segments)")
        print(f"  read and check (pyx12 + balancing): {parse:.2f} s, "
              f"{args.claims / parse:,.0f} claims/s")
        print(f"  first import (CLI, process start included): {first:.2f} s, "
              f"{args.claims / first:,.0f} claims/s")
        print(f"  same file again (nothing changes): {second:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
