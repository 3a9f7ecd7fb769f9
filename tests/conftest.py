"""Shared fixtures: one database per run, one rolled-back transaction per test.

The database is SQLite unless TEST_DATABASE_URL names another (CI runs the suite on both).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from flask_sqlalchemy.session import _app_ctx_id
from hypothesis import settings
from sqlalchemy import event, text
from sqlalchemy.orm import Session, scoped_session, sessionmaker

from policy_service import create_app
from policy_service.extensions import db

# Property tests run 1,000 examples by default; .ci/run selects the deep profile (10,000).
settings.register_profile("default", max_examples=1_000)
settings.register_profile("deep", max_examples=10_000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def database_url(tmp_root: Path) -> str:
    """Return the URL of this run's test database."""
    return os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{tmp_root / 'test.db'}"


@pytest.fixture(scope="session")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """The application, bound to a freshly migrated test database."""
    root = tmp_path_factory.mktemp("db")
    url = database_url(root)
    application = create_app({
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": url,
        "SECRET_KEY": "test-secret-key-not-for-production",
        "SECURITY_PASSWORD_HASH": "plaintext",
        "SECURITY_PASSWORD_SALT": "test-salt",
        "WTF_CSRF_ENABLED": False,
    })
    with application.app_context():
        _reset_schema(url)
        from policy_service.database import migrate_database

        migrate_database()
    yield application
    with application.app_context():
        db.engine.dispose()


def _reset_schema(url: str) -> None:
    if url.startswith("postgresql"):
        with db.engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))


@pytest.fixture
def session(app: Flask) -> Iterator[Session]:
    """A database session inside a transaction that is rolled back after the test."""
    with app.app_context():
        connection = db.engine.connect()
        outer = connection.begin()
        original = db.session
        # A plain Session: Flask-SQLAlchemy's own ignores ``bind`` and would use the engine,
        # committing for real.
        factory = sessionmaker(bind=connection, join_transaction_mode="create_savepoint")
        db.session = scoped_session(factory, scopefunc=_app_ctx_id)
        try:
            yield db.session
        finally:
            db.session.remove()
            db.session = original
            outer.rollback()
            connection.close()


@pytest.fixture
def bound_parameters(session: Session) -> Iterator[list[int]]:
    """How many parameters each statement binds from here to the end of the test (one entry
    per row of an executemany): PostgreSQL refuses a statement with more than 65,535."""
    counts: list[int] = []
    connection = session.connection()

    def record(_connection: Any, _cursor: Any, _statement: str, parameters: Any,
               _context: Any, executemany: bool) -> None:
        counts.extend(len(row or ()) for row in (parameters if executemany else [parameters]))

    event.listen(connection, "before_cursor_execute", record)
    try:
        yield counts
    finally:
        event.remove(connection, "before_cursor_execute", record)


@pytest.fixture
def client(app: Flask, session: Session) -> FlaskClient:
    """A test client whose requests share the test's rolled-back transaction."""
    return app.test_client()


@pytest.fixture
def runner(app: Flask, session: Session) -> FlaskCliRunner:
    """A CLI runner whose commands share the test's rolled-back transaction."""
    return app.test_cli_runner()


@pytest.fixture
def make_user(session: Session) -> Callable[..., tuple[Any, str]]:
    """Build a user with a role and return it with a fresh API token."""
    from policy_service.auth import create_token, create_user

    def build(role: str = "admin", email: str | None = None,
              password: str = "correct-horse-battery") -> tuple[Any, str]:
        user = create_user(email or f"{role}-{os.urandom(3).hex()}@example.org", role, password)
        return user, create_token(user)

    return build


@pytest.fixture
def auth_header(make_user: Callable[..., tuple[Any, str]]) -> Callable[[str], dict[str, str]]:
    """Return an ``Authorization`` header for a new user with the given role."""

    def header(role: str = "admin") -> dict[str, str]:
        _user, token = make_user(role)
        return {"Authorization": f"Bearer {token}"}

    return header


@pytest.fixture
def committed_db(app: Flask) -> Iterator[None]:
    """Real commits, for tests of concurrent clients; every table is emptied afterwards."""
    with app.app_context():
        yield
        db.session.rollback()
        for table in reversed(db.metadata.sorted_tables):
            db.session.execute(table.delete())
        db.session.commit()
        from policy_service.services.policy_index import index_cache

        index_cache.clear()
