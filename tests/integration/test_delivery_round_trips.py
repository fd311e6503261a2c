"""The statements a delivery sends: one claim for the whole batch (returning the rows it
changed), the municipality and the recipients' roles read once per batch, and the record after
each send one statement on PostgreSQL (an UPDATE in a WITH, the INSERT of the attempt) or an
UPDATE and an INSERT on SQLite (docs/performance.md). Counted with a SQLAlchemy event on the
real database."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

import models
from models import Status
from models.db import transaction
from scheduler.outbox import sweep_expired
from tests.integration.test_outbox_delivery import END_OF_2027, claim, delivery, loaded, mailer
from worker.delivery import Delivery, DeliveryOutcome, deliver_batch, deliver_one
from worker.mailers import MemoryMailer

__all__ = ["delivery", "loaded", "mailer"]  # the fixtures, used by name


def statements(sessions: sessionmaker[Session], work: Any) -> list[str]:
    seen: list[str] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        seen.append(" ".join(statement.split()))

    engine = sessions.kw["bind"]
    event.listen(engine, "before_cursor_execute", capture)
    try:
        work()
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    return seen


def kinds(seen: list[str]) -> list[str]:
    """`SELECT municipality`, `UPDATE notification`, … for each statement."""
    out = []
    for statement in seen:
        verb = statement.split()[0].upper()
        if verb == "SELECT":
            table = statement.split(" FROM ", 1)[1].split()[0]
        elif verb == "UPDATE":
            table = statement.split()[1]
        elif verb == "INSERT":
            table = statement.split()[2]
        elif verb == "WITH":  # a data-modifying WITH: named by the statement that ends it
            main = statement.rsplit(") INSERT INTO ", 1)
            table = f"INSERT {main[1].split()[0]}" if len(main) == 2 else "?"
        else:
            table = ""
        out.append(f"{verb} {table}".strip())
    return out


@pytest.mark.parametrize("size", [1, 3])
def test_a_batch_is_claimed_and_read_once_and_each_send_recorded_in_one_round_trip(
    delivery: Delivery, loaded: sessionmaker[Session], mailer: MemoryMailer, size: int
) -> None:
    ids = claim(loaded, END_OF_2027)[:size]
    assert len(ids) == size
    seen = kinds(statements(loaded, lambda: deliver_batch(delivery, ids, END_OF_2027)))
    seen = [s for s in seen if s.split()[0] in ("SELECT", "UPDATE", "INSERT", "DELETE", "WITH")]
    postgres = loaded.kw["bind"].dialect.name == "postgresql"
    record = (
        ["WITH INSERT delivery_attempt"]
        if postgres
        else [
            "UPDATE notification",
            "INSERT delivery_attempt",
        ]
    )
    assert seen[0] == "UPDATE notification", seen  # the batch's one claim
    assert seen.count("SELECT notification") == 0, seen
    assert seen.count("SELECT municipality") <= 1, seen
    assert seen.count("SELECT role_assignment") <= 1, seen
    reads = seen[1 : len(seen) - size * len(record)]
    assert all(r.startswith("SELECT") for r in reads) and len(reads) <= 2, seen
    assert seen[len(seen) - size * len(record) :] == record * size, seen
    assert len(mailer.messages) == size
    with loaded() as session:
        rows = session.scalars(select(models.Notification).where(models.Notification.id.in_(ids)))
        for row in rows:
            assert row.status == Status.SENT and row.sent_at is not None
            assert row.claimed_at is None and row.last_error is None and row.smtp_reply
        attempts = session.scalars(
            select(models.DeliveryAttempt).where(models.DeliveryAttempt.notification_id.in_(ids))
        )
        assert sorted((a.notification_id, a.number, a.outcome) for a in attempts) == [
            (i, 1, "sent") for i in sorted(ids)
        ]


def test_a_send_is_recorded_even_when_the_row_was_swept_back_meanwhile(
    delivery: Delivery, loaded: sessionmaker[Session], mailer: MemoryMailer
) -> None:
    """The record is not conditional on the row still being `sending`: the server took the
    message, so the row is sent, whatever the sweeper did in the meantime."""
    (first, *_) = claim(loaded, END_OF_2027)
    original_send = mailer.send

    def send_then_sweep(message: Any) -> Any:
        result = original_send(message)
        with transaction(loaded) as session:  # the lease ran out: the sweeper puts it back
            assert sweep_expired(session, END_OF_2027 + dt.timedelta(days=1), dt.timedelta(0))
        return result

    mailer.send = send_then_sweep  # type: ignore[method-assign]
    assert deliver_one(delivery, first, END_OF_2027) is DeliveryOutcome.SENT
    with loaded() as session:
        row = session.get_one(models.Notification, first)
        assert row.status == Status.SENT and row.sent_at is not None
        attempts = session.scalars(
            select(models.DeliveryAttempt).where(models.DeliveryAttempt.notification_id == first)
        ).all()
        assert [(a.number, a.outcome) for a in attempts] == [(1, "sent")]
