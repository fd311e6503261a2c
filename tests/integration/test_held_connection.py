"""The record after a send on PostgreSQL's driver path (`HeldConnection.execute_plain`): the
same rows as through SQLAlchemy, the same refusal of a naive time, the same errors when the
connection is lost, and a listener on the engine still sees the statement."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import Engine, event, select, text
from sqlalchemy.dialects.postgresql import psycopg as pg_psycopg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

import models
from models.db import HeldConnection, driver_sql
from scheduler.outbox import record_plain_send
from tests.integration.test_outbox_delivery import END_OF_2027, claim, loaded

__all__ = ["loaded"]  # the fixture, used by name

SENT_AT = END_OF_2027 + dt.timedelta(minutes=3)


@pytest.fixture
def held(engine: Engine) -> Any:
    if engine.dialect.name != "postgresql":
        pytest.skip("the held connection is PostgreSQL's")
    connection = HeldConnection(engine)
    yield connection
    connection.close()


def _row_and_line(sessions: sessionmaker[Session], notification_id: int) -> tuple[Any, ...]:
    with sessions() as session:
        row = session.get_one(models.Notification, notification_id)
        lines = session.scalars(
            select(models.DeliveryAttempt).where(
                models.DeliveryAttempt.notification_id == notification_id
            )
        ).all()
        return (
            row.status,
            row.sent_at,
            row.updated_at,
            row.claimed_at,
            row.last_error,
            row.smtp_reply,
            [(a.number, a.at, a.duration_ms, a.outcome, a.reply, a.worker) for a in lines],
        )


def test_the_driver_path_writes_what_sqlalchemy_writes(
    held: HeldConnection, loaded: sessionmaker[Session], engine: Engine
) -> None:
    first, second = claim(loaded, END_OF_2027)[:2]
    assert not engine.dispatch.before_cursor_execute  # nothing listens: the driver's path
    statement, parameters = record_plain_send(first, 1, SENT_AT, "250 2.0.0 Ok", 7, "w1")
    held.execute_plain(statement, parameters)
    statement, parameters = record_plain_send(second, 1, SENT_AT, "250 2.0.0 Ok", 7, "w1")
    held.execute(statement, parameters)
    recorded = _row_and_line(loaded, first)
    assert recorded == _row_and_line(loaded, second)
    assert recorded[0] == models.Status.SENT and recorded[1] == SENT_AT
    assert recorded[-1] == [(1, SENT_AT, 7, "sent", "250 2.0.0 Ok", "w1")]


def test_a_naive_time_is_refused_and_nothing_written(
    held: HeldConnection, loaded: sessionmaker[Session]
) -> None:
    (first, *_) = claim(loaded, END_OF_2027)
    before = _row_and_line(loaded, first)
    naive = SENT_AT.replace(tzinfo=None)
    with pytest.raises(ValueError, match="naive datetime"):
        held.execute_plain(*record_plain_send(first, 1, naive, "250 Ok", 7, "w1"))
    assert _row_and_line(loaded, first) == before


def test_a_lost_connection_is_raised_as_lost_and_the_next_statement_connects_again(
    held: HeldConnection, loaded: sessionmaker[Session], engine: Engine
) -> None:
    first, second = claim(loaded, END_OF_2027)[:2]
    before = _row_and_line(loaded, second)
    held.execute_plain(*record_plain_send(first, 1, SENT_AT, "250 Ok", 7, "w1"))
    assert held.connection is not None
    pid = held.connection.connection.driver_connection.info.backend_pid  # type: ignore[union-attr]
    with engine.connect() as other:
        other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    with pytest.raises(DBAPIError) as raised:
        held.execute_plain(*record_plain_send(second, 1, SENT_AT, "250 Ok", 7, "w1"))
    # What worker.delivery's retry reads to run the record again on a fresh connection.
    assert raised.value.connection_invalidated
    assert held.connection is None
    assert _row_and_line(loaded, second) == before  # not written
    held.execute_plain(*record_plain_send(second, 1, SENT_AT, "250 Ok", 7, "w1"))
    assert _row_and_line(loaded, second)[0] == models.Status.SENT


def test_a_listener_on_the_engine_sees_the_statement(
    held: HeldConnection, loaded: sessionmaker[Session], engine: Engine
) -> None:
    (first, *_) = claim(loaded, END_OF_2027)
    seen: list[str] = []

    def capture(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", capture)
    try:
        held.execute_plain(*record_plain_send(first, 1, SENT_AT, "250 Ok", 7, "w1"))
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert len(seen) == 1 and "INSERT INTO delivery_attempt" in seen[0]
    assert _row_and_line(loaded, first)[0] == models.Status.SENT


def test_a_statement_with_a_list_parameter_stays_with_sqlalchemy() -> None:
    dialect = pg_psycopg.dialect()
    listed = select(models.Notification.id).where(models.Notification.id.in_([1, 2]))
    assert driver_sql(listed, dialect) is None
    (statement, _) = record_plain_send(1, 1, SENT_AT, "250 Ok", 7, "w1")
    compiled = driver_sql(statement, dialect)
    assert compiled is not None
    assert set(compiled.conversions) == {
        "line_at",
        "sent_claimed_at",
        "sent_sent_at",
        "sent_updated_at",
    }
