"""Delivery survives a dropped database connection, and a worker's claim renews the lease."""

from __future__ import annotations

import datetime as dt
from email.message import EmailMessage

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session, sessionmaker

import models
import worker.delivery as delivery_module
from core.settings import ROOT
from models import Status
from models.db import transaction
from scheduler.outbox import claim_due, sweep_expired
from tests.profiles import MINIMAL, load
from worker.delivery import Delivery, DeliveryOutcome, deliver_one
from worker.mailers import MemoryMailer, SendResult
from worker.render import Renderer

LOADED_AT = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC)


class Dropped(Exception):
    pass


def dropped() -> OperationalError:
    error = OperationalError("COMMIT", {}, Dropped("server closed the connection"))
    error.connection_invalidated = True
    return error


@pytest.fixture
def loaded(session_factory: sessionmaker[Session]) -> sessionmaker[Session]:
    load(session_factory, MINIMAL, LOADED_AT)
    return session_factory


def reminder(sessions: sessionmaker[Session]) -> models.Notification:
    with sessions() as session:
        row = session.scalars(
            select(models.Notification).where(models.Notification.purpose == "paminnelse-30")
        ).one()
        session.expunge(row)
    with transaction(sessions) as session:
        assert row.id in claim_due(session, row.due_at, 100)
    return row


def test_a_connection_dropped_while_recording_the_send_is_retried_not_resent(
    loaded: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    row = reminder(loaded)
    original = delivery_module._record_sent
    calls: list[bool] = []

    def flaky(*args: object, **kwargs: object) -> None:
        calls.append(bool(args[-1]))  # `again`, passed by _retry_on_disconnect
        original(*args, **kwargs)  # type: ignore[arg-type]
        if len(calls) == 1:
            raise dropped()  # committed, but the reply was lost with the connection

    monkeypatch.setattr(delivery_module, "_record_sent", flaky)
    monkeypatch.setattr(delivery_module.time, "sleep", lambda _s: None)
    mailer = MemoryMailer()
    delivery = Delivery(loaded, mailer, Renderer(ROOT / "templates"))
    assert deliver_one(delivery, row.id, row.due_at) is DeliveryOutcome.SENT
    assert calls == [False, True]
    assert len(mailer.messages) == 1
    with loaded() as session:
        attempts = list(
            session.scalars(
                select(models.DeliveryAttempt).where(
                    models.DeliveryAttempt.notification_id == row.id
                )
            )
        )
        assert session.get_one(models.Notification, row.id).status == Status.SENT
    assert [a.outcome for a in attempts] == ["sent"]  # written once, not twice


def test_other_database_errors_are_not_retried(
    loaded: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    row = reminder(loaded)
    calls = 0

    def broken(*_args: object, **_kwargs: object) -> None:
        nonlocal calls
        calls += 1
        raise ProgrammingError("UPDATE", {}, Exception("no such column"))

    monkeypatch.setattr(delivery_module, "_record_sent", broken)
    delivery = Delivery(loaded, MemoryMailer(), Renderer(ROOT / "templates"))
    with pytest.raises(ProgrammingError):
        deliver_one(delivery, row.id, row.due_at)
    assert calls == 1


def test_a_connection_that_keeps_dropping_gives_up_after_a_few_tries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(delivery_module.time, "sleep", lambda _s: None)
    tries: list[bool] = []

    def never(again: bool) -> None:
        tries.append(again)
        raise dropped()

    with pytest.raises(OperationalError):
        delivery_module._retry_on_disconnect(never)
    assert tries == [False] + [True] * (delivery_module.DB_RETRIES - 1)


class LeaseWatcher(MemoryMailer):
    """Looks at the row while its message is being sent."""

    def __init__(self, sessions: sessionmaker[Session], row_id: int) -> None:
        super().__init__()
        self.sessions = sessions
        self.row_id = row_id
        self.claimed_at: dt.datetime | None = None

    def send(self, message: EmailMessage) -> SendResult:
        with self.sessions() as session:
            self.claimed_at = session.get_one(models.Notification, self.row_id).claimed_at
        return super().send(message)


def test_the_workers_claim_renews_the_lease(loaded: sessionmaker[Session]) -> None:
    """A row that waited in the broker longer than the lease is not swept while it is sent."""
    row = reminder(loaded)  # claimed by a tick at its due time, long ago in wall-clock terms
    mailer = LeaseWatcher(loaded, row.id)
    delivery = Delivery(loaded, mailer, Renderer(ROOT / "templates"))
    before = dt.datetime.now(dt.UTC)
    # The tick's moment is old (queued in a backlog); the worker takes it now.
    old = before - dt.timedelta(hours=1)
    assert deliver_one(delivery, row.id, old) is DeliveryOutcome.SENT
    assert mailer.claimed_at is not None and mailer.claimed_at >= before - dt.timedelta(seconds=1)
    with transaction(loaded) as session:  # a sweep during the send would have found nothing
        assert sweep_expired(session, before, dt.timedelta(minutes=10)) == 0
