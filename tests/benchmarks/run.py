"""Eligibility benchmark (issue 3 item 8): prints figures next to their targets, PASS or MISS.

Run from the repository root::

    .venv/bin/python -m tests.benchmarks.run            # full run, a few minutes
    .venv/bin/python -m tests.benchmarks.run --quick    # smoke run, small counts
    .venv/bin/python -m tests.benchmarks.run --only http

It builds throw-away SQLite databases in a temporary folder (``policy-service init`` + ``seed``,
plus a large synthetic store), so it never touches ``instance/``. All network load stays on
127.0.0.1 and every phase is bounded in count and time. Not a test: nothing here fails a build.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import gc
import http.client
import json
import os
import random
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

REPO = Path(__file__).resolve().parents[2]
# The console script installed next to this interpreter (``pip install -e .``).
CLI = [str(Path(sys.executable).parent / "policy-service")]
DAY = "2026-11-26"  # the demo data is dated around this day (see seed_data/demo.yaml)

# A realistic day at a rheumatology infusion suite over the demo patients and payers: mostly
# clean infusions, plus the everyday blockers (expiring or exhausted authorization, pending or
# denied requests, a non-preferred product, an uncovered diagnosis, a home infusion).
REQUESTS: list[dict[str, Any]] = [
    # Inflectra at UHC, approved and current: eligible.
    {"patient": {"id": "DEMO-001"}, "payer": "UHC", "date_of_service": DAY, "hcpcs": "Q5103",
     "diagnosis_codes": ["M05.79"], "site_of_care": "office", "dose": {"mg_per_kg": 3}},
    # Avsola at BCBS-NC in an infusion centre: authorization expiring within 30 days (warn).
    {"patient": {"id": "DEMO-002"}, "payer": "BCBS-NC", "date_of_service": DAY, "hcpcs": "Q5121",
     "diagnosis_codes": ["M06.09"], "site_of_care": "ambulatory_infusion_center",
     "dose": {"mg_per_kg": 5}},
    # Renflexis at UHC-MA: 45 units needed, 40 left (blocked on units).
    {"patient": {"id": "DEMO-003"}, "payer": "UHC-MA", "date_of_service": DAY, "hcpcs": "Q5104",
     "diagnosis_codes": ["M45.9"], "site_of_care": "office", "dose": {"mg_per_kg": 5}},
    # Denosumab biosimilar at BCBS-NC: authorization still pending.
    {"patient": {"id": "DEMO-004"}, "payer": "BCBS-NC", "date_of_service": "2026-12-05",
     "hcpcs": "Q5136", "diagnosis_codes": ["M81.0"], "site_of_care": "office",
     "dose": {"mg": 60}},
    # Tocilizumab at Cigna: denied authorization, step therapy not met.
    {"patient": {"id": "DEMO-005"}, "payer": "CIGNA", "date_of_service": DAY, "hcpcs": "J3262",
     "diagnosis_codes": ["M05.79"], "site_of_care": "office", "dose": {"mg_per_kg": 8}},
    # Abatacept at Aetna: the authorization expired last year.
    {"patient": {"id": "DEMO-006"}, "payer": "AETNA", "date_of_service": DAY, "hcpcs": "J0129",
     "diagnosis_codes": ["M06.9"], "site_of_care": "office", "dose": {"mg": 750}},
    # Belimumab at home with Aetna: eligible.
    {"patient": {"id": "DEMO-007"}, "payer": "AETNA", "date_of_service": DAY, "hcpcs": "J0490",
     "diagnosis_codes": ["M32.14"], "site_of_care": "home", "dose": {"mg_per_kg": 10}},
    # Medicare Part B, Inflectra, no authorization needed: eligible.
    {"patient": {"id": "DEMO-008"}, "payer": "MEDICARE-B", "date_of_service": DAY,
     "hcpcs": "Q5103", "diagnosis_codes": ["M05.79"], "site_of_care": "office",
     "dose": {"mg_per_kg": 3}},
    # Originator Remicade at UHC, where biosimilars are preferred: not eligible.
    {"patient": {"id": "DEMO-001"}, "payer": "UHC", "date_of_service": DAY, "hcpcs": "J1745",
     "diagnosis_codes": ["M05.79"], "site_of_care": "office", "dose": {"mg_per_kg": 3}},
    # Medicare Part B, infliximab for a diagnosis the label does not cover: not eligible.
    {"patient": {"id": "DEMO-008"}, "payer": "MEDICARE-B", "date_of_service": DAY,
     "hcpcs": "Q5103", "diagnosis_codes": ["M32.14"], "site_of_care": "office",
     "dose": {"mg_per_kg": 5}},
    # Inflectra at UHC again, explicit packages: eligible (the commonest case, weighted twice).
    {"patient": {"id": "DEMO-001"}, "payer": "UHC", "date_of_service": "2026-12-10",
     "hcpcs": "Q5103", "diagnosis_codes": ["M05.79"], "site_of_care": "office",
     "dose": {"mg": 250}, "packages": [{"amount": 100, "count": 3}]},
    # Medicare Part B, Inflectra in hospital outpatient: eligible.
    {"patient": {"id": "DEMO-008"}, "payer": "MEDICARE-B", "date_of_service": "2026-12-10",
     "hcpcs": "Q5103", "diagnosis_codes": ["M06.9"], "site_of_care": "hospital_outpatient",
     "dose": {"mg_per_kg": 3}},
]

class _Discard:
    """A file that forgets what is written to it (log lines rendered but not printed)."""

    def write(self, _text: str) -> int:
        return 0

    def flush(self) -> None:
        return None


_DEVNULL = _Discard()

# Issue 15's targets, for 2 cores at low load.
TARGETS = {
    "full_p50_ms": 0.3,
    "http_rps": 1000.0,
    "http_p99_ms": 20.0,
    "http_read_rps": 2000.0,
    "schedule_s": 5.0,
    "large_small_ratio": 1.5,
    "memory_growth_mb": 10.0,
}


# ---------------------------------------------------------------------------------------------
# Reporting


@dataclass
class Report:
    """Figures collected so far, printed as they come and summarised at the end."""

    lines: list[str] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)

    def figure(self, label: str, value: str) -> None:
        """Print a figure that has no target."""
        line = f"  {label:<52} {value}"
        print(line, flush=True)
        self.lines.append(line)

    def target(self, label: str, value: float, unit: str, limit: float, at_most: bool) -> None:
        """Print a figure next to its target, with PASS or MISS."""
        ok = value <= limit if at_most else value >= limit
        sign = "<=" if at_most else ">="
        verdict = "PASS" if ok else "MISS"
        line = f"  {label:<52} {value:>10.3f} {unit:<5} target {sign} {limit:g} {unit}  {verdict}"
        print(line, flush=True)
        self.lines.append(line)
        if not ok:
            self.misses.append(label)

    def section(self, title: str) -> None:
        """Start a section of the output (with the load average: the machine may be shared)."""
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"\n== {title}   (load average {load})", flush=True)
        self.lines.append(f"== {title}")


def percentile(samples: list[float], fraction: float) -> float:
    """Return the nearest-rank percentile of ``samples`` (fraction in 0..1)."""
    ordered = sorted(samples)
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]


def latency_line(samples_s: list[float], cpu_s: list[float] | None = None) -> str:
    """Format rate, p50 and p99 of per-call durations (seconds), and of their CPU time.

    Other work shares the machine, so wall time includes waiting for a core; the CPU time of
    this process per call is the figure to compare between runs.
    """
    total = sum(samples_s)
    line = (f"{len(samples_s) / total:>10.0f} /s   p50 {percentile(samples_s, .5) * 1e3:.3f} ms"
            f"   p99 {percentile(samples_s, .99) * 1e3:.3f} ms")
    if cpu_s:
        line += (f"   CPU p50 {percentile(cpu_s, .5) * 1e3:.3f} ms"
                 f" p99 {percentile(cpu_s, .99) * 1e3:.3f} ms")
    return line


@dataclass
class Stopwatch:
    """Wall and CPU seconds of a block. CPU counts this process and the children it waited
    for (``policy-service`` commands and servers run as child processes)."""

    wall: float = 0.0
    cpu: float = 0.0

    def __str__(self) -> str:
        return f"{self.wall:>10.3f} s, CPU {self.cpu:.3f} s"


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@contextmanager
def stopwatch() -> Iterator[Stopwatch]:
    """Time the ``with`` block: ``with stopwatch() as watch: ...``, then ``watch.wall``."""
    watch = Stopwatch()
    wall, cpu = time.perf_counter(), _cpu_seconds()
    try:
        yield watch
    finally:
        watch.wall = time.perf_counter() - wall
        watch.cpu = _cpu_seconds() - cpu


def rss_mb() -> float:
    """Resident set size of this process in MB, from /proc/self/status."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("VmRSS not found in /proc/self/status")


# ---------------------------------------------------------------------------------------------
# Databases


def run_cli(args: list[str], url: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run a ``policy-service`` command against the database at ``url``; fail loudly."""
    env = {**os.environ, "DATABASE_URL": url}
    result = subprocess.run([*CLI, *args], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=600, **kwargs)
    if result.returncode != 0:
        raise RuntimeError(f"policy-service {' '.join(args)} failed:\n{result.stderr}")
    return result


def seeded_database(folder: Path) -> str:
    """Create and seed the small store through the CLI; return its URL."""
    url = f"sqlite:///{folder / 'small.db'}"
    run_cli(["init"], url)
    run_cli(["seed"], url)
    return url


def make_large_store(small_path: Path, large_path: Path, policies: int,
                     authorizations: int) -> str:
    """Copy the seeded store and bulk-insert synthetic payers, policies, patients, auths."""
    from sqlalchemy import create_engine, insert, select

    from policy_service.models import (
        Authorization,
        Drug,
        Patient,
        Payer,
        Policy,
        PolicyVersion,
    )
    from policy_service.models.policy import PolicyCode

    shutil.copyfile(small_path, large_path)
    url = f"sqlite:///{large_path}"
    engine = create_engine(url)
    rng = random.Random(7)
    payer_count = max(policies // 10, 1)
    patient_count = max(authorizations // 5, 1)
    with engine.begin() as conn:
        drugs = list(conn.execute(select(Drug.hcpcs)).scalars())
        conn.execute(insert(Payer.__table__), [
            {"code": f"SYN-{i:05d}", "name": f"Synthetic payer {i}", "kind": "commercial",
             "requires_jw_jz": i % 2 == 0, "requires_ndc": False, "timely_filing_days": 180,
             "complex_admin_for_biologics": True, "version": 1}
            for i in range(payer_count)])
        payer_ids = dict(conn.execute(select(Payer.code, Payer.id)).tuples().all())
        synthetic = [pid for code, pid in payer_ids.items() if code.startswith("SYN-")]
        conn.execute(insert(Policy.__table__), [
            {"code": f"SYN/{i:06d}", "payer_id": synthetic[i % len(synthetic)],
             "title": f"Synthetic policy {i}"} for i in range(policies)])
        policy_rows = conn.execute(
            select(Policy.id, Policy.payer_id).where(Policy.code.like("SYN/%"))).all()
        versions = []
        for policy_id, payer_id in policy_rows:
            codes = rng.sample(drugs, 3)
            versions.append({
                "policy_id": policy_id, "number": 1, "effective_from": dt.date(2024, 1, 1),
                "effective_to": None, "status": "active", "hcpcs": codes,
                "prior_auth_required": True, "covered_diagnoses": ["M05", "M06"],
                "preferred_products": [], "sites_of_care": ["office", "home"],
                "max_dose_mg": None, "max_dose_mg_per_kg": 10, "max_dose_units": None,
                "min_days_between_doses": 28, "min_age": 18, "max_age": None,
                "new_starts_only_lookback_days": None, "approval_days": 365,
                "documentation_required": [], "source": "synthetic", "notes": None,
                "version": 1, "_payer_id": payer_id})
        conn.execute(insert(PolicyVersion.__table__),
                     [{k: v for k, v in row.items() if k != "_payer_id"} for row in versions])
        version_ids = dict(conn.execute(
            select(PolicyVersion.policy_id, PolicyVersion.id)
            .join(Policy, Policy.id == PolicyVersion.policy_id)
            .where(Policy.code.like("SYN/%"))).tuples().all())
        conn.execute(insert(PolicyCode.__table__), [
            {"policy_version_id": version_ids[row["policy_id"]], "hcpcs": code,
             "payer_id": row["_payer_id"]} for row in versions for code in row["hcpcs"]])
        conn.execute(insert(Patient.__table__), [
            {"external_id": f"SYN-P{i:07d}", "birth_date": dt.date(1950 + i % 50, 1 + i % 12, 1),
             "weight_kg": 50 + i % 60, "version": 1} for i in range(patient_count)])
        patient_ids = list(conn.execute(
            select(Patient.id).where(Patient.external_id.like("SYN-P%"))).scalars())
        batch: list[dict[str, Any]] = []
        for i in range(authorizations):
            batch.append({
                "number": f"SYN-A-{i:08d}", "patient_id": patient_ids[i % len(patient_ids)],
                "payer_id": synthetic[rng.randrange(len(synthetic))],
                "hcpcs": [drugs[rng.randrange(len(drugs))]], "status": "approved",
                "approved_units": 400, "approved_visits": 10, "used_units": 40,
                "used_visits": 1, "valid_from": dt.date(2026, 1, 1),
                "valid_to": dt.date(2026, 12, 31), "diagnoses": ["M05.79"],
                "site_of_care": "office", "notes": None, "version": 1})
            if len(batch) == 20_000:
                conn.execute(insert(Authorization.__table__), batch)
                batch = []
        if batch:
            conn.execute(insert(Authorization.__table__), batch)
    engine.dispose()
    return url


def _json_line(line: str) -> dict[str, Any]:
    try:
        entry = json.loads(line)
    except ValueError:
        return {}
    return entry if isinstance(entry, dict) else {}


@contextmanager
def app_context(url: str) -> Iterator[Any]:
    """An application bound to ``url`` with a fresh policy index (the cache is per process)."""
    from policy_service import create_app
    from policy_service.extensions import db
    from policy_service.services.policy_index import index_cache

    app = create_app({"SQLALCHEMY_DATABASE_URI": url})
    # Log lines are still rendered (their cost is part of a check) but not printed here.
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=_DEVNULL))
    index_cache.clear()
    with app.app_context():
        try:
            yield app
        finally:
            db.session.remove()
            db.engine.dispose()
            index_cache.clear()


def loaded_requests() -> list[Any]:
    """The request mix as EligibilityRequest objects (loaded once, as the API would)."""
    from policy_service.errors import Invalid
    from policy_service.schemas.eligibility import load_request

    loaded = [load_request(item) for item in REQUESTS]
    bad = [i for i, r in enumerate(loaded) if isinstance(r, Invalid)]
    if bad:
        raise RuntimeError(f"benchmark requests {bad} do not load: {loaded[bad[0]].lines()}")
    return loaded


# ---------------------------------------------------------------------------------------------
# In-process phases


@dataclass
class Samples:
    """Per-call wall and CPU seconds of a timed loop."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def line(self) -> str:
        """Rate, p50 and p99 of wall time, and p50 and p99 of CPU time."""
        return latency_line(self.wall, self.cpu)


def time_calls(call: Callable[[int], Any], count: int,
               between: Callable[[], None] | None = None) -> Samples:
    """Time ``count`` calls of ``call(i)``; ``between`` runs untimed after each call."""
    clock, cpu_clock = time.perf_counter, time.process_time
    samples = Samples()
    for i in range(count):
        start, start_cpu = clock(), cpu_clock()
        call(i)
        samples.wall.append(clock() - start)
        samples.cpu.append(cpu_clock() - start_cpu)
        if between is not None:
            between()
    return samples


def full_check_samples(requests: list[Any], count: int) -> Samples:
    """Time ``check_batch([request])`` calls; each ends its transaction like an HTTP request."""
    from policy_service.extensions import db
    from policy_service.services.eligibility import check_batch

    n = len(requests)
    time_calls(lambda i: check_batch([requests[i % n]]), min(count, 200), db.session.rollback)
    return time_calls(lambda i: check_batch([requests[i % n]]), count, db.session.rollback)


def built_cases(requests: list[Any]) -> list[dict[str, Any]]:
    """The engine facts of the request mix, built from the stored data."""
    from policy_service.services.eligibility import build_case, load_context
    from policy_service.services.policy_index import index_cache

    index = index_cache.current()
    context = load_context(requests)
    return [build_case(r, index, context).case for r in requests]


def phase_in_process(report: Report, url: str, count: int) -> None:
    """Engine alone, oracle, full check: rates and latencies on the seeded store."""
    from policy_service import engine, oracle
    from policy_service.services.eligibility import check_batch

    with app_context(url):
        requests = loaded_requests()
        decisions = [r["decision"] if isinstance(r, dict) else "error"
                     for r in check_batch(requests)]
        mix = {d: decisions.count(d) for d in sorted(set(decisions))}
        report.figure("request mix (decisions)", ", ".join(f"{n} {d}" for d, n in mix.items()))
        cases = built_cases(requests)
        n = len(cases)
        for case in cases:  # warm up (registers the ruleset)
            engine.evaluate("eligibility", case)
            oracle.evaluate("eligibility", case)
        samples = time_calls(lambda i: engine.evaluate("eligibility", cases[i % n]), count)
        report.figure("engine alone (durable evaluate)", samples.line())
        oracle_samples = time_calls(lambda i: oracle.evaluate("eligibility", cases[i % n]),
                                    count)
        report.figure("oracle alone (pure Python)", oracle_samples.line())
        ratio = sum(samples.cpu) / sum(oracle_samples.cpu)
        report.figure("engine / oracle CPU time per evaluation", f"{ratio:>10.2f} x")
        full = full_check_samples(requests, count)
        report.figure("full check (check_batch([request]))", full.line())
        report.target("full in-process check p50", percentile(full.wall, .5) * 1e3, "ms",
                      TARGETS["full_p50_ms"], at_most=True)
        report.target("full in-process check CPU p50", percentile(full.cpu, .5) * 1e3, "ms",
                      TARGETS["full_p50_ms"], at_most=True)


def phase_memory(report: Report, url: str, evaluations: int) -> None:
    """RSS before and after many engine evaluations (durable's C core must not leak)."""
    from policy_service import engine

    with app_context(url):
        cases = built_cases(loaded_requests())
        n = len(cases)
        for i in range(2_000):
            engine.evaluate("eligibility", cases[i % n])
        gc.collect()
        before = rss_mb()
        for i in range(evaluations):
            engine.evaluate("eligibility", cases[i % n])
        gc.collect()
        after = rss_mb()
    report.figure(f"RSS before / after {evaluations:,} evaluations",
                  f"{before:>10.1f} MB / {after:.1f} MB")
    report.target("memory growth", after - before, "MB", TARGETS["memory_growth_mb"],
                  at_most=True)


def phase_large_store(report: Report, url: str, folder: Path, count: int, policies: int,
                      authorizations: int) -> None:
    """Full-check p50 on the seeded store vs a large one; identical requests."""
    small_path = Path(url.removeprefix("sqlite:///"))
    start = time.perf_counter()
    large_url = make_large_store(small_path, folder / "large.db", policies, authorizations)
    report.figure(f"built large store ({policies:,} policies, {authorizations:,} auths)",
                  f"{time.perf_counter() - start:>10.1f} s")
    p50 = {}
    for name, store in (("small", url), ("large", large_url)):
        with app_context(store):
            requests = loaded_requests()
            samples = full_check_samples(requests, count)
        p50[name] = percentile(samples.cpu, .5)
        report.figure(f"full check, {name} store", samples.line())
    report.target("large / small full-check CPU p50", p50["large"] / p50["small"], "x",
                  TARGETS["large_small_ratio"], at_most=True)


# ---------------------------------------------------------------------------------------------
# Subprocess phases: the schedule command and the HTTP server


def write_schedule(path: Path, rows: int) -> None:
    """Write a CSV schedule of ``rows`` appointments cycling through the request mix."""
    columns = ["patient_id", "payer", "date_of_service", "hcpcs", "site_of_care",
               "diagnosis_codes", "dose_mg", "dose_mg_per_kg", "packages"]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for i in range(rows):
            item = REQUESTS[i % len(REQUESTS)]
            packages = " ".join(f"{p['amount']}x{p['count']}" for p in item.get("packages", []))
            writer.writerow([
                item["patient"]["id"], item["payer"], item["date_of_service"], item["hcpcs"],
                item.get("site_of_care", ""), " ".join(item["diagnosis_codes"]),
                item["dose"].get("mg", ""), item["dose"].get("mg_per_kg", ""), packages])


def phase_schedule(report: Report, url: str, folder: Path, rows: int) -> None:
    """A ``rows``-row schedule through ``policy-service check FILE --out``, end to end."""
    schedule = folder / "schedule.csv"
    out = folder / "results.csv"
    write_schedule(schedule, rows)
    with stopwatch() as watch:
        result = run_cli(["check", str(schedule), "--out", str(out)], url)
    with out.open() as handle:
        checked = sum(1 for _ in csv.DictReader(handle))
    summary = result.stdout.strip().splitlines()[-2] if result.stdout.strip() else ""
    report.figure(f"schedule results ({checked:,} rows)", summary)
    report.figure("wall and CPU time of the command", str(watch))
    report.target(f"{rows:,}-row schedule via `policy-service check`", watch.wall, "s",
                  TARGETS["schedule_s"], at_most=True)


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def call(port: int, method: str, path: str, body: bytes | None, token: str,
         conn: http.client.HTTPConnection | None) -> tuple[int, http.client.HTTPConnection]:
    """Send one request; reuse ``conn`` when the server kept it open, else reconnect once."""
    headers = {"Authorization": f"Bearer {token}"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    for attempt in range(2):
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.will_close:
                conn.close()
                return response.status, None  # type: ignore[return-value]
            return response.status, conn
        except (ConnectionError, http.client.HTTPException):
            conn.close()
            conn = None
            if attempt == 1:
                raise
    raise AssertionError("unreachable")


def wait_for_port(port: int, process: subprocess.Popen[bytes], seconds: float) -> None:
    """Wait until the server accepts connections (or fail if it exited)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with status {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server did not listen on port {port} within {seconds} s")


def server_cpu_seconds(pid: int) -> float:
    """CPU seconds used so far by the server process and its worker processes (/proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    total = 0.0
    for process in (pid, *map(int, children)):
        try:
            fields = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


@dataclass
class LoadRun:
    """What a closed-loop load of ``clients`` concurrent clients measured."""

    samples: list[float]
    statuses: dict[int, int]
    errors: list[str]
    wall: float
    server_cpu: float

    @property
    def rate(self) -> float:
        """Answered requests per second."""
        return len(self.samples) / self.wall


def load(port: int, server_pid: int, token: str, method: str, path: str,
         bodies: list[bytes | None], clients: int, seconds: float,
         max_requests: int) -> LoadRun:
    """Run ``clients`` threads sending requests back to back until the time or count ends."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    statuses: dict[int, int] = {}
    errors: list[str] = []
    lock = threading.Lock()
    issued = iter(range(max_requests))
    deadline = time.perf_counter() + seconds

    def client(slot: int) -> None:
        conn: http.client.HTTPConnection | None = None
        clock = time.perf_counter
        while clock() < deadline:
            with lock:
                i = next(issued, None)
            if i is None:
                break
            start = clock()
            try:
                status, conn = call(port, method, path, bodies[i % len(bodies)], token, conn)
            except (OSError, http.client.HTTPException) as exc:
                with lock:
                    errors.append(repr(exc))
                conn = None
                continue
            latencies[slot].append(clock() - start)
            with lock:
                statuses[status] = statuses.get(status, 0) + 1

    threads = [threading.Thread(target=client, args=(s,)) for s in range(clients)]
    cpu_before = server_cpu_seconds(server_pid)
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    samples = [s for slot in latencies for s in slot]
    if not samples:
        raise RuntimeError(f"no HTTP request to {path} succeeded: {errors[:3]}")
    return LoadRun(samples, statuses, errors, wall, server_cpu_seconds(server_pid) - cpu_before)


_WRK_SCRIPT = """
local bodies = {%(bodies)s}
local i = 0
wrk.method = "%(method)s"
wrk.headers["Authorization"] = "Bearer %(token)s"
wrk.headers["Content-Type"] = "application/json"
request = function()
  i = i + 1
  return wrk.format(nil, "%(path)s", nil, bodies[(i %% #bodies) + 1])
end
"""

_WRK_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def _wrk_seconds(text: str) -> float:
    number = text.rstrip("usm")
    return float(number) * _WRK_UNITS[text[len(number):]]


@dataclass
class WrkRun:
    """What wrk measured: its rate, latency percentiles and error counts."""

    requests: int
    wall: float
    percentiles: dict[int, float]
    non_2xx: int
    socket_errors: str
    server_cpu: float

    @property
    def rate(self) -> float:
        """Answered requests per second."""
        return self.requests / self.wall


def wrk_load(folder: Path, port: int, server_pid: int, token: str, method: str, path: str,
             bodies: list[bytes | None], clients: int, seconds: float) -> WrkRun:
    """Load the server with wrk (C, event-driven): unlike Python client threads it leaves
    nearly all of both cores to the server, so the figures are the server's."""
    lua = [json.dumps(b.decode() if b else "") for b in bodies]
    script = folder / f"wrk-{method.lower()}.lua"
    script.write_text(_WRK_SCRIPT % {"bodies": ", ".join(lua), "method": method,
                                     "token": token, "path": path})
    cpu_before = server_cpu_seconds(server_pid)
    result = subprocess.run(
        ["wrk", "-t2", f"-c{clients}", f"-d{max(int(seconds), 1)}s", "--latency",
         "-s", str(script), f"http://127.0.0.1:{port}{path}"],
        capture_output=True, text=True, timeout=seconds + 60, check=True)
    server_cpu = server_cpu_seconds(server_pid) - cpu_before
    out = result.stdout
    requests, wall = 0, seconds
    percentiles: dict[int, float] = {}
    non_2xx, socket_errors = 0, ""
    in_distribution = False
    for line in out.splitlines():
        words = line.split()
        if line.startswith("  Latency Distribution"):
            in_distribution = True
        elif in_distribution and len(words) == 2 and words[0].endswith("%"):
            percentiles[int(words[0][:-1])] = _wrk_seconds(words[1])
        elif "requests in" in line:
            in_distribution = False
            requests, wall = int(words[0]), _wrk_seconds(words[3].rstrip(","))
        elif line.startswith("  Non-2xx"):
            non_2xx = int(words[-1])
        elif line.startswith("  Socket errors"):
            socket_errors = line.strip()
    if not requests:
        raise RuntimeError(f"wrk answered nothing:\n{out}\n{result.stderr}")
    return WrkRun(requests, wall, percentiles, non_2xx, socket_errors, server_cpu)


def report_wrk(report: Report, what: str, run: WrkRun, clients: int, workers: int,
               rate_target: float, p99_target: float | None) -> None:
    """Print a wrk run's figures next to their targets."""
    report.figure(f"{what}: {run.requests:,} requests in {run.wall:.1f} s (wrk)",
                  f"{clients} connections, {workers} workers, {run.non_2xx} not 2xx"
                  f"{', ' + run.socket_errors if run.socket_errors else ''}")
    report.figure(f"{what}: latency (wrk)",
                  f"p50 {run.percentiles.get(50, float('nan')) * 1e3:.2f} ms   "
                  f"p90 {run.percentiles.get(90, float('nan')) * 1e3:.2f} ms")
    report.figure(f"{what}: server CPU per request (all workers)",
                  f"{run.server_cpu / run.requests * 1e3:>10.3f} ms")
    report.target(f"{what}: requests per second", run.rate, "rps", rate_target, at_most=False)
    if p99_target is not None:
        report.target(f"{what}: p99 latency", run.percentiles[99] * 1e3, "ms", p99_target,
                      at_most=True)
    if run.non_2xx or run.socket_errors:
        report.misses.append(f"{what}: errors under load")


def report_load(report: Report, what: str, run: LoadRun, clients: int, workers: int,
                rate_target: float, p99_target: float | None) -> None:
    """Print a load run's figures next to its targets."""
    report.figure(f"{what}: {len(run.samples):,} requests in {run.wall:.1f} s",
                  f"{clients} clients, {workers} workers, status {run.statuses}, "
                  f"{len(run.errors)} errors")
    report.figure(f"{what}: latency (client side)",
                  f"p50 {percentile(run.samples, .5) * 1e3:.2f} ms")
    report.figure(f"{what}: server CPU per request (all workers)",
                  f"{run.server_cpu / len(run.samples) * 1e3:>10.3f} ms "
                  f"(so {len(run.samples) / max(run.server_cpu, 1e-9) * (os.cpu_count() or 1):.0f}"
                  f"/s if the server had every core)")
    report.target(f"{what}: requests per second", run.rate, "rps", rate_target, at_most=False)
    if p99_target is not None:
        report.target(f"{what}: p99 latency", percentile(run.samples, .99) * 1e3, "ms",
                      p99_target, at_most=True)


def phase_http(report: Report, url: str, folder: Path, clients: int, seconds: float,
               max_requests: int, workers: int) -> None:
    """Requests per second and latency against ``policy-service serve`` on 127.0.0.1:
    eligibility checks, then a plain authenticated read (per-request overhead alone).

    The load comes from wrk when it is installed (Debian's ``wrk``): Python client threads
    spend about as much CPU as the server, on a machine whose two cores they share with it.
    """
    use_wrk = shutil.which("wrk") is not None
    report.figure("load generator", "wrk" if use_wrk else
                  "Python threads (install wrk for figures that are the server's alone)")
    run_cli(["create-user", "bench@example.org", "--role", "scheduler"], url)
    token = run_cli(["create-token", "bench@example.org"], url).stdout.strip().splitlines()[-1]
    port = free_port()
    env = {**os.environ, "DATABASE_URL": url}
    log = (folder / "server.log").open("wb")
    server = subprocess.Popen([*CLI, "serve", "--port", str(port), "--workers", str(workers)],
                              cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, server, 30)
        bodies: list[bytes | None] = [json.dumps(item).encode() for item in REQUESTS]
        path = "/api/v1/eligibility"
        conn = None
        for i in range(100 * workers):  # warm up every worker (index, ruleset, pool)
            status, conn = call(port, "POST", path, bodies[i % len(bodies)], token, conn)
            if status != 200:
                raise RuntimeError(f"warm-up request answered {status}")
        if use_wrk:
            checks_wrk = wrk_load(folder, port, server.pid, token, "POST", path, bodies,
                                  clients, seconds)
            reads_wrk = wrk_load(folder, port, server.pid, token, "GET", "/api/v1/payers",
                                 [None], clients, seconds)
        else:
            checks = load(port, server.pid, token, "POST", path, bodies, clients, seconds,
                          max_requests)
            reads = load(port, server.pid, token, "GET", "/api/v1/payers", [None], clients,
                         seconds, max_requests)
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
    if use_wrk:
        report_ceiling(report, folder, clients, seconds, workers)
        report_wrk(report, "checks", checks_wrk, clients, workers, TARGETS["http_rps"],
                   TARGETS["http_p99_ms"])
        report_worker_time(report, folder, path, checks_wrk.requests)
        report_wrk(report, "plain read GET /api/v1/payers", reads_wrk, clients, workers,
                   TARGETS["http_read_rps"], None)
        return
    report_load(report, "checks", checks, clients, workers, TARGETS["http_rps"],
                TARGETS["http_p99_ms"])
    report_worker_time(report, folder, path, len(checks.samples))
    report_load(report, "plain read GET /api/v1/payers", reads, clients, workers,
                TARGETS["http_read_rps"], None)


def report_ceiling(report: Report, folder: Path, clients: int, seconds: float,
                   workers: int) -> None:
    """The same load against an empty Flask app under the same gunicorn settings: no check,
    no database, no login. What this machine allows before any of our code runs."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--worker-class", "sync",
         "--bind", f"127.0.0.1:{port}", "tests.benchmarks.empty_app:app"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, server, 30)
        run = wrk_load(folder, port, server.pid, "", "GET", "/", [None], clients, seconds)
    finally:
        server.terminate()
        server.wait(timeout=15)
    report.figure("ceiling: empty Flask app, same server (wrk)",
                  f"{run.rate:>10.0f} /s   p99 {run.percentiles[99] * 1e3:.2f} ms   "
                  f"server CPU {run.server_cpu / run.requests * 1e3:.3f} ms/request")


def report_worker_time(report: Report, folder: Path, path: str, count: int) -> None:
    """Time inside the worker, from the app's request log lines: the rest of a client's
    latency is waiting in the listen queue behind the other clients."""
    served = [entry["ms"] / 1e3 for entry in map(_json_line, (folder / "server.log")
                                                 .read_text().splitlines())
              if entry.get("event") == "request" and entry.get("route") == path][-count:]
    if served:
        report.figure("checks: time in the worker (request log)",
                      f"p50 {percentile(served, .5) * 1e3:.2f} ms   "
                      f"p99 {percentile(served, .99) * 1e3:.2f} ms")


# ---------------------------------------------------------------------------------------------


PHASES = ("in_process", "memory", "http", "schedule", "large_store")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark phases and print the figures; exit 0 even when a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke run")
    parser.add_argument("--only", choices=PHASES, action="append",
                        help="run only this phase (repeatable)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    quick = args.quick
    phases = args.only or list(PHASES)
    folder = Path(tempfile.mkdtemp(prefix="policy-bench-"))
    report = Report()
    print(f"policy-service benchmark ({'quick' if quick else 'full'}); Python "
          f"{sys.version.split()[0]}; {os.cpu_count()} CPUs; work folder {folder}", flush=True)
    try:
        start = time.perf_counter()
        url = seeded_database(folder)
        report.figure("init + seed of the small store", f"{time.perf_counter() - start:>10.1f} s")
        if "in_process" in phases:
            report.section("in-process, seeded store")
            phase_in_process(report, url, 500 if quick else 20_000)
        if "memory" in phases:
            report.section("memory")
            phase_memory(report, url, 5_000 if quick else 100_000)
        if "http" in phases:
            report.section("HTTP: policy-service serve")
            phase_http(report, url, folder, clients=16, seconds=3 if quick else 20,
                       max_requests=500 if quick else 20_000, workers=2)
        if "schedule" in phases:
            report.section("schedule: policy-service check FILE")
            phase_schedule(report, url, folder, 500 if quick else 10_000)
        if "large_store" in phases:
            report.section("store size: seeded vs large")
            phase_large_store(report, url, folder, count=300 if quick else 5_000,
                              policies=500 if quick else 10_000,
                              authorizations=5_000 if quick else 100_000)
    finally:
        if args.keep:
            print(f"\nkept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    print("\n== summary")
    print(f"  targets missed: {', '.join(report.misses)}" if report.misses
          else "  every target met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
