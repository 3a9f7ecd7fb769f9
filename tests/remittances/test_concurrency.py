"""Concurrent imports (real commits, several clients): never over-spend, never import twice.

On PostgreSQL the authorization rows are locked and the payment's unique key makes a second
import of the same file wait for the first; on SQLite the writers are serialised and retried.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal

import pytest
from flask import Flask
from sqlalchemy import func, select

from policy_service.auth import create_token, create_user
from policy_service.extensions import db
from policy_service.models import Authorization, AuthorizationUsage, Drug, Patient, Remittance
from policy_service.services.reason_codes import load_reason_codes, read_reason_code_file
from tests.remittances.builder import Cas, Claim, Line, build_835
from tests.remittances.conftest import SEED_FILE

THREADS = 8


@pytest.fixture
def committed_world(app: Flask, committed_db: None) -> Iterator[str]:
    """ACME, J1745, P001 and A-1001 with 100 units and no visit limit, committed; a biller."""
    from tests.factories import make_payer

    load_reason_codes(read_reason_code_file(SEED_FILE))
    payer = make_payer("ACME", name="Acme Health", kind="commercial")
    patient = Patient(external_id="P001", birth_date=dt.date(1961, 3, 2))
    db.session.add_all([
        Drug(hcpcs="J1745", name="Remicade", generic="infliximab",
             billing_unit_amount=Decimal(10)),
        Authorization(number="A-1001", patient=patient, payer=payer, hcpcs=["J1745"],
                      status="approved", approved_units=100, approved_visits=None,
                      valid_from=dt.date(2026, 1, 1), valid_to=dt.date(2026, 12, 31)),
    ])
    token = create_token(create_user("conc-biller@example.org", "biller", "long-enough-pw"))
    db.session.commit()
    yield token


def run_in_threads(app: Flask, token: str, bodies: list[str]) -> list[int]:
    """POST every body at once from its own client; return the status codes."""
    statuses: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(len(bodies))

    def send(body: str) -> None:
        client = app.test_client()
        start.wait()
        response = client.post("/api/v1/remittances", data=body, headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/edi-x12"})
        with lock:
            statuses.append(response.status_code)

    threads = [threading.Thread(target=send, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return statuses


def test_concurrent_payments_never_overspend_an_authorization(app: Flask,
                                                              committed_world: str) -> None:
    line = Line("J1745", 600, units=20, adjustments=[Cas("CO", "45", 100)])
    bodies = [build_835([Claim(f"CLM-{i}", [line], authorization="A-1001")], trace=f"T-{i}")
              for i in range(THREADS)]
    statuses = run_in_threads(app, committed_world, bodies)
    assert Counter(statuses) == {201: THREADS}
    db.session.expire_all()
    auth = db.session.scalars(select(Authorization).where(Authorization.number == "A-1001")).one()
    usages = db.session.scalars(select(AuthorizationUsage)).all()
    assert auth.used_units == 100 == sum(u.units for u in usages) and len(usages) == 5
    assert db.session.scalar(select(func.count()).select_from(Remittance)) == THREADS


def test_the_same_file_imported_concurrently_counts_once(app: Flask,
                                                         committed_world: str) -> None:
    line = Line("J1745", 600, units=20, adjustments=[Cas("CO", "45", 100)])
    body = build_835([Claim("CLM-SAME", [line], authorization="A-1001")], trace="T-SAME")
    statuses = run_in_threads(app, committed_world, [body] * 4)
    assert sorted(statuses) == [200, 200, 200, 201]
    db.session.expire_all()
    auth = db.session.scalars(select(Authorization).where(Authorization.number == "A-1001")).one()
    assert auth.used_units == 20
    assert db.session.scalar(select(func.count()).select_from(Remittance)) == 1
