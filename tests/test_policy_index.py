"""The in-memory policy index and the batch's set-based loading."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event

from policy_service.auth import create_token, create_user
from policy_service.database import PreparedRead
from policy_service.extensions import db
from policy_service.models import PolicyVersion
from policy_service.schemas.eligibility import load_request
from policy_service.services.eligibility import check_batch
from policy_service.services.policy_index import index_cache
from policy_service.services.usage import record_usage
from tests.eligibility.world import (
    BASE_REQUEST,
    METHOTREXATE_FAILED,
    build_world,
    request_with,
)
from tests.factories import make_authorization, make_patient


@contextmanager
def count_queries() -> Iterator[list[str]]:
    """Every statement sent to the database in the block: through SQLAlchemy, and the prepared
    reads that go to the driver directly."""
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:  # noqa: ANN001
        statements.append(statement)

    prepared_rows = PreparedRead.rows

    def counted_rows(read: PreparedRead, **params):  # noqa: ANN202
        statements.append(str(read.statement))
        return prepared_rows(read, **params)

    event.listen(db.engine, "before_cursor_execute", count)
    PreparedRead.rows = counted_rows  # type: ignore[method-assign]
    try:
        yield statements
    finally:
        PreparedRead.rows = prepared_rows  # type: ignore[method-assign]
        event.remove(db.engine, "before_cursor_execute", count)


def test_index_is_rebuilt_when_a_policy_changes(session) -> None:
    build_world()
    first = check_batch([load_request(BASE_REQUEST)])[0]
    assert first["decision"] == "eligible"
    before = index_cache.current()
    version = session.query(PolicyVersion).one()
    version.covered_diagnoses = ["M45"]
    session.flush()
    after = index_cache.current()
    assert after is not before
    second = check_batch([load_request(BASE_REQUEST)])[0]
    assert second["decision"] == "not_eligible"


def test_unchanged_store_reuses_the_index(session) -> None:
    build_world()
    assert index_cache.current() is index_cache.current()


def test_a_batch_costs_the_same_queries_for_1_or_60_rows(session) -> None:
    build_world()
    for number in range(60):
        patient = make_patient(f"B{number:03}", therapies=[METHOTREXATE_FAILED])
        make_authorization(f"B-{number:03}", patient=patient)
    index_cache.current()
    one = [load_request(request_with(patient={"id": "B000"}))]
    many = [load_request(request_with(patient={"id": f"B{n:03}"})) for n in range(60)]
    with count_queries() as single:
        check_batch(one)
    with count_queries() as batch:
        results = check_batch(many)
    assert all(r["decision"] == "eligible" for r in results)
    assert len(batch) == len(single) <= 10


def test_recorded_use_is_what_eligibility_sees(session) -> None:
    build_world()
    record_usage("A-1001", "CLM-9", dt.date(2026, 2, 10), 130, 1, "biller@example.org")
    result = check_batch([load_request(BASE_REQUEST)])[0]
    assert result["authorization"]["remaining_units"] == 30
    assert "AUTH_UNITS_EXCEEDED" in [f["code"] for f in result["findings"]]


def test_recorded_use_sets_the_last_dose_for_the_interval_rule(session) -> None:
    build_world()
    record_usage("A-1001", "CLM-9", dt.date(2026, 3, 1), 40, 1, "biller@example.org")
    result = check_batch([load_request(BASE_REQUEST)])[0]
    finding = next(f for f in result["findings"] if f["code"] == "DOSE_TOO_SOON")
    assert "Only 9 days" in finding["message"]


def test_four_concurrent_clients_never_crash_the_engine(app, committed_db) -> None:
    build_world()
    token = create_token(create_user("sched@example.org", "scheduler", "long-enough-pw"))
    db.session.commit()
    headers = {"Authorization": f"Bearer {token}"}
    bodies = [BASE_REQUEST, request_with(diagnosis_codes=["L40.0"]),
              request_with(dose={"mg": 900}, packages=[{"amount": 100, "count": 9}]),
              request_with(payer="NOPE")]
    expected = ["eligible", "not_eligible", "not_eligible", None]
    failures: list[str] = []

    def hammer(worker: int) -> None:
        local = app.test_client()
        for round_number in range(40):
            index = (worker + round_number) % len(bodies)
            response = local.post("/api/v1/eligibility", json=bodies[index], headers=headers)
            decision = response.json.get("decision")
            if decision != expected[index]:
                failures.append(f"{worker}/{round_number}: {response.status_code} {decision}")

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert failures == []


def test_an_index_rebuilt_after_another_writer_reads_their_rows(committed_db) -> None:
    """The index is shared by the whole process under the stored revision: when another writer
    moved it, the rebuild must read what they stored, not the rows this session loaded before
    (which it would then serve to every request until the next change)."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from policy_service.models import Provider, ProviderEnrollment
    from tests.factories import make_payer, make_provider

    make_provider(enrollments=[(make_payer(), dt.date(2024, 1, 1), None)])
    db.session.commit()
    index_cache.clear()
    # This request has the provider and its enrollment loaded (a page that showed it); its
    # transaction ends without expiring them, so SQLite lets the other writer in.
    this = db.session()
    this.expire_on_commit = False
    try:
        provider = db.session.scalar(select(Provider))
        enrollment_id = provider.enrollments[0].id
        db.session.commit()
        with Session(db.engine) as other:
            other.get(ProviderEnrollment, enrollment_id).effective_to = dt.date(2024, 12, 31)
            other.commit()
        [enrollment] = index_cache.current().providers[provider.npi].enrollments
    finally:
        this.expire_on_commit = True
    assert enrollment.effective_to == dt.date(2024, 12, 31)


def test_two_databases_at_the_same_revision_keep_their_own_index(app, tmp_path) -> None:
    """The index is kept per database: another store at the same revision value (0 before
    any policy change) must not be answered from this one's index."""
    from sqlalchemy import update

    from policy_service import create_app
    from policy_service.database import migrate_database
    from policy_service.models import Revision
    from policy_service.services.policy_index import POLICY_REVISION, stored_revision
    from tests.factories import make_payer

    other = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'other.db'}",
                        "SECRET_KEY": "x" * 32, **{
                            key: app.config[key] for key in
                            ("SECURITY_PASSWORD_HASH", "SECURITY_PASSWORD_SALT")}})
    indexes = []
    try:
        for application, payer in ((other, "OTHER-PAYER"), (app, "THIS-PAYER")):
            with application.app_context():
                if application is other:
                    migrate_database()
                make_payer(payer)
                db.session.flush()
                moved = db.session.execute(update(Revision).where(
                    Revision.name == POLICY_REVISION).values(value=7)).rowcount
                if not moved:
                    db.session.add(Revision(name=POLICY_REVISION, value=7))
                assert stored_revision() == 7
                indexes.append(set(index_cache.current().payers))
                db.session.rollback()
                db.session.remove()
    finally:
        with other.app_context():
            db.engine.dispose()
        index_cache.clear()
    assert indexes[0] == {"OTHER-PAYER"} and "THIS-PAYER" in indexes[1]
    assert "OTHER-PAYER" not in indexes[1]
