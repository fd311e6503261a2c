"""The idle tick (worker/tasks.py `nothing_due`): on PostgreSQL the tick first asks for one
due row on the process's held connection and opens its transaction only when a row is due.
The question must agree with the claim it stands in front of (pending, due at `now`, not
before `since`) row for row, an idle tick must cost that one statement, and a dropped held
connection must make the tick claim as before, never skip what is due."""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, select, text, update
from sqlalchemy.orm import Session, sessionmaker

import models
import worker.runtime
from core.settings import load_settings
from models import Status
from models.db import transaction
from scheduler.outbox import anything_due, claim_due
from tests.faults.harness import write_profile
from tests.profiles import load
from worker.app import configure
from worker.runtime import get_runtime
from worker.tasks import tick, tick_once

LOADED_AT = dt.datetime(2027, 8, 1, 10, 0, tzinfo=dt.UTC)
BASE = dt.datetime(2027, 9, 15, 6, 0, tzinfo=dt.UTC)
ROWS = 12
STATES = list(Status)


def row_ids(sessions: sessionmaker[Session]) -> list[int]:
    with sessions() as session:
        return sorted(session.scalars(select(models.Notification.id)))


@pytest.fixture
def rows(session_factory: sessionmaker[Session], tmp_path: Path) -> list[int]:
    load(session_factory, write_profile(tmp_path / "idle.yaml", ROWS), LOADED_AT)
    ids = row_ids(session_factory)
    assert len(ids) >= ROWS
    return ids


minutes = st.integers(min_value=-3, max_value=3)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_the_idle_question_and_the_claim_both_find_exactly_the_due_rows(
    session_factory: sessionmaker[Session], rows: list[int], data: st.DataObject
) -> None:
    """Rows in every state, due a few minutes either side of `now` and `since`: `anything_due`
    answers yes exactly when some row is pending, due at `now` and not before `since`, and
    `claim_due` claims exactly those rows (an oracle written here, not the code's filter)."""
    drawn = {
        i: (data.draw(st.sampled_from(STATES)), data.draw(minutes), data.draw(minutes))
        for i in rows
    }
    now = BASE + dt.timedelta(minutes=data.draw(minutes))
    since = data.draw(st.none() | minutes.map(lambda m: BASE + dt.timedelta(minutes=m)))
    with transaction(session_factory) as session:
        for i, (status, due, _) in drawn.items():
            due_at = BASE + dt.timedelta(minutes=due)
            session.execute(
                update(models.Notification)
                .where(models.Notification.id == i)
                .values(status=status, due_at=due_at)
            )
    due = {
        i
        for i, (status, minute, _) in drawn.items()
        if status == Status.PENDING
        and BASE + dt.timedelta(minutes=minute) <= now
        and (since is None or BASE + dt.timedelta(minutes=minute) >= since)
    }
    with session_factory() as session:
        assert bool(session.execute(*anything_due(now, since)).all()) is bool(due)
        assert set(claim_due(session, now, 10_000, since)) == due
        session.rollback()


@pytest.fixture
def runtime_on_postgres(
    postgres_schema: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[worker.runtime.Runtime]:
    from tests.fixtures.services import create_schema

    create_schema(postgres_schema.url)
    monkeypatch.setattr(worker.runtime, "_settings", None)
    monkeypatch.setattr(worker.runtime, "_runtime", None)
    configure(
        load_settings(
            {"SAMVERKAN_VAR_DIR": str(tmp_path), "SAMVERKAN_DATABASE_URL": postgres_schema.url}
        )
    )
    runtime = get_runtime()
    load(runtime.sessions, write_profile(tmp_path / "idle.yaml", ROWS), LOADED_AT)
    yield runtime
    runtime.close()


def statements_of(runtime: worker.runtime.Runtime, work: Any) -> tuple[Any, list[str]]:
    sent: list[str] = []

    def grab(_conn: Any, _cur: Any, statement: str, *_: Any) -> None:
        sent.append(" ".join(statement.split()))

    event.listen(runtime.engine, "before_cursor_execute", grab)
    try:
        return work(), sent
    finally:
        event.remove(runtime.engine, "before_cursor_execute", grab)


def pending_due(runtime: worker.runtime.Runtime, now: dt.datetime) -> int:
    with runtime.sessions() as session:
        return len(session.scalars(select(models.Notification.id).where(
            models.Notification.status == Status.PENDING, models.Notification.due_at <= now
        )).all())  # fmt: skip


def test_an_idle_tick_on_postgresql_sends_one_statement_and_opens_no_transaction(
    runtime_on_postgres: worker.runtime.Runtime,
) -> None:
    runtime = runtime_on_postgres
    idle = LOADED_AT + dt.timedelta(minutes=5)
    assert pending_due(runtime, idle) == 0
    tick_once(idle, backlog=True)  # the first tick connects
    claimed, sent = statements_of(runtime, lambda: tick_once(idle, backlog=True))
    assert claimed == []
    assert len(sent) == 1, sent
    assert sent[0].startswith("SELECT notification.id") and sent[0].endswith(
        "LIMIT %(param_1)s::INTEGER"
    )
    assert runtime.held.connection is not None


def test_a_tick_with_rows_due_claims_them_all(
    runtime_on_postgres: worker.runtime.Runtime,
) -> None:
    runtime = runtime_on_postgres
    send_at = dt.datetime(2027, 9, 15, 6, 0, tzinfo=dt.UTC)
    due = pending_due(runtime, send_at)
    assert due >= ROWS
    claimed, sent = statements_of(runtime, lambda: tick_once(send_at, backlog=True))
    assert len(claimed) == due
    assert any("FOR UPDATE SKIP LOCKED" in s for s in sent)
    assert pending_due(runtime, send_at) == 0


def test_a_dropped_held_connection_makes_the_tick_claim_as_before_and_then_reconnect(
    runtime_on_postgres: worker.runtime.Runtime,
) -> None:
    """The server ends the held connection's backend (a restart, a failover, an idle timeout):
    the next tick with rows due still claims them all, and the one after asks on a new
    connection."""
    runtime = runtime_on_postgres
    idle = LOADED_AT + dt.timedelta(minutes=5)
    tick_once(idle, backlog=True)
    held = runtime.held.connection
    assert held is not None
    pid = held.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    held.commit()
    with runtime.engine.connect() as other:
        other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        other.commit()
    send_at = dt.datetime(2027, 9, 15, 6, 0, tzinfo=dt.UTC)
    due = pending_due(runtime, send_at)
    assert len(tick_once(send_at, backlog=True)) == due > 0
    assert runtime.held.connection is None  # dropped with its failed statement
    assert tick_once(send_at + dt.timedelta(minutes=1), backlog=True) == []
    assert runtime.held.connection is not None


def heartbeats(runtime: worker.runtime.Runtime) -> dict[str, dt.datetime]:
    with runtime.sessions() as session:
        rows = session.execute(select(models.Heartbeat.name, models.Heartbeat.at))
        return {name: at for name, at in rows}


def test_beats_idle_tick_on_postgresql_is_the_question_and_one_heartbeat_statement(
    runtime_on_postgres: worker.runtime.Runtime,
) -> None:
    """Beat's tick task with nothing due: the question, then both heartbeat rows (the tick's
    and this worker's) written by one statement; a second tick moves both forward."""
    runtime = runtime_on_postgres
    idle = (LOADED_AT + dt.timedelta(minutes=5)).isoformat()
    assert tick(idle) == 0
    first = heartbeats(runtime)
    assert set(first) == {"tick", f"worker:{socket.gethostname()}"[:200]}
    claimed, sent = statements_of(runtime, lambda: tick(idle))
    assert claimed == 0
    assert [s.split()[0] for s in sent] == ["SELECT", "INSERT"], sent
    second = heartbeats(runtime)
    assert set(second) == set(first)
    assert all(second[name] > first[name] for name in first)
