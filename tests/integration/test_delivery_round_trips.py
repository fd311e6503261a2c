"""The statements one delivery sends: the claim returns the row it changed, the municipality
is read once, and the record after the send is one UPDATE returning the row and one INSERT
(docs/performance.md). Counted with a SQLAlchemy event on the real database."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

import models
from models import Status
from models.db import transaction
from scheduler.outbox import sweep_expired
from tests.integration.test_outbox_delivery import END_OF_2027, claim, delivery, loaded, mailer
from worker.delivery import Delivery, DeliveryOutcome, deliver_one
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
        else:
            table = ""
        out.append(f"{verb} {table}".strip())
    return out


def test_a_delivery_sends_five_statements_and_reads_nothing_twice(
    delivery: Delivery, loaded: sessionmaker[Session], mailer: MemoryMailer
) -> None:
    ids = claim(loaded, END_OF_2027)
    assert len(ids) >= 3
    for notification_id in ids[:3]:
        seen = kinds(
            statements(loaded, lambda i=notification_id: deliver_one(delivery, i, END_OF_2027))
        )
        seen = [s for s in seen if s.split()[0] in ("SELECT", "UPDATE", "INSERT", "DELETE")]
        assert seen.count("SELECT notification") == 0, seen
        assert seen.count("SELECT municipality") <= 1, seen
        assert seen.count("UPDATE notification") == 2, seen  # the claim, the record
        assert seen.count("INSERT delivery_attempt") == 1, seen
        assert len(seen) <= 5, seen
    assert len(mailer.messages) == 3
    with loaded() as session:
        rows = session.scalars(
            select(models.Notification).where(models.Notification.id.in_(ids[:3]))
        )
        for row in rows:
            assert row.status == Status.SENT and row.sent_at is not None
            assert row.claimed_at is None and row.last_error is None and row.smtp_reply


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
