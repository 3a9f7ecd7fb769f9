"""Prepared reads return exactly what SQLAlchemy's own execution returns, on both databases."""

from __future__ import annotations

import datetime as dt
import sqlite3

import pytest
from sqlalchemy import String, bindparam, column, select, table
from sqlalchemy.exc import DBAPIError

from policy_service.auth import create_token, create_user, user_for_token
from policy_service.database import PreparedRead, run_serialized
from policy_service.extensions import db
from policy_service.models import Authorization, Patient, Therapy
from policy_service.services import eligibility
from policy_service.services.policy_index import _STORED_REVISION, stored_revision


@pytest.fixture
def seeded(runner) -> None:
    result = runner.invoke(args=["seed"])
    assert result.exit_code == 0, result.output


def _as_sqlalchemy_gives(statement, params) -> list[tuple]:
    return [tuple(row) for row in db.session.connection().execute(statement, params)]


def test_each_patients_context_is_what_sqlalchemy_reads(session, seeded) -> None:
    patients = session.execute(select(Patient.id, Patient.external_id)).all()
    numbers = session.scalars(select(Authorization.number)).all()
    assert len(patients) >= 8 and numbers
    for patient_id, external_id in patients:
        prepared = eligibility._ONE_PATIENT.rows(external_id=external_id)
        assert prepared, external_id
        assert sorted(prepared, key=repr) == sorted(_as_sqlalchemy_gives(
            eligibility._PATIENTS, {"external_ids": [external_id]}), key=repr)
        # Dates, decimals and JSON lists come back converted, not as the driver's text.
        _id, _external, birth_date, weight, *_rest = prepared[0]
        assert isinstance(birth_date, dt.date)
        for number in [None, *numbers]:
            prepared = eligibility._ONE_PATIENTS_AUTHORIZATIONS.rows(
                patient_id=patient_id, number=number)
            expected = _as_sqlalchemy_gives(eligibility._AUTHORIZATIONS, {
                "patient_ids": [patient_id], "numbers": [number] if number else []})
            assert sorted(prepared, key=repr) == sorted(expected, key=repr)
            for row in prepared:
                assert isinstance(row[4], list) and isinstance(row[10], dt.date)


def test_one_request_and_a_batch_load_the_same_context(session, seeded) -> None:
    from tests.benchmarks.run import loaded_requests

    requests = loaded_requests()
    batch = eligibility.load_context(requests)
    for request in requests:
        alone = eligibility.load_context([request])
        assert alone.patients.get(request.patient_id) == batch.patients.get(request.patient_id)
        patient = alone.patients.get(request.patient_id)
        if patient is None:
            continue
        mine = {key: value for key, value in batch.authorizations.items()
                if key[0] == patient.id}
        assert alone.authorizations == mine
        assert alone.last_doses == {key: day for key, day in batch.last_doses.items()
                                    if key[0] == patient.id}


def test_a_prepared_read_sees_the_transactions_own_pending_writes(session, seeded) -> None:
    patient = session.scalar(select(Patient).where(Patient.external_id == "DEMO-001"))
    before = len(eligibility._ONE_PATIENT.rows(external_id="DEMO-001"))
    session.add(Therapy(patient=patient, drug="sulfasalazine", start=dt.date(2020, 1, 1),
                        end=dt.date(2020, 6, 1), outcome="inadequate_response"))
    rows = eligibility._ONE_PATIENT.rows(external_id="DEMO-001")
    assert len(rows) == before + 1
    assert ("sulfasalazine", dt.date(2020, 1, 1)) in {(row[5], row[6]) for row in rows}


def test_revision_and_token_reads(session, seeded) -> None:
    assert stored_revision() == _as_sqlalchemy_gives(_STORED_REVISION.statement, {})[0][0]
    user = create_user("coord@example.org", "coordinator", "long-enough-pw")
    token = create_token(user)
    assert user_for_token(token).email == "coord@example.org"
    assert user_for_token(token + "x") is None
    assert eligibility._ONE_PATIENT.rows(external_id="NOT-ON-FILE") == []


def test_a_database_error_is_sqlalchemys_own_without_the_values(session, seeded) -> None:
    """A failed prepared read raises what the same read through SQLAlchemy raises (its
    ``DBAPIError`` family, parameters hidden as the engine says), so every handler that knows
    database errors (the CLI, the admin, ``run_serialized``) knows this one; the session then
    rolls back and reads again."""
    statement = select(Patient.id).where(Patient.external_id == bindparam("external_id"))
    broken = select(table("no_such_table", column("id"))).where(
        column("external_id") == bindparam("external_id", type_=String))
    with pytest.raises(DBAPIError) as through_sqlalchemy:
        db.session.connection().execute(broken, {"external_id": "DEMO-001"})
    session.rollback()
    with pytest.raises(DBAPIError) as prepared:
        PreparedRead(broken).rows(external_id="DEMO-001")
    assert type(prepared.value) is type(through_sqlalchemy.value)
    assert "DEMO-001" not in str(prepared.value)
    session.rollback()
    assert PreparedRead(statement).scalar(external_id="DEMO-001") is not None


def test_a_prepared_read_told_the_database_is_locked_is_run_again(app, tmp_path) -> None:
    """SQLite can answer "database is locked" to a read while another writer commits;
    ``run_serialized`` runs the operation again, for a prepared read as for any other.

    Only SQLite locks the whole file, so this runs on a SQLite store of its own whichever
    database the suite uses."""
    from policy_service import create_app
    from policy_service.database import migrate_database

    store = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'locked.db'}",
                        "SECRET_KEY": "x" * 32, **{
                            key: app.config[key] for key in
                            ("SECURITY_PASSWORD_HASH", "SECURITY_PASSWORD_SALT")}})
    with store.app_context():
        migrate_database()
        try:
            other = sqlite3.connect(db.engine.url.database, timeout=0, isolation_level=None)
            # This session's connection gives up at once instead of waiting out the other
            # writer.
            raw = db.session.connection().connection.driver_connection
            raw.execute("PRAGMA busy_timeout = 0")
            other.execute("BEGIN EXCLUSIVE")
            attempts = []

            def read() -> int:
                attempts.append(1)
                if len(attempts) == 2:
                    other.rollback()  # the other writer is done when the read runs again
                return stored_revision()

            try:
                revision = run_serialized(read)
            finally:
                raw.execute("PRAGMA busy_timeout = 30000")
                other.close()
            assert len(attempts) == 2
            assert revision == stored_revision() == 0
        finally:
            db.session.remove()
            db.engine.dispose()
