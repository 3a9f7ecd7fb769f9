"""Database lifecycle: apply migrations."""

from __future__ import annotations

import sqlite3
from typing import Any

from flask import current_app
from flask_migrate import upgrade
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url

from policy_service import MIGRATIONS_DIR


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
