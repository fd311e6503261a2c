"""Engine and sessions. SQLite for the embedded default, PostgreSQL in production."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

from sqlalchemy import (
    ClauseElement,
    Connection,
    Dialect,
    Engine,
    Executable,
    Row,
    create_engine,
    event,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.compiler import SQLCompiler

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

    def execute_plain(self, statement: Executable, parameters: Mapping[str, Any]) -> None:
        """`execute` for a statement that returns no rows, run on the driver's own cursor with
        its SQL compiled once and its parameters converted as SQLAlchemy would (`DriverSql`).
        SQLAlchemy's execution (the statement's cache key, the context, the result) cost more
        CPU than the statement itself: about 0.07 ms of a reminder's record
        (docs/performance.md, phase 9). Errors are raised as SQLAlchemy's
        (`DBAPIError`, `connection_invalidated` set for a lost connection), as `execute`
        raises them. With a listener on the engine's statements (tests, tracing), the
        statement goes through SQLAlchemy instead, so it is seen."""
        if not self.usable:
            raise RuntimeError("a held connection is for PostgreSQL")
        compiled = driver_sql(statement, self.engine.dialect)
        dispatch = self.engine.dispatch
        if compiled is None or dispatch.before_cursor_execute or dispatch.after_cursor_execute:
            self.execute(statement, parameters)
            return
        if self.connection is None:
            self.connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        values = compiled.parameters(parameters)
        driver = self.connection.connection.driver_connection
        try:
            driver.execute(compiled.sql, values)  # type: ignore[union-attr]
        except BaseException as exc:
            dbapi = self.engine.dialect.loaded_dbapi
            if not isinstance(exc, dbapi.Error):
                self.close()
                raise
            lost = self.engine.dialect.is_disconnect(exc, driver, None)
            if lost:
                self.connection.invalidate()
            self.close()
            raise DBAPIError.instance(
                compiled.sql,
                values,
                exc,
                dbapi.Error,
                connection_invalidated=lost,
                dialect=self.engine.dialect,
            ) from exc

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


@dataclass(frozen=True)
class DriverSql:
    """A statement compiled for a dialect: its SQL, its constant parameters (literals) and the
    conversion of each parameter whose type has one (`UtcDateTime` refuses a naive time)."""

    sql: str
    constants: Mapping[str, Any]
    conversions: Mapping[str, Callable[[Any], Any]]

    def parameters(self, given: Mapping[str, Any]) -> dict[str, Any]:
        values = {**self.constants, **given}
        for name, convert in self.conversions.items():
            values[name] = convert(values[name])
        return values


@lru_cache(maxsize=64)
def driver_sql(statement: Executable, dialect: Dialect) -> DriverSql | None:
    """`statement` compiled once for `dialect`, or None when a parameter is expanded at
    execution (a list for IN): such a statement stays with SQLAlchemy."""
    assert isinstance(statement, ClauseElement)
    compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
    constants: dict[str, Any] = {}
    conversions: dict[str, Callable[[Any], Any]] = {}
    for bind in compiled.binds.values():
        if bind.expanding:
            return None
        name = compiled.bind_names[bind]
        if not bind.required:
            constants[name] = bind.effective_value
        convert = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if convert is not None:
            conversions[name] = convert
    return DriverSql(str(compiled), constants, conversions)
