"""The outbox from claim to delivery: exactly once, every attempt recorded, roles checked."""

from __future__ import annotations

import datetime as dt
import email.policy
import threading
from typing import Any

import icalendar
import pytest
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session, sessionmaker

import models
from core.errors import PermanentDeliveryError, TransientDeliveryError
from core.settings import ROOT
from models import Status
from models.db import make_engine, make_sessionmaker, transaction
from scheduler.calendar import STOCKHOLM
from scheduler.outbox import claim_due, sweep_expired
from tests.profiles import MINIMAL, load
from worker.delivery import Delivery, Outcome, RetryPolicy, deliver_one
from worker.mailers import MemoryMailer
from worker.render import Renderer

LOADED_AT = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC)
END_OF_2027 = dt.datetime(2027, 12, 31, tzinfo=dt.UTC)


@pytest.fixture
def loaded(session_factory: sessionmaker[Session]) -> sessionmaker[Session]:
    load(session_factory, MINIMAL, LOADED_AT)
    return session_factory


@pytest.fixture
def mailer() -> MemoryMailer:
    return MemoryMailer()


@pytest.fixture
def delivery(loaded: sessionmaker[Session], mailer: MemoryMailer) -> Delivery:
    return Delivery(loaded, mailer, Renderer(ROOT / "templates"), RetryPolicy(base_seconds=60))


def claim(sessions: sessionmaker[Session], now: dt.datetime, limit: int = 10_000) -> list[int]:
    with transaction(sessions) as session:
        return claim_due(session, now, limit)


def row(sessions: sessionmaker[Session], notification_id: int) -> models.Notification:
    with sessions() as session:
        found = session.get_one(models.Notification, notification_id)
        session.expunge(found)
        return found


def book(sessions: sessionmaker[Session], day: str, now: dt.datetime) -> None:
    """Book the spring meeting for `day` at 13:00, as `samverkan book` does."""
    from service.booking import book_meeting

    with transaction(sessions) as session:
        municipality_id = session.scalars(select(models.Municipality.id)).one()
        book_meeting(session, municipality_id, "samverkansmote-var", day, "13:00", None, now, 400)


def by_purpose(sessions: sessionmaker[Session], purpose: str) -> list[models.Notification]:
    with sessions() as session:
        rows = list(
            session.scalars(
                select(models.Notification).where(models.Notification.purpose == purpose)
            )
        )
        for r in rows:
            session.expunge(r)
        return rows


def test_two_ticks_at_once_claim_each_due_row_exactly_once(
    loaded: sessionmaker[Session], database_url: str
) -> None:
    engines = [make_engine(database_url) for _ in range(2)]
    results: list[list[int]] = [[], []]
    barrier = threading.Barrier(2)

    def tick(index: int) -> None:
        sessions = make_sessionmaker(engines[index])
        barrier.wait()
        for _ in range(20):  # small batches, so the two really interleave
            results[index] += claim(sessions, END_OF_2027, limit=3)

    threads = [threading.Thread(target=tick, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for e in engines:
        e.dispose()
    with loaded() as session:
        due = set(
            session.scalars(
                select(models.Notification.id).where(models.Notification.due_at <= END_OF_2027)
            )
        )
    assert not set(results[0]) & set(results[1])
    assert set(results[0]) | set(results[1]) == due
    assert due


def test_delivered_message_is_recorded_with_its_reply_and_message_id(
    delivery: Delivery, mailer: MemoryMailer
) -> None:
    (reminder,) = by_purpose(delivery.sessions, "paminnelse-30")
    ids = claim(delivery.sessions, reminder.due_at)
    assert reminder.id in ids
    assert deliver_one(delivery, reminder.id, reminder.due_at) is Outcome.SENT
    sent = row(delivery.sessions, reminder.id)
    assert sent.status == Status.SENT and sent.attempts == 1 and sent.sent_at == reminder.due_at
    assert sent.smtp_reply is not None and sent.smtp_reply.startswith("250")
    (message,) = mailer.messages
    assert message["Message-ID"] == sent.message_id
    assert message["To"].addresses[0].addr_spec == "anna@liten.se"
    with delivery.sessions() as session:
        attempts = list(session.scalars(select(models.DeliveryAttempt)))
    assert [(a.number, a.outcome) for a in attempts] == [(1, "sent")]


def test_a_redelivered_task_sends_nothing_twice(delivery: Delivery, mailer: MemoryMailer) -> None:
    (reminder,) = by_purpose(delivery.sessions, "paminnelse-30")
    claim(delivery.sessions, reminder.due_at)
    assert deliver_one(delivery, reminder.id, reminder.due_at) is Outcome.SENT
    assert deliver_one(delivery, reminder.id, reminder.due_at) is Outcome.SKIPPED
    assert len(mailer.messages) == 1


def test_an_unclaimed_row_is_not_sent(delivery: Delivery, mailer: MemoryMailer) -> None:
    (reminder,) = by_purpose(delivery.sessions, "paminnelse-30")
    assert deliver_one(delivery, reminder.id, reminder.due_at) is Outcome.SKIPPED
    assert mailer.messages == []


def test_transient_failure_is_retried_later_with_backoff(
    delivery: Delivery, mailer: MemoryMailer
) -> None:
    (reminder,) = by_purpose(delivery.sessions, "paminnelse-30")
    mailer.fail_recipient(
        "anna@liten.se", TransientDeliveryError("451 try later", smtp_code=451), times=2
    )
    moment = reminder.due_at
    delays = []
    for _ in range(2):
        claim(delivery.sessions, moment)
        assert deliver_one(delivery, reminder.id, moment) is Outcome.RETRY
        retried = row(delivery.sessions, reminder.id)
        assert retried.status == Status.PENDING
        delays.append(retried.due_at - moment)
        moment = retried.due_at
    # 60 s then 120 s, each with 50-100 % jitter
    assert dt.timedelta(seconds=30) <= delays[0] <= dt.timedelta(seconds=60)
    assert dt.timedelta(seconds=60) <= delays[1] <= dt.timedelta(seconds=120)
    claim(delivery.sessions, moment)
    assert deliver_one(delivery, reminder.id, moment) is Outcome.SENT
    with delivery.sessions() as session:
        log = [(a.outcome, a.smtp_code) for a in session.scalars(select(models.DeliveryAttempt))]
    assert log == [("transient", 451), ("transient", 451), ("sent", None)]


def test_transient_failure_past_the_retry_horizon_fails(
    loaded: sessionmaker[Session], mailer: MemoryMailer
) -> None:
    short = Delivery(
        loaded,
        mailer,
        Renderer(ROOT / "templates"),
        RetryPolicy(base_seconds=3600, horizon=dt.timedelta(minutes=30)),
    )
    (reminder,) = by_purpose(loaded, "paminnelse-30")
    mailer.fail_recipient("anna@liten.se", TransientDeliveryError("421 busy", smtp_code=421))
    claim(loaded, reminder.due_at)
    assert deliver_one(short, reminder.id, reminder.due_at) is Outcome.FAILED
    assert row(loaded, reminder.id).status == Status.FAILED


def test_permanent_failure_is_not_retried(delivery: Delivery, mailer: MemoryMailer) -> None:
    (reminder,) = by_purpose(delivery.sessions, "paminnelse-30")
    mailer.fail_recipient(
        "anna@liten.se", PermanentDeliveryError("550 no such user", smtp_code=550)
    )
    claim(delivery.sessions, reminder.due_at)
    assert deliver_one(delivery, reminder.id, reminder.due_at) is Outcome.FAILED
    failed = row(delivery.sessions, reminder.id)
    assert failed.status == Status.FAILED and "550" in (failed.last_error or "")
    assert claim(delivery.sessions, END_OF_2027, limit=10_000).count(reminder.id) == 0


def test_role_that_changed_hands_goes_to_the_new_holder(
    delivery: Delivery, mailer: MemoryMailer
) -> None:
    sessions = delivery.sessions
    (for_cecilia,) = by_purpose(sessions, "underlag")  # due May 2027, when Cecilia is rektor
    assert for_cecilia.recipient_email == "cecilia@liten.se"
    with transaction(sessions) as session:  # Bo comes back early: the profile changed in between
        bo = session.scalars(select(models.Person).where(models.Person.key == "bo")).one()
        cecilia = session.scalars(select(models.Person).where(models.Person.key == "cecilia")).one()
        bo.roles[0].valid_to = None
        cecilia.roles = []
    moment = for_cecilia.due_at
    claim(sessions, moment)
    assert deliver_one(delivery, for_cecilia.id, moment) is Outcome.CANCELLED
    assert mailer.messages == []
    (replacement,) = [r for r in by_purpose(sessions, "underlag") if r.id != for_cecilia.id]
    assert replacement.recipient_email == "bo@liten.se"
    assert claim(sessions, moment) == [replacement.id]
    assert deliver_one(delivery, replacement.id, moment) is Outcome.SENT
    assert [m["To"].addresses[0].addr_spec for m in mailer.messages] == ["bo@liten.se"]


def test_the_row_of_a_former_holder_is_cancelled_with_the_reason(
    delivery: Delivery, mailer: MemoryMailer
) -> None:
    sessions = delivery.sessions
    (for_cecilia,) = by_purpose(sessions, "underlag")
    with transaction(sessions) as session:
        bo = session.scalars(select(models.Person).where(models.Person.key == "bo")).one()
        cecilia = session.scalars(select(models.Person).where(models.Person.key == "cecilia")).one()
        bo.roles[0].valid_to = None
        cecilia.roles = []
    claim(sessions, for_cecilia.due_at)
    deliver_one(delivery, for_cecilia.id, for_cecilia.due_at)
    cancelled = row(sessions, for_cecilia.id)
    assert cancelled.status == Status.CANCELLED
    assert cancelled.cancel_reason == "recipient no longer holds rektor; 1 new holder(s) planned"


def test_sweeper_puts_back_rows_whose_worker_never_finished(loaded: sessionmaker[Session]) -> None:
    (reminder,) = by_purpose(loaded, "paminnelse-30")
    claimed = claim(loaded, reminder.due_at)
    assert reminder.id in claimed
    lease = dt.timedelta(minutes=10)
    with transaction(loaded) as session:
        assert sweep_expired(session, reminder.due_at + dt.timedelta(minutes=5), lease) == 0
    with transaction(loaded) as session:
        assert sweep_expired(session, reminder.due_at + dt.timedelta(minutes=11), lease) == len(
            claimed
        )
    assert row(loaded, reminder.id).status == Status.PENDING
    assert claim(loaded, reminder.due_at) == claimed


def test_booked_meeting_invite_opens_at_13_local_time(
    delivery: Delivery, mailer: MemoryMailer
) -> None:
    book(delivery.sessions, "2027-04-13", LOADED_AT)
    invites = by_purpose(delivery.sessions, "kallelse")
    assert sorted(r.recipient_email for r in invites) == ["anna@liten.se", "cecilia@liten.se"]
    # An attendee's invite (Anna convenes: her own copy is published, see test_message_texts).
    invite = next(r for r in invites if r.recipient_email == "cecilia@liten.se")
    assert invite.due_at.astimezone(STOCKHOLM).date() == dt.date(2027, 3, 23)  # three weeks before
    claim(delivery.sessions, invite.due_at)
    assert deliver_one(delivery, invite.id, invite.due_at) is Outcome.SENT
    (message,) = mailer.messages
    raw = message.as_bytes(policy=email.policy.SMTP)
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    parts = [p for p in parsed.walk() if p.get_content_type() == "text/calendar"]
    assert parts and parts[0].get_param("method") == "REQUEST"
    calendar = icalendar.Calendar.from_ical(parts[0].get_content())
    (event,) = calendar.walk("VEVENT")
    start = event.decoded("DTSTART")
    assert start.tzinfo is not None and str(event["DTSTART"].params["TZID"]) == "Europe/Stockholm"
    assert (start.hour, start.minute) == (13, 0)
    assert start.astimezone(dt.UTC).hour == 11  # summer time: UTC+2
    assert calendar.walk("VTIMEZONE")
    attendees = event.get("ATTENDEE")
    attendees = attendees if isinstance(attendees, list) else [attendees]
    assert [str(a) for a in attendees] == [f"mailto:{invite.recipient_email}"]


def test_rebooking_sends_an_update_with_a_higher_sequence(
    delivery: Delivery, mailer: MemoryMailer
) -> None:
    book(delivery.sessions, "2027-04-13", LOADED_AT)
    first = by_purpose(delivery.sessions, "kallelse")
    moment = first[0].due_at
    for r in first:
        claim(delivery.sessions, moment)
        deliver_one(delivery, r.id, moment)
    later = moment + dt.timedelta(days=2)
    book(delivery.sessions, "2027-04-20", later)
    updates = by_purpose(delivery.sessions, "kallelse-v1")
    assert len(updates) == 2 and all(u.due_at == later for u in updates)
    claim(delivery.sessions, later)
    for u in updates:
        deliver_one(delivery, u.id, later)
    sequences = []
    uids = set()
    for message in mailer.messages:
        part = next(p for p in message.walk() if p.get_content_type() == "text/calendar")
        (event,) = icalendar.Calendar.from_ical(part.get_content()).walk("VEVENT")
        sequences.append(int(event["SEQUENCE"]))
        uids.add(str(event["UID"]))
    assert sorted(sequences) == [0, 0, 1, 1]
    assert len(uids) == 1


def test_the_claim_finds_rows_by_primary_key_on_sqlite(
    loaded: sessionmaker[Session], engine: Engine
) -> None:
    """The claim's update must not scan every pending row: its cost follows what is due."""
    if engine.dialect.name != "sqlite":
        pytest.skip("this is about SQLite's query planner")
    captured: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if statement.startswith("UPDATE notification"):
            captured.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        assert claim(loaded, END_OF_2027)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    ((statement, parameters),) = captured
    with engine.connect() as connection:
        plan = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).fetchall()
    steps = " ".join(str(step[-1]) for step in plan)
    assert "PRIMARY KEY" in steps and "ix_notification_status_due_at" not in steps, steps
