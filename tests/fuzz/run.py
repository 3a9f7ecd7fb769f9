"""Fuzz the served OpenAPI document with schemathesis, as CI does (``.ci/run``).

Serves the app with ``policy-service serve`` (gunicorn, 2 workers) over the database named by
``DATABASE_URL`` (fresh, seeded here), then runs schemathesis with a fixed seed and a bounded
number of examples, once with an admin token and once with a biller token, all phases
including the stateful one. Fails on any 5xx or any response that breaks the document
(status, content type, schema). Prints how many requests the server answered and how many were
5xx, read from its request log.

    python tests/fuzz/run.py --port 8811 [--max-examples 15] [--budget 600]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROLES = ("admin", "biller")
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_schema_conformance")
SEED = "20261130"


def cli(*args: str, env: dict[str, str]) -> str:
    """Run one ``policy-service`` command and return its output (exit on failure)."""
    result = subprocess.run([_bin("policy-service"), *args], env=env, capture_output=True,
                            text=True, timeout=300, check=False)
    if result.returncode:
        sys.exit(f"policy-service {args[0]} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def _bin(name: str) -> str:
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else (shutil.which(name) or name)


def wait_until_up(url: str, deadline: float) -> None:
    """Wait for the server to answer (any HTTP status)."""
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)  # noqa: S310 - loopback URL we built
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.5)
    sys.exit(f"server did not come up at {url}")


def main() -> int:
    """Serve, fuzz with each role's token, stop the server, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8811)
    parser.add_argument("--max-examples", type=int, default=15)
    parser.add_argument("--budget", type=int, default=600,
                        help="seconds each schemathesis run may take before it is stopped")
    options = parser.parse_args()
    if not os.environ.get("DATABASE_URL"):
        sys.exit("Set DATABASE_URL to a fresh database (SQLite file or PostgreSQL).")
    workdir = Path(tempfile.mkdtemp(prefix="policy-fuzz-"))
    env = {**os.environ, "SECRET_KEY": "fuzz-secret-not-for-production"}
    cli("init", env=env)
    cli("seed", env=env)
    tokens = {}
    for role in ROLES:
        email = f"fuzz-{role}@example.org"
        cli("create-user", email, "--role", role, env=env)
        tokens[role] = cli("create-token", email, env=env).strip().splitlines()[-1]

    log_path = workdir / "server.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(  # noqa: S603
            [_bin("policy-service"), "serve", "--port", str(options.port), "--workers", "2"],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{options.port}"
    failed = False
    try:
        wait_until_up(f"{base}/login", time.monotonic() + 60)
        for role, token in tokens.items():
            command = [
                _bin("st"), "run", f"{base}/api/v1/openapi.json",
                "--header", f"Authorization: Bearer {token}",
                "--checks", CHECKS, "--phases", "examples,coverage,fuzzing,stateful",
                "--max-examples", str(options.max_examples), "--seed", SEED,
                "--generation-deterministic", "--request-timeout", "30",
                "--workers", "2", "--no-color", "--max-failures", "20",
                "--suppress-health-check", "all",
            ]
            print(f"== schemathesis as {role}", flush=True)
            try:
                result = subprocess.run(command, timeout=options.budget, check=False)  # noqa: S603
                failed |= result.returncode != 0
            except subprocess.TimeoutExpired:
                print(f"schemathesis as {role} ran past {options.budget}s; stopped")
                failed = True
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    statuses = []
    for line in log_path.read_text(errors="replace").splitlines():
        start = line.find("{")
        if start < 0:
            continue
        try:
            event = json.loads(line[start:])
        except ValueError:
            continue
        if event.get("event") == "request" and str(event.get("route", "")).startswith("/api/"):
            statuses.append(int(event.get("status", 0)))
    server_errors = sum(1 for status in statuses if status >= 500)
    print(f"fuzzed: {len(statuses)} API requests answered, {server_errors} with a 5xx")
    if server_errors:
        print(f"server log: {log_path}")
    return 1 if failed or server_errors else 0


if __name__ == "__main__":
    sys.exit(main())
