"""Database lifecycle: migrations, SQLite transaction behaviour, serialised writes."""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable
from typing import Any, TypeVar

from flask import current_app
from flask_migrate import upgrade
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError

from policy_service import MIGRATIONS_DIR
from policy_service.extensions import db

T = TypeVar("T")


def migrate_database() -> str:
    """Apply every migration to the configured database; return its URL without password."""
    url = make_url(current_app.config["SQLALCHEMY_DATABASE_URI"])
    if url.drivername.startswith("sqlite") and url.database:
        from pathlib import Path

        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    upgrade(directory=str(MIGRATIONS_DIR))
    return url.render_as_string(hide_password=True)


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    # Let SQLAlchemy emit BEGIN itself so SAVEPOINTs work, and enforce foreign keys.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN")


def init_engine_events() -> None:
    """Make SQLite transactional the way PostgreSQL is (idempotent)."""
    if not event.contains(Engine, "connect", _sqlite_connect):
        event.listen(Engine, "connect", _sqlite_connect)
        event.listen(Engine, "begin", _sqlite_begin)


def run_serialized(operation: Callable[[], T], attempts: int = 20) -> T:
    """Run ``operation`` and commit; on SQLite, retry when another writer held the database.

    PostgreSQL needs no retry: the services lock the rows they change. SQLite locks the whole
    file and answers "database is locked" at once to a transaction that read before another
    wrote, instead of waiting; rolling back and running again is the documented remedy.
    """
    for attempt in range(attempts):
        try:
            result = operation()
            db.session.commit()
            return result
        except OperationalError as exc:
            db.session.rollback()
            if "database is locked" not in str(exc) or attempt == attempts - 1:
                raise
            # Jittered backoff, capped so a busy moment costs at most a few seconds.
            time.sleep(min(0.005 * 2 ** attempt, 0.25) * (1 + random.random()))  # noqa: S311
    raise AssertionError("unreachable")
