"""Two hosts behind a balancer, on loopback: two ``policy-service serve`` processes (gunicorn,
2 workers each) over the suite's one database. Concurrent billers record use of one
authorization through both, while schedulers check eligibility through both: the authorization
is never over-spent, and both hosts give the same answer to the same request.

Bounded: 40 uses and 40 checks, every request with a 15 s timeout, the whole test under 60 s
once the servers are up. On PostgreSQL (CI's second run) this is the production shape.
"""

from __future__ import annotations

import copy
import json
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import func, select

from policy_service.auth import create_token, create_user
from policy_service.extensions import db
from policy_service.models import Authorization, AuthorizationUsage
from tests.eligibility.world import BASE_REQUEST, build_world
from tests.live import served

APPROVED_UNITS = 160
UNITS_PER_USE = 10
USES = 40  # 16 fit; 24 must be refused
BUDGET_SECONDS = 60


def call(base: str, path: str, token: str, body: dict[str, Any]) -> tuple[int, Any]:
    """POST ``body`` as JSON; return (status, parsed body)."""
    request = urllib.request.Request(  # noqa: S310 - loopback URL we built
        f"{base}{path}", data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def identical_requests() -> list[dict[str, Any]]:
    """Eligibility requests whose answers differ from each other (and so test something)."""
    requests = [copy.deepcopy(BASE_REQUEST) for _ in range(5)]
    requests[1]["diagnosis_codes"] = ["L40.0"]
    requests[2]["dose"] = {"mg": 350}
    requests[3]["patient"] = {"id": "NOT-ON-FILE"}
    requests[4]["payer"] = "NOPE"
    return requests


def test_two_hosts_never_overspend_and_agree(app: Flask, committed_db: None,
                                            tmp_path: Path) -> None:
    build_world(authorization={"approved_units": APPROVED_UNITS, "approved_visits": None})
    biller = create_token(create_user("two-hosts-biller@example.org", "biller", "x" * 12))
    scheduler = create_token(create_user("two-hosts-scheduler@example.org", "scheduler",
                                         "x" * 12))
    db.session.commit()
    # No transaction of ours stays open (on SQLite its read lock would stall the hosts' writes).
    db.session.close()
    url = app.config["SQLALCHEMY_DATABASE_URI"]

    with ExitStack() as stack:
        hosts = [stack.enter_context(served(url, tmp_path / f"host-{n}.log")) for n in (1, 2)]
        started = time.monotonic()

        def use(number: int) -> tuple[int, Any]:
            return call(hosts[number % 2], "/api/v1/authorizations/A-1001/usage", biller, {
                "claim_reference": f"CLM-{number}", "date_of_service": "2026-03-10",
                "units": UNITS_PER_USE})

        def check(number: int) -> tuple[int, Any]:
            return call(hosts[number % 2], "/api/v1/eligibility", scheduler, BASE_REQUEST)

        with ThreadPoolExecutor(max_workers=8) as pool:
            uses = pool.map(use, range(USES))
            checks = pool.map(check, range(USES))
            use_statuses = [status for status, _ in uses]
            check_answers = list(checks)

        fits = APPROVED_UNITS // UNITS_PER_USE
        assert sorted(use_statuses) == [201] * fits + [409] * (USES - fits)
        assert {status for status, _ in check_answers} == {200}
        # While units ran out, each check saw a consistent authorization: never below zero.
        assert all(body["authorization"]["remaining_units"] >= 0 for _, body in check_answers)

        # Quiet now: the same request gets the same answer from either host.
        for request in identical_requests():
            first, second = (call(host, "/api/v1/eligibility", scheduler, request)
                             for host in hosts)
            assert first == second, request
        elapsed = time.monotonic() - started
    assert elapsed < BUDGET_SECONDS

    db.session.expire_all()
    authorization = db.session.scalar(select(Authorization).where(
        Authorization.number == "A-1001"))
    recorded = db.session.scalar(select(func.sum(AuthorizationUsage.units)).where(
        AuthorizationUsage.authorization_id == authorization.id))
    assert authorization.used_units == recorded == APPROVED_UNITS
    assert authorization.remaining_units == 0
