"""Database lifecycle: migrations, SQLite transaction behaviour, serialised writes, and
reads that stay within the drivers' limits."""

from __future__ import annotations

import random
import sqlite3
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import current_app
from flask_migrate import upgrade
from sqlalchemy import event
from sqlalchemy.engine import Dialect, Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.sql.selectable import CompoundSelect, Select

from policy_service import MIGRATIONS_DIR
from policy_service.extensions import db

T = TypeVar("T")

# Keys per IN list: far below every driver's limit on bound parameters (PostgreSQL refuses a
# statement with more than 65,535; SQLite's default is 32,766).
IN_LIMIT = 2000


def in_slices(values: Iterable[Any]) -> Iterator[list[Any]]:
    """``values`` in sorted order, cut into lists short enough for one ``IN (...)`` each.

    Any list of keys that grows with the store (every running authorization's patients, say)
    goes through this: one IN list of them all breaks past a driver's parameter limit.
    """
    ordered = sorted(values)
    for start in range(0, len(ordered), IN_LIMIT):
        yield ordered[start:start + IN_LIMIT]


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
        # Straight to the driver: every request begins a transaction, and SQLAlchemy's
        # statement bookkeeping cost more than the BEGIN itself.
        connection.connection.driver_connection.execute("BEGIN")


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


@dataclass
class _CompiledRead:
    """A read's SQL for one dialect, its parameter order and its value converters."""

    sql: str
    positions: Sequence[str] | None  # parameter names in order, for positional drivers
    defaults: dict[str, Any]  # literal values the statement binds itself
    bind_processors: dict[str, Callable[[Any], Any]]
    result_types: list[Any]
    result_processors: list[Callable[[Any], Any] | None] | None = None


class PreparedRead:
    """A fixed SELECT, compiled once per database dialect, run on the database connection of
    the session's transaction.

    The few reads made on every check and API call (the policy revision, the token's owner,
    one patient's context) spent ten times their database time in SQLAlchemy's per-call
    bookkeeping. Here SQLAlchemy still compiles the statement and converts each value with
    its column type's own processors, so rows come back as ``connection.execute`` gives them;
    only that per-call work is skipped. Parameters are single values (no expanding IN lists).
    Like an ORM query, it flushes the session's pending changes first, so a check inside a
    writing transaction sees its own writes.
    """

    def __init__(self, statement: Select[Any] | CompoundSelect) -> None:
        self.statement = statement
        # Per dialect object (one per engine), not per dialect name: two engines of one
        # database kind may differ in driver or settings (a JSON deserializer, say).
        self._by_dialect: weakref.WeakKeyDictionary[Dialect, _CompiledRead] = \
            weakref.WeakKeyDictionary()

    def _compile(self, dialect: Dialect) -> _CompiledRead:
        compiled = self.statement.compile(dialect=dialect)
        binds = compiled.binds
        processors = {}
        for name, bind in binds.items():
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                processors[name] = processor
        return _CompiledRead(
            sql=compiled.string,
            positions=list(compiled.positiontup or ()) if compiled.positional else None,
            defaults={name: bind.value for name, bind in binds.items()
                      if bind.value is not None or not bind.required},
            bind_processors=processors,
            result_types=[column.type for column in self.statement.selected_columns])

    def rows(self, **params: Any) -> list[tuple[Any, ...]]:
        """Run the read with these parameters; return every row as a tuple."""
        session = db.session
        if session.autoflush:
            session.flush()
        connection = session.connection()
        dialect = connection.dialect
        compiled = self._by_dialect.get(dialect)
        if compiled is None:
            compiled = self._by_dialect[dialect] = self._compile(dialect)
        values = {**compiled.defaults, **params}
        for name, processor in compiled.bind_processors.items():
            values[name] = processor(values[name])
        arguments: Any = values
        if compiled.positions is not None:
            arguments = tuple(values[name] for name in compiled.positions)
        cursor = connection.connection.driver_connection.cursor()
        try:
            cursor.execute(compiled.sql, arguments)
            fetched = cursor.fetchall()
            description = cursor.description
        except Exception as error:
            # Raised as SQLAlchemy's own execution raises it: its exception types (which the
            # CLI, the admin and ``run_serialized`` handle), the engine's ``hide_parameters``,
            # and a lost connection invalidated.
            connection._handle_dbapi_exception(error, compiled.sql, arguments, cursor, None)
        finally:
            cursor.close()
        if compiled.result_processors is None:
            compiled.result_processors = [
                type_.dialect_impl(dialect).result_processor(dialect, described[1])
                for type_, described in zip(compiled.result_types, description, strict=True)]
        processors = compiled.result_processors
        if not any(processors):
            return [tuple(row) for row in fetched]
        return [tuple(value if convert is None else convert(value)
                      for convert, value in zip(processors, row, strict=True))
                for row in fetched]

    def scalar(self, **params: Any) -> Any:
        """The first column of the first row, or None when there is no row."""
        rows = self.rows(**params)
        return rows[0][0] if rows else None
