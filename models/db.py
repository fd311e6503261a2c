"""Engine and sessions. SQLite for the embedded default, PostgreSQL in production."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Executable, Row, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger("samverkan.db")


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for `url`; SQLite gets WAL, foreign keys and a busy timeout (several processes)."""
    parsed = make_url(url)
    if parsed.drivername.startswith("postgresql") and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername.startswith("sqlite"):
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # Threads of one process (the embedded worker) share the engine, so allow that.
        kwargs.setdefault("connect_args", {"timeout": 30, "check_same_thread": False})
        engine = create_engine(parsed, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin_immediate)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(parsed, **kwargs)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy manage transactions, so BEGIN IMMEDIATE below is the one that starts them.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin_immediate(connection: Any) -> None:
    # Take the write lock at the start: two claimers then queue instead of failing to upgrade.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work is committed together, or not at all."""
    with factory() as session, session.begin():
        yield session


class HeldConnection:
    """PostgreSQL: one connection in autocommit, held across statements, so each statement is
    one round trip and its own commit (no checkout, pre-ping, BEGIN or COMMIT). Connected on
    first use; a statement that fails drops the connection (a dropped backend, a restart) and
    the next one connects again. Not for SQLite, whose transactions begin with BEGIN IMMEDIATE
    (`usable` is False there, and callers take their usual session instead)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.usable = engine.dialect.name == "postgresql"
        self.connection: Connection | None = None

    def execute(
        self, statement: Executable, parameters: Mapping[str, Any] | None = None
    ) -> list[Row[Any]]:
        """Run `statement` (committed when it returns); the rows it returned, if any."""
        if not self.usable:
            raise RuntimeError("a held connection is for PostgreSQL")
        if self.connection is None:
            self.connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            result = self.connection.execute(statement, parameters)
            rows = list(result.all()) if result.returns_rows else []
            self.connection.commit()  # the statement committed itself; this ends the marker
        except BaseException:
            self.close()
            raise
        return rows

    def execute_or_none(
        self, statement: Executable, parameters: Mapping[str, Any] | None = None
    ) -> list[Row[Any]] | None:
        """`execute`, or None when this connection cannot answer: on SQLite, or after a
        database error (the connection dropped; the caller then goes its usual way, through a
        session, which reconnects)."""
        if not self.usable:
            return None
        try:
            return self.execute(statement, parameters)
        except DBAPIError:
            log.warning("held connection failed", extra={"action": "held_connection_failed"})
            return None

    def close(self) -> None:
        connection, self.connection = self.connection, None
        if connection is not None:
            with suppress(Exception):
                connection.close()
