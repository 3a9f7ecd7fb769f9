"""What a person sees on the console: the first admin's password last and boxed, each request
logged once, and command reports without log lines in them."""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from flask import Flask

from policy_service.cli import password_box
from policy_service.database import migrate_database
from policy_service.extensions import db
from tests.claims.world import build_world
from tests.live import command_env, policy_service_bin, served

SAMPLE_837 = Path(__file__).parent / "data" / "claims_sample.837"


def _get(url: str) -> None:
    with contextlib.suppress(urllib.error.HTTPError):
        urllib.request.urlopen(url, timeout=10)  # noqa: S310 - loopback URL we built


def test_password_box_says_how_to_reset_it() -> None:
    box = password_box("admin@example.org", "s3cret-pass", "http://127.0.0.1:8000/login")
    lines = box.splitlines()
    assert lines[0] == lines[-1] and set(lines[0]) == {"+", "-"}
    assert all(line.startswith("| ") and line.endswith(" |") for line in lines[1:-1])
    assert len({len(line) for line in lines}) == 1
    assert "password: s3cret-pass" in box
    assert "policy-service users change_password admin@example.org" in box


def test_quickstart_prints_the_password_last_and_logs_each_request_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'quick.db'}"
    log = tmp_path / "console.txt"
    with served(url, log, "quickstart") as base:
        _get(f"{base}/login")
        _get(f"{base}/api/v1/payers")
        time.sleep(0.5)
    lines = log.read_text().splitlines()
    box_end = max(i for i, line in enumerate(lines) if line.startswith("+-"))
    before_box = lines[:box_end + 1]
    assert any("password: " in line for line in before_box)
    after = lines[box_end + 1:]
    # Only the request log follows the box: gunicorn's start-up lines do not bury it.
    requests = [json.loads(line) for line in after if line.startswith("{")]
    assert [line for line in after if not line.startswith("{")] == []
    # served() waited for /login to answer; then one read of the payers.
    assert [(r["route"], r["status"]) for r in requests if r["event"] == "request"][-2:] == [
        ("/login", 200), ("/api/v1/payers", 401)]
    # And no request line anywhere else, e.g. through a handler Alembic put on the root logger.
    assert sum("/api/v1/payers" in line for line in lines) == 1


def test_migrating_leaves_the_root_logger_alone(app: Flask) -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    with app.app_context():
        migrate_database()
    assert root.handlers == before


def test_check_claims_prints_its_report_without_log_lines(app: Flask, tmp_path: Path) -> None:
    from policy_service import create_app

    url = f"sqlite:///{tmp_path / 'claims.db'}"
    world = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "x" * 32})
    with world.app_context():
        migrate_database()
        build_world()
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    result = subprocess.run(  # noqa: S603 - our own script
        [policy_service_bin(), "check-claims", str(SAMPLE_837)], env=command_env(url),
        capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "Claim CLM-0001: clean"
    assert "2 claims: 2 checked (1 clean, 1 needing correction)" in result.stdout
    assert "{" not in result.stdout
    assert result.stderr == ""


def test_every_command_is_listed_and_the_web_apps_own_still_run(tmp_path: Path) -> None:
    # Most commands build the app without its API and pages; those that need them still work.
    env = command_env(f"sqlite:///{tmp_path / 'empty.db'}")
    listed = subprocess.run(  # noqa: S603 - our own script
        [policy_service_bin(), "--help"], env=env, capture_output=True, text=True, timeout=120,
        check=False)
    commands = {line.split()[0] for line in listed.stdout.split("Commands:")[1].splitlines()
                if line.strip()}
    assert {"check", "import", "serve", "openapi", "routes", "users", "run"} <= commands
    document = subprocess.run(  # noqa: S603 - our own script
        [policy_service_bin(), "openapi", "print"], env=env, capture_output=True, text=True,
        timeout=120, check=False)
    assert document.returncode == 0, document.stderr
    assert "/api/v1/eligibility" in json.loads(document.stdout)["paths"]
