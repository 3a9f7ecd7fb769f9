"""Recording authorization use: idempotent, reversible, never over-spent, even concurrently."""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import select

from policy_service.auth import create_token, create_user
from policy_service.extensions import db
from policy_service.models import (
    Authorization,
    AuthorizationUsage,
    ChangeRecord,
    Patient,
    Payer,
)
from tests.factories import make_authorization

USE = {"claim_reference": "CLM-77", "date_of_service": "2026-03-10", "units": 35, "visits": 1}


def post_usage(client: Any, headers: dict[str, str], body: dict[str, Any],
               number: str = "A-1001") -> Any:
    return client.post(f"/api/v1/authorizations/{number}/usage", json=body, headers=headers)


def test_record_then_repeat_is_idempotent(client, session, auth_header) -> None:
    make_authorization()
    headers = auth_header("biller")
    first = post_usage(client, headers, USE)
    assert first.status_code == 201, first.json
    assert first.json == {"number": "A-1001", "claim_reference": "CLM-77", "recorded": True,
                          "used_units": 35, "used_visits": 1, "remaining_units": 125,
                          "remaining_visits": 3}
    again = post_usage(client, headers, USE)
    assert again.status_code == 200
    assert again.json["remaining_units"] == 125


def test_change_history_records_the_biller(client, session, make_user) -> None:
    make_authorization()
    user, token = make_user("biller", email="billy@example.org")
    post_usage(client, {"Authorization": f"Bearer {token}"}, USE)
    record = session.scalars(select(ChangeRecord).where(
        ChangeRecord.entity_type == "authorization", ChangeRecord.action == "update")).one()
    assert record.actor == "billy@example.org"
    assert (record.before["used_units"], record.after["used_units"]) == (0, 35)


def test_void_gives_units_back(client, session, auth_header) -> None:
    make_authorization()
    headers = auth_header("biller")
    post_usage(client, headers, USE)
    response = client.delete("/api/v1/authorizations/A-1001/usage/CLM-77", headers=headers)
    assert response.status_code == 200
    assert response.json["remaining_units"] == 160
    assert client.delete("/api/v1/authorizations/A-1001/usage/CLM-77",
                         headers=headers).status_code == 404


@pytest.mark.parametrize(("overrides", "body", "code"), [
    ({"used_units": 150}, USE, "AUTH_UNITS_EXCEEDED"),
    ({"used_visits": 4}, USE, "AUTH_VISITS_EXHAUSTED"),
])
def test_overspending_is_a_409(client, session, auth_header, overrides, body, code) -> None:
    make_authorization(**overrides)
    response = post_usage(client, auth_header("biller"), body)
    assert response.status_code == 409
    assert response.json["code"] == code
    auth = session.scalars(select(Authorization)).one()
    assert auth.used_units == overrides.get("used_units", 0)


def test_date_outside_window_is_422(client, session, auth_header) -> None:
    make_authorization()
    response = post_usage(client, auth_header("biller"), {**USE, "date_of_service": "2027-01-01"})
    assert response.status_code == 422
    assert response.json["errors"][0]["field"] == "date_of_service"


def test_bad_body_names_fields(client, session, auth_header) -> None:
    make_authorization()
    response = post_usage(client, auth_header("biller"), {"units": -1, "extra": 1})
    assert response.status_code == 422
    fields = {e["field"] for e in response.json["errors"]}
    assert fields == {"units", "extra", "claim_reference", "date_of_service"}


def test_unknown_authorization_is_404(client, session, auth_header) -> None:
    assert post_usage(client, auth_header("biller"), USE, number="NOPE").status_code == 404


@pytest.mark.parametrize(("role", "status"), [("biller", 201), ("admin", 201),
                                              ("scheduler", 403), ("coordinator", 403)])
def test_who_may_record_use(client, session, auth_header, role, status) -> None:
    make_authorization()
    assert post_usage(client, auth_header(role), USE).status_code == status


@pytest.fixture
def committed_authorization(app, committed_db):
    """An authorization with 50 units and a biller token, committed for real.

    ``committed_db`` empties every table afterwards. A hand-written teardown deleting only the
    rows this test created left the change history (and revision rows) of them behind, and
    tests/test_bundle.py counted those records when it ran later in the same database.
    """
    payer = Payer(code="CONC", name="Concurrency payer")
    patient = Patient(external_id="CONC-P")
    auth = Authorization(number="CONC-A", payer=payer, patient=patient,
                         hcpcs=["J1745"], status="approved", approved_units=50,
                         approved_visits=None, valid_from=dt.date(2026, 1, 1),
                         valid_to=dt.date(2026, 12, 31))
    db.session.add(auth)
    token = create_token(create_user("conc@example.org", "biller", "long-enough-pw"))
    db.session.commit()
    # Close the session: reading the expired rows again would begin a transaction whose
    # SQLite read lock keeps the concurrent writers waiting.
    db.session.close()
    return "CONC-A", token


def test_concurrent_claims_never_overspend(app, committed_authorization) -> None:
    number, token = committed_authorization
    headers = {"Authorization": f"Bearer {token}"}
    statuses: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(12)

    def spend(i: int) -> None:
        client = app.test_client()
        start.wait()
        response = post_usage(client, headers, {**USE, "claim_reference": f"C-{i}",
                                                "units": 10}, number=number)
        with lock:
            statuses.append(response.status_code)

    threads = [threading.Thread(target=spend, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert Counter(statuses) == {201: 5, 409: 7}
    with app.app_context():
        auth = db.session.scalar(select(Authorization).where(Authorization.number == number))
        usages = db.session.scalars(select(AuthorizationUsage).where(
            AuthorizationUsage.authorization_id == auth.id)).all()
        assert auth.used_units == 50 == sum(u.units for u in usages)
        assert auth.remaining_units == 0


@pytest.mark.parametrize("status", ["pending", "denied", "cancelled", "expired"])
def test_use_is_refused_on_an_authorization_that_is_not_approved(client, session, auth_header,
                                                                 status) -> None:
    make_authorization(status=status)
    response = post_usage(client, auth_header("biller"), USE)
    assert response.status_code == 409
    assert response.json["code"] == "AUTH_NOT_APPROVED"


def test_claim_reference_must_be_usable_in_a_path(client, session, auth_header) -> None:
    make_authorization()
    response = post_usage(client, auth_header("biller"), {**USE, "claim_reference": "CLM/77"})
    assert response.status_code == 422
    assert response.json["errors"][0]["field"] == "claim_reference"


def test_same_reference_with_other_figures_is_a_409(client, session, auth_header) -> None:
    make_authorization()
    headers = auth_header("biller")
    post_usage(client, headers, USE)
    response = post_usage(client, headers, {**USE, "units": 40})
    assert response.status_code == 409
    assert response.json["code"] == "USAGE_ALREADY_RECORDED"
    assert "void it" in response.json["detail"]
