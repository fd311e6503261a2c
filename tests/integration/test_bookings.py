"""Bookings, whatever the route: the profile's `bookings:` are checked as `samverkan book` is,
a change before the first invitation changes that invitation, and a message that cannot be
built fails its own row only. Real databases (SQLite and PostgreSQL), the worker's delivery
function and the in-memory mailer."""

from __future__ import annotations

import datetime as dt
import email.policy
import re
from pathlib import Path
from typing import Any

import icalendar
import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session, sessionmaker

import models
from core.settings import ROOT
from models import Status
from models.db import transaction
from scheduler.calendar import STOCKHOLM
from scheduler.outbox import claim_due
from service.booking import BookingError, book_meeting
from tests.profiles import MINIMAL, load, refusal, snapshot
from worker.delivery import Delivery, Outcome, RetryPolicy, deliver_one
from worker.mailers import MemoryMailer
from worker.render import Renderer

LOADED_AT = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC)
AGENDA = "      agenda: [Uppföljning av föregående möte, Behovsanalys]\n"


def with_booking(
    tmp_path: Path, date: str, time: str, location: str | None = None, year: int | None = None
) -> Path:
    """MINIMAL with a `bookings:` entry for the spring meeting."""
    year = year or int(date[:4])
    lines = [f'    bookings:\n      {year}:\n        date: {date}\n        time: "{time}"\n']
    if location is not None:  # a place is chosen by key: Stadshuset, or Rådhuset added below
        lines.append(f"        place: {PLACE_KEYS[location]}\n")
    text = MINIMAL.read_text(encoding="utf-8") + "  - key: radhuset\n    name: Rådhuset\n"
    assert text.count(AGENDA) == 1
    target = tmp_path / "profile.yaml"
    target.write_text(text.replace(AGENDA, AGENDA + "".join(lines)), encoding="utf-8")
    return target


PLACE_KEYS = {"Stadshuset": "stadshuset", "Rådhuset": "radhuset"}


def line_of(path: Path, start: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if line.startswith(start))


def rows(sessions: sessionmaker[Session], purpose_prefix: str) -> list[models.Notification]:
    with sessions() as session:
        found = list(
            session.scalars(
                select(models.Notification)
                .where(models.Notification.purpose.startswith(purpose_prefix))
                .order_by(models.Notification.id)
            )
        )
        session.expunge_all()
        return found


def deliver_due(delivery: Delivery, moment: dt.datetime) -> dict[int, Outcome]:
    """Claim what is due at `moment` and deliver each row, as a tick and the worker do."""
    with transaction(delivery.sessions) as session:
        ids = claim_due(session, moment, 10_000)
    return {i: deliver_one(delivery, i, moment) for i in ids}


def events(mailer: MemoryMailer) -> list[Any]:
    """The calendar events of the messages sent (messages without an invite have none)."""
    found = []
    for message in mailer.messages:
        parsed = email.message_from_bytes(
            message.as_bytes(policy=email.policy.SMTP), policy=email.policy.default
        )
        for part in parsed.walk():
            if part.get_content_type() == "text/calendar":
                (event,) = icalendar.Calendar.from_ical(part.get_content()).walk("VEVENT")
                found.append(event)
    return found


@pytest.fixture
def mailer() -> MemoryMailer:
    return MemoryMailer()


@pytest.fixture
def delivery(session_factory: sessionmaker[Session], mailer: MemoryMailer) -> Delivery:
    return Delivery(
        session_factory, mailer, Renderer(ROOT / "templates"), RetryPolicy(base_seconds=60)
    )


# --------------------------------------------------------------- one validation for both routes

REFUSED = [
    # date, time, field, what the message says
    pytest.param("2027-04-11", "13:00", "date", "not a working day (Sunday)", id="sunday"),
    pytest.param("2027-05-11", "13:00", "date", "held in April", id="outside-the-month"),
    pytest.param("2027-03-28", "02:30", "time", "does not exist in Stockholm", id="spring-gap"),
]


@pytest.mark.parametrize(("date", "time", "field", "says"), REFUSED)
def test_a_profile_booking_breaking_a_rule_is_refused_with_file_line_and_field(
    tmp_path: Path,
    session_factory: sessionmaker[Session],
    engine: Engine,
    date: str,
    time: str,
    field: str,
    says: str,
) -> None:
    bad = with_booking(tmp_path, date, time)
    message = refusal(session_factory, engine, bad, LOADED_AT)
    line = line_of(bad, f"        {field}: ")  # the booking's own field
    assert f"{bad}:{line}: routines[1].bookings[{date[:4]}].{field}: " in message
    assert says in message


@pytest.mark.parametrize(("date", "time", "field", "says"), REFUSED)
def test_the_book_command_refuses_the_same_bookings_and_changes_nothing(
    session_factory: sessionmaker[Session],
    engine: Engine,
    date: str,
    time: str,
    field: str,
    says: str,
) -> None:
    load(session_factory, MINIMAL, LOADED_AT)
    before = snapshot(engine)
    with (
        pytest.raises(BookingError, match=re.escape(says)),
        transaction(session_factory) as session,
    ):
        municipality_id = session.scalars(select(models.Municipality.id)).one()
        book_meeting(
            session, municipality_id, "samverkansmote-var", date, time, None, LOADED_AT, 400
        )
    assert snapshot(engine) == before


def test_a_profile_booking_for_another_year_than_its_key_is_refused(
    tmp_path: Path, session_factory: sessionmaker[Session], engine: Engine
) -> None:
    bad = with_booking(tmp_path, "2028-04-11", "13:00", year=2027)
    message = refusal(session_factory, engine, bad, LOADED_AT)
    assert "routines[1].bookings[2027].date: " in message and "April 2027" in message


def test_a_past_booking_in_the_profile_is_kept_as_a_record_and_invites_nobody(
    tmp_path: Path, session_factory: sessionmaker[Session], engine: Engine
) -> None:
    profile = with_booking(tmp_path, "2026-04-14", "13:00")  # last spring, loaded in November
    load(session_factory, profile, LOADED_AT)
    with session_factory() as session:
        booking = session.scalars(select(models.Booking)).one()
        assert booking.occurrence == "2026" and booking.sequence == 0
    assert rows(session_factory, "kallelse") == []
    before = snapshot(engine)
    load(session_factory, profile, LOADED_AT + dt.timedelta(days=1))  # and again: still nothing
    assert snapshot(engine) == before


def test_the_book_command_refuses_a_meeting_that_has_begun(
    session_factory: sessionmaker[Session],
) -> None:
    load(session_factory, MINIMAL, LOADED_AT)
    now = dt.datetime(2027, 4, 13, 11, 30, tzinfo=dt.UTC)  # 13:30 in Stockholm
    with (
        pytest.raises(BookingError, match="already passed"),
        transaction(session_factory) as session,
    ):
        municipality_id = session.scalars(select(models.Municipality.id)).one()
        book_meeting(
            session, municipality_id, "samverkansmote-var", "2027-04-13", "13:00", None, now, 400
        )


# ------------------------------------------------------ a change before the first invitation


def test_a_change_of_place_before_the_invitation_changes_that_invitation(
    tmp_path: Path, delivery: Delivery, mailer: MemoryMailer
) -> None:
    sessions = delivery.sessions
    load(sessions, with_booking(tmp_path, "2027-04-13", "13:00", "Stadshuset"), LOADED_AT)
    first = rows(sessions, "kallelse")
    assert len(first) == 2
    changed_at = LOADED_AT + dt.timedelta(days=30)
    load(sessions, with_booking(tmp_path, "2027-04-13", "13:00", "Rådhuset"), changed_at)
    after = rows(sessions, "kallelse")
    assert [(r.id, r.idempotency_key, r.due_at, r.status) for r in after] == [
        (r.id, r.idempotency_key, r.due_at, Status.PENDING) for r in first
    ]
    assert all(r.context["meeting"]["location"] == "Rådhuset" for r in after)
    outcomes = deliver_due(delivery, first[0].due_at)
    assert set(outcomes.values()) == {Outcome.SENT}
    sent = events(mailer)
    # Anna convenes: her copy names her as organizer, not as attendee.
    assert sorted(str(e.get("ATTENDEE", e["ORGANIZER"])) for e in sent) == [
        "mailto:anna@liten.se",
        "mailto:cecilia@liten.se",
    ]
    assert {(int(e["SEQUENCE"]), str(e["LOCATION"])) for e in sent} == {(0, "Rådhuset")}


def test_a_change_of_time_by_command_before_the_invitation_keeps_sequence_0(
    delivery: Delivery, mailer: MemoryMailer
) -> None:
    sessions = delivery.sessions
    load(sessions, MINIMAL, LOADED_AT)
    with transaction(sessions) as session:
        mid = session.scalars(select(models.Municipality.id)).one()
        book_meeting(
            session, mid, "samverkansmote-var", "2027-04-13", "13:00", None, LOADED_AT, 400
        )
    first = rows(sessions, "kallelse")
    later = LOADED_AT + dt.timedelta(days=10)
    with transaction(sessions) as session:
        book_meeting(session, mid, "samverkansmote-var", "2027-04-13", "14:30", None, later, 400)
    after = rows(sessions, "kallelse")
    assert [(r.idempotency_key, r.due_at) for r in after] == [
        (r.idempotency_key, r.due_at) for r in first
    ]
    deliver_due(delivery, first[0].due_at)
    sent = events(mailer)
    assert len(sent) == 2
    for event in sent:
        start = event.decoded("DTSTART")
        assert int(event["SEQUENCE"]) == 0 and (start.hour, start.minute) == (14, 30)


def test_a_move_to_an_earlier_day_before_the_invitation_sends_the_first_invitation_now(
    delivery: Delivery, mailer: MemoryMailer
) -> None:
    """Moved so close that the usual notice has passed: still the first invitation (SEQUENCE 0,
    the same rows), now due at once."""
    sessions = delivery.sessions
    load(sessions, MINIMAL, LOADED_AT)
    with transaction(sessions) as session:
        mid = session.scalars(select(models.Municipality.id)).one()
        book_meeting(
            session, mid, "samverkansmote-var", "2027-04-27", "13:00", None, LOADED_AT, 400
        )
    first = rows(sessions, "kallelse")
    moved_at = dt.datetime(2027, 4, 1, 9, 0, tzinfo=dt.UTC)
    assert all(r.due_at > moved_at for r in first)
    with transaction(sessions) as session:
        book_meeting(session, mid, "samverkansmote-var", "2027-04-13", "13:00", None, moved_at, 400)
    after = rows(sessions, "kallelse")
    assert [(r.id, r.due_at) for r in after] == [(r.id, moved_at) for r in first]
    deliver_due(delivery, moved_at)
    sent = [(int(e["SEQUENCE"]), e.decoded("DTSTART").date()) for e in events(mailer)]
    assert sent == [(0, dt.date(2027, 4, 13))] * 2


def test_a_change_after_the_invitation_went_out_sends_an_update_at_once(
    tmp_path: Path, delivery: Delivery, mailer: MemoryMailer
) -> None:
    sessions = delivery.sessions
    load(sessions, with_booking(tmp_path, "2027-04-13", "13:00", "Stadshuset"), LOADED_AT)
    due = rows(sessions, "kallelse")[0].due_at
    deliver_due(delivery, due)
    changed_at = due + dt.timedelta(days=2)
    load(sessions, with_booking(tmp_path, "2027-04-13", "13:00", "Rådhuset"), changed_at)
    updates = rows(sessions, "kallelse-v1")
    assert len(updates) == 2 and all(u.due_at == changed_at for u in updates)
    deliver_due(delivery, changed_at)
    sent = events(mailer)
    assert sorted((int(e["SEQUENCE"]), str(e["LOCATION"])) for e in sent) == [
        (0, "Stadshuset"),
        (0, "Stadshuset"),
        (1, "Rådhuset"),
        (1, "Rådhuset"),
    ]
    assert len({str(e["UID"]) for e in sent}) == 1


def test_a_change_while_the_invitation_is_overdue_sends_an_update(
    delivery: Delivery, mailer: MemoryMailer
) -> None:
    """Booked late, so invited at once; changed before a tick sent it: the change goes as an
    update, and the overdue row it replaces is made obsolete (an older SEQUENCE must not
    follow or precede it: docs/invites.md, the lifecycle)."""
    sessions = delivery.sessions
    load(sessions, MINIMAL, LOADED_AT)
    booked_at = dt.datetime(2027, 4, 6, 8, 0, tzinfo=dt.UTC)
    with transaction(sessions) as session:
        mid = session.scalars(select(models.Municipality.id)).one()
        book_meeting(
            session, mid, "samverkansmote-var", "2027-04-13", "13:00", None, booked_at, 400
        )
    assert {r.due_at for r in rows(sessions, "kallelse")} == {booked_at}
    changed_at = booked_at + dt.timedelta(minutes=5)
    with transaction(sessions) as session:
        book_meeting(
            session, mid, "samverkansmote-var", "2027-04-13", "14:00", None, changed_at, 400
        )
    deliver_due(delivery, changed_at)
    sent = sorted((int(e["SEQUENCE"]), e.decoded("DTSTART").hour) for e in events(mailer))
    assert sent == [(1, 14), (1, 14)]
    assert {r.cancel_reason for r in rows(sessions, "kallelse") if r.purpose == "kallelse"} == {
        "superseded by SEQUENCE 1"
    }


# ---------------------------------------------------------- a message that cannot be built


def _break_template(context: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    return context, "no-such-template"


def _break_invite(context: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    meeting = dict(context["meeting"])
    meeting["end"] = meeting["start"]  # build_invite raises ValueError: end must follow start
    return {**context, "meeting": meeting}, None


def _break_attachment(context: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    return {**context, "attachment_files": ["0" * 64]}, None


@pytest.mark.parametrize(
    "breaking",
    [
        pytest.param(_break_template, id="template"),
        pytest.param(_break_invite, id="invite"),
        pytest.param(_break_attachment, id="attachment"),
    ],
)
def test_a_row_that_cannot_be_built_fails_with_its_reason_and_the_next_rows_are_sent(
    delivery: Delivery, mailer: MemoryMailer, breaking: Any
) -> None:
    sessions = delivery.sessions
    load(sessions, MINIMAL, LOADED_AT)
    with transaction(sessions) as session:
        mid = session.scalars(select(models.Municipality.id)).one()
        book_meeting(
            session, mid, "samverkansmote-var", "2027-04-13", "13:00", None, LOADED_AT, 400
        )
    broken, other = rows(sessions, "kallelse")
    context, template = breaking(broken.context)
    with transaction(sessions) as session:
        session.execute(
            update(models.Notification)
            .where(models.Notification.id == broken.id)
            .values(context=context, template=template or broken.template)
        )
    outcomes = deliver_due(delivery, broken.due_at)
    assert outcomes == {broken.id: Outcome.FAILED, other.id: Outcome.SENT}
    with sessions() as session:
        row = session.get_one(models.Notification, broken.id)
        assert row.status == Status.FAILED and row.last_error and row.claimed_at is None
        (attempt,) = session.scalars(
            select(models.DeliveryAttempt).where(models.DeliveryAttempt.notification_id == row.id)
        )
        assert attempt.outcome == "permanent" and attempt.error == row.last_error
    assert [m["To"] for m in mailer.messages] == [
        f"{other.recipient_name} <{other.recipient_email}>"
    ]


def test_a_meeting_ending_in_the_repeated_autumn_hour_builds_with_the_right_instants(
    delivery: Delivery, mailer: MemoryMailer
) -> None:
    sessions = delivery.sessions
    load(sessions, MINIMAL, LOADED_AT)
    with transaction(sessions) as session:
        mid = session.scalars(select(models.Municipality.id)).one()
        book_meeting(
            session, mid, "samverkansmote-var", "2027-04-13", "13:00", None, LOADED_AT, 400
        )
    invite = rows(sessions, "kallelse")[0]
    # 01:30 summer time to 02:30 winter time on 31 October 2027: both passes of 02:00-03:00.
    start = dt.datetime(2027, 10, 30, 23, 30, tzinfo=dt.UTC)
    end = start + dt.timedelta(minutes=120)
    assert end.astimezone(STOCKHOLM).fold == 1
    meeting = {
        **invite.context["meeting"],
        "start": start.astimezone(STOCKHOLM).isoformat(),
        "end": end.astimezone(STOCKHOLM).isoformat(),
    }
    with transaction(sessions) as session:
        session.execute(
            update(models.Notification)
            .where(models.Notification.id == invite.id)
            .values(context={**invite.context, "meeting": meeting})
        )
        claim_due(session, invite.due_at, 10_000)
    assert deliver_one(delivery, invite.id, invite.due_at) is Outcome.SENT
    (event,) = events(mailer)
    assert event.decoded("DTSTART").astimezone(dt.UTC) == start
    assert event.decoded("DTEND").astimezone(dt.UTC) == end
