"""A delivery task takes a batch of rows (worker/delivery.py `deliver_batch`): one transaction
claims the batch and builds its messages; then each message is sent and recorded before the
next. These tests hold the batch to what one row at a time promised: each queued row sent
once and the rest left alone, one row's failure its own, the role checked per person, and at a
crash no more than one message accepted by the server and not recorded (the window)."""

from __future__ import annotations

import datetime as dt
import smtplib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

import models
import worker.delivery as delivery_module
from core.settings import ROOT
from models import Status
from models.db import transaction
from scheduler.outbox import claim_due, sweep_expired
from tests.faults.harness import write_profile
from tests.profiles import load
from worker.delivery import Delivery, DeliveryOutcome, deliver_batch
from worker.mailers import MemoryMailer
from worker.render import Renderer

LOADED_AT = dt.datetime(2027, 8, 1, 10, 0, tzinfo=dt.UTC)
SEND_AT = dt.datetime(2027, 9, 15, 6, 0, tzinfo=dt.UTC)  # the mailout's day, 08:00 local
RENDERER = Renderer(ROOT / "templates")


def mailout(sessions: sessionmaker[Session], tmp_path: Path, rektorer: int) -> list[int]:
    """The mailout's rows to `rektorer` principals, claimed by a tick (queued), in id order."""
    load(sessions, write_profile(tmp_path / "batch.yaml", rektorer), LOADED_AT)
    with transaction(sessions) as session:
        ids = claim_due(session, SEND_AT, 10_000)
    assert len(ids) == rektorer
    return sorted(ids)


def statuses(sessions: sessionmaker[Session], ids: list[int]) -> dict[int, str]:
    with sessions() as session:
        rows = session.execute(
            select(models.Notification.id, models.Notification.status).where(
                models.Notification.id.in_(ids)
            )
        )
        return {i: str(s) for i, s in rows}


def copies(mailer: MemoryMailer) -> Counter[str]:
    return Counter(str(m["Message-ID"]) for m in mailer.messages)


def message_ids(sessions: sessionmaker[Session], ids: list[int]) -> dict[int, str]:
    with sessions() as session:
        rows = session.execute(
            select(models.Notification.id, models.Notification.message_id).where(
                models.Notification.id.in_(ids)
            )
        )
        return {i: m for i, m in rows}


@pytest.fixture
def rows(session_factory: sessionmaker[Session], tmp_path: Path) -> list[int]:
    return mailout(session_factory, tmp_path, 12)


OTHER_STATES = (Status.SENT, Status.CANCELLED, Status.SENDING, Status.FAILED, Status.PENDING)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_each_queued_row_of_a_batch_is_sent_once_and_every_other_row_left_alone(
    session_factory: sessionmaker[Session], rows: list[int], data: st.DataObject
) -> None:
    """Whatever the batch holds (rows in any state, in any order, some twice), each queued row
    is sent exactly once and every other row is skipped and unchanged."""
    states = data.draw(
        st.lists(st.sampled_from((Status.QUEUED, *OTHER_STATES)), min_size=12, max_size=12)
    )
    batch = data.draw(st.lists(st.sampled_from(rows), min_size=1, max_size=20))
    with transaction(session_factory) as session:
        session.execute(delete(models.DeliveryAttempt))
        for row_id, state in zip(rows, states, strict=True):
            session.execute(
                update(models.Notification)
                .where(models.Notification.id == row_id)
                .values(status=state, attempts=0, sent_at=None)
            )
    before = statuses(session_factory, rows)
    mailer = MemoryMailer()
    outcomes = deliver_batch(Delivery(session_factory, mailer, RENDERER), batch, SEND_AT)

    queued = {r for r, s in zip(rows, states, strict=True) if s == Status.QUEUED}
    assert set(outcomes) == set(batch)
    assert {r for r, o in outcomes.items() if o is DeliveryOutcome.SENT} == queued & set(batch)
    assert all(o is DeliveryOutcome.SKIPPED for r, o in outcomes.items() if r not in queued)
    ids = message_ids(session_factory, rows)
    assert copies(mailer) == Counter(ids[r] for r in queued & set(batch))
    after = statuses(session_factory, rows)
    for r in rows:
        assert after[r] == (Status.SENT if r in queued & set(batch) else before[r])


def test_one_rows_failure_is_its_own_and_the_rest_of_the_batch_is_sent(
    session_factory: sessionmaker[Session], rows: list[int]
) -> None:
    """A 550, a 451 and a message that cannot be built, in one batch: each ends its own way
    (failed, retry, failed) and every other row of the batch is sent."""
    refused, deferred, unbuildable = rows[2], rows[5], rows[9]
    with transaction(session_factory) as session:
        session.execute(
            update(models.Notification)
            .where(models.Notification.id == unbuildable)
            .values(template="finns-inte")
        )
        found = session.execute(
            select(models.Notification.id, models.Notification.recipient_email).where(
                models.Notification.id.in_([refused, deferred])
            )
        )
        emails = {i: e for i, e in found}
    mailer = MemoryMailer()
    mailer.fail_recipient(emails[refused], smtplib.SMTPRecipientsRefused({"x": (550, b"no")}))
    mailer.fail_recipient(emails[deferred], smtplib.SMTPRecipientsRefused({"x": (451, b"later")}))
    outcomes = deliver_batch(Delivery(session_factory, mailer, RENDERER), rows, SEND_AT)
    expected = dict.fromkeys(rows, DeliveryOutcome.SENT)
    expected.update(
        {
            refused: DeliveryOutcome.FAILED,
            deferred: DeliveryOutcome.RETRY,
            unbuildable: DeliveryOutcome.FAILED,
        }
    )
    assert outcomes == expected
    found = statuses(session_factory, rows)
    assert found[refused] == found[unbuildable] == Status.FAILED
    assert found[deferred] == Status.PENDING
    assert len(mailer.messages) == len(rows) - 3


def test_the_role_is_checked_for_each_rows_own_person_not_for_anyone_in_the_batch(
    session_factory: sessionmaker[Session], rows: list[int]
) -> None:
    """A principal who left before the send is not sent her row, even though others holding
    the same role are in the same batch (the batch's directory holds all of them)."""
    left = rows[3]
    with transaction(session_factory) as session:
        person = session.scalar(
            select(models.Notification.person_id).where(models.Notification.id == left)
        )
        session.execute(
            update(models.RoleAssignment)
            .where(models.RoleAssignment.person_id == person)
            .values(valid_to=SEND_AT.date() - dt.timedelta(days=1))
        )
    mailer = MemoryMailer()
    outcomes = deliver_batch(Delivery(session_factory, mailer, RENDERER), rows, SEND_AT)
    assert outcomes[left] is DeliveryOutcome.CANCELLED
    assert [r for r, o in outcomes.items() if o is not DeliveryOutcome.SENT] == [left]
    assert message_ids(session_factory, [left])[left] not in copies(mailer)


class Crash(BaseException):
    """The worker process dies (not an exception any code would catch)."""


@pytest.mark.parametrize("dies_at", [0, 4, 11])
def test_a_worker_dying_mid_batch_leaves_one_message_unrecorded_at_most(
    session_factory: sessionmaker[Session],
    rows: list[int],
    monkeypatch: pytest.MonkeyPatch,
    dies_at: int,
) -> None:
    """The worker dies right after the server accepted the batch's message `dies_at`: the
    rows before it are recorded as sent, that one row alone is accepted and not recorded, the
    rows after it were never sent. After the lease, the sweeper's second round sends each row
    once more only if it was never recorded: one duplicate at most (same Message-ID)."""
    original = delivery_module._record_sent
    recorded: list[int] = []

    def record_or_die(*args: Any, **kwargs: Any) -> None:
        if len(recorded) == dies_at:
            raise Crash
        original(*args, **kwargs)
        recorded.append(args[1])

    monkeypatch.setattr(delivery_module, "_record_sent", record_or_die)
    mailer = MemoryMailer()
    delivery = Delivery(session_factory, mailer, RENDERER)
    with pytest.raises(Crash):
        deliver_batch(delivery, rows, SEND_AT)
    accepted = copies(mailer)
    ids = message_ids(session_factory, rows)
    found = statuses(session_factory, rows)
    unrecorded = [r for r in rows if ids[r] in accepted and found[r] != Status.SENT]
    assert unrecorded == [rows[dies_at]]  # the window: one message
    assert [r for r in rows if found[r] == Status.SENT] == rows[:dies_at]
    assert all(ids[r] not in accepted for r in rows[dies_at + 1 :])  # never sent

    monkeypatch.setattr(delivery_module, "_record_sent", original)
    lease = dt.timedelta(seconds=600)
    later = max(SEND_AT, dt.datetime.now(dt.UTC)) + lease + dt.timedelta(seconds=1)
    with transaction(session_factory) as session:
        assert sweep_expired(session, later, lease) == len(rows) - dies_at
        again = claim_due(session, later, 100)
    deliver_batch(delivery, again, later)
    assert statuses(session_factory, rows) == dict.fromkeys(rows, Status.SENT)
    assert copies(mailer) == Counter({**{ids[r]: 1 for r in rows}, ids[rows[dies_at]]: 2})
