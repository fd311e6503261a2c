"""The life of a meeting's invitation, end to end through the worker and a real SMTP server,
in simulated time: request, move, hand-over, participant removed, call-off, and a retried
older SEQUENCE that must not be delivered.

Every message the server received is parsed (icalendar) and applied, in the order it
arrived, to a tiny calendar per recipient that does what a naive calendar does: a REQUEST or
PUBLISH puts the event (UID) at its time, a CANCEL or a cancelled PUBLISH takes it out, without
comparing SEQUENCE. So a message that overtook its update shows as a wrong final state. RFC 5546
2.1.5 (a newer SEQUENCE wins), 3.2.2 (REQUEST), 3.2.5 (CANCEL, for the whole meeting or for
one attendee).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import icalendar
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import models
from core.settings import ROOT
from models import Status
from models.db import transaction
from scheduler.calendar import STOCKHOLM
from scheduler.outbox import claim_due
from scheduler.planner import replan
from service.booking import book_meeting
from service.meetings import CALLED_OFF, cancel_meeting
from tests.fixtures.caldav import Radicale
from tests.fixtures.smtp import SmtpRecorder
from tests.profiles import MINIMAL, load
from worker.delivery import Delivery, Outcome, RetryPolicy, deliver_one
from worker.mailers import SmtpMailer
from worker.render import Renderer

pytestmark = pytest.mark.integration

LOADED_AT = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC)
ROUTINE = "samverkansmote-var"
UID = "liten-samverkansmote-var-2027@liten.se"
ANNA, CECILIA, DAVID = "anna@liten.se", "cecilia@liten.se", "david@liten.se"
AGENDA = "      agenda: [Uppföljning av föregående möte, Behovsanalys]\n"
BOOKING = '    bookings:\n      2027:\n        date: 2027-04-13\n        time: "13:00"\n'
CECILIA_ROLE = "        from: 2027-02-01\n"
# Cecilia is rektor from February; a substitute, David, holds the role 1-11 April.
SUBSTITUTE = (
    "        from: 2027-02-01\n"
    "        to: 2027-03-31\n"
    "      - role: rektor\n"
    "        unit: ekskolan\n"
    "        from: 2027-04-12\n"
    "  - key: david\n"
    "    name: David Vikarie\n"
    "    email: david@liten.se\n"
    "    roles:\n"
    "      - role: rektor\n"
    "        unit: ekskolan\n"
    "        from: 2027-04-01\n"
    "        to: 2027-04-11\n"
)


def local(day: str, clock: str = "08:00") -> dt.datetime:
    """A moment given in Stockholm time, as UTC."""
    return dt.datetime.fromisoformat(f"{day}T{clock}").replace(tzinfo=STOCKHOLM).astimezone(dt.UTC)


INVITED_AT = local("2027-03-23")  # the invitation is due three weeks before 13 April


def profile(tmp_path: Path, *replacements: tuple[str, str]) -> Path:
    """MINIMAL with the spring meeting booked for 13 April 13:00, and `replacements`."""
    text = MINIMAL.read_text(encoding="utf-8").replace(AGENDA, AGENDA + BOOKING)
    for old, new in replacements:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    target = tmp_path / "profile.yaml"
    target.write_text(text, encoding="utf-8")
    return target


# ------------------------------------------------------------------ what recipients received


@dataclass(frozen=True)
class Invite:
    to: str
    method: str
    sequence: int
    status: str
    uid: str
    start: dt.datetime
    attendees: tuple[str, ...]
    data: bytes  # the calendar part as sent


def received(server: SmtpRecorder) -> list[Invite]:
    found = []
    for message in server.received:
        (to,) = message.rcpt_tos
        for part in message.message.walk():
            if part.get_content_type() != "text/calendar":
                continue
            calendar = icalendar.Calendar.from_ical(part.get_content())
            (event,) = calendar.walk("VEVENT")
            attendees = event.get("ATTENDEE", [])
            if not isinstance(attendees, list):
                attendees = [attendees]
            assert part.get_param("method") == str(calendar["METHOD"])
            found.append(
                Invite(
                    to=to.lower(),
                    method=str(calendar["METHOD"]),
                    sequence=int(event["SEQUENCE"]),
                    status=str(event["STATUS"]),
                    uid=str(event["UID"]),
                    start=event.decoded("DTSTART").astimezone(dt.UTC),
                    attendees=tuple(str(a).lower().removeprefix("mailto:") for a in attendees),
                    data=part.get_payload(decode=True),
                )
            )
    return found


def calendars(invites: list[Invite]) -> dict[str, dict[str, dt.datetime]]:
    """What each recipient's calendar holds after applying the messages in arrival order."""
    held: dict[str, dict[str, dt.datetime]] = {}
    for invite in invites:
        mine = held.setdefault(invite.to, {})
        if invite.method == "CANCEL" or invite.status == "CANCELLED":
            mine.pop(invite.uid, None)
        else:
            mine[invite.uid] = invite.start
    return held


def store_in_caldav(server: Radicale, invites: list[Invite]) -> dict[str, str]:
    """Apply the messages to one CalDAV calendar per recipient, as a calendar client does:
    a REQUEST or PUBLISH stores the event (without METHOD: RFC 4791 4.1), a CANCEL or a
    cancelled PUBLISH deletes it. Returns each recipient's calendar path."""
    paths: dict[str, str] = {}
    for invite in invites:
        path = paths.setdefault(invite.to, server.new_calendar())
        name = invite.uid.replace("@", "-")
        if invite.method == "CANCEL" or invite.status == "CANCELLED":
            status, _ = server.request("DELETE", f"{path}{name}.ics")
            assert status in (200, 204), status
        else:
            lines = invite.data.split(b"\r\n")
            body = b"\r\n".join(line for line in lines if not line.startswith(b"METHOD:"))
            server.put(path, name, body)
    return paths


def sequences_never_fall(invites: list[Invite]) -> None:
    last: dict[tuple[str, str], int] = {}
    for invite in invites:
        key = (invite.to, invite.uid)
        assert invite.sequence >= last.get(key, 0), f"{invite.to} got an older SEQUENCE"
        last[key] = invite.sequence


# ------------------------------------------------------------------------------ the machinery


@pytest.fixture
def delivery(
    session_factory: sessionmaker[Session], smtp_server: SmtpRecorder
) -> Iterator[Delivery]:
    mailer = SmtpMailer(smtp_server.smtp_config())
    yield Delivery(
        session_factory, mailer, Renderer(ROOT / "templates"), RetryPolicy(base_seconds=600)
    )
    mailer.close()


def tick(delivery: Delivery, moment: dt.datetime) -> dict[str, Outcome]:
    """Claim what is due at `moment` and deliver it, as beat and the worker do."""
    with transaction(delivery.sessions) as session:
        ids = claim_due(session, moment, 10_000)
    return {purpose_of(delivery, i): deliver_one(delivery, i, moment) for i in ids}


def purpose_of(delivery: Delivery, notification_id: int) -> str:
    with delivery.sessions() as session:
        row = session.get_one(models.Notification, notification_id)
        return f"{row.purpose}:{row.recipient_email}"


def nightly(delivery: Delivery, moment: dt.datetime) -> None:
    """The nightly re-plan (beat, 02:30), at `moment`."""
    with transaction(delivery.sessions) as session:
        replan(session, municipality_id(session), moment, 400)


def municipality_id(session: Session) -> int:
    return session.scalars(select(models.Municipality.id)).one()


def book(delivery: Delivery, day: str, now: dt.datetime) -> None:
    with transaction(delivery.sessions) as session:
        book_meeting(session, municipality_id(session), ROUTINE, day, "13:00", None, now, 400)


def call_off(delivery: Delivery, now: dt.datetime, day: str = "2027-04-13") -> str:
    with transaction(delivery.sessions) as session:
        return cancel_meeting(session, municipality_id(session), ROUTINE, day, "anna", now, 400)


def row_of(delivery: Delivery, purpose: str, email: str) -> models.Notification:
    with delivery.sessions() as session:
        found = session.scalars(
            select(models.Notification).where(
                models.Notification.purpose == purpose,
                models.Notification.recipient_email == email,
            )
        ).one()
        session.expunge(found)
        return found


def run_days(delivery: Delivery, first: str, last: str) -> None:
    """Each day: the nightly re-plan, then ticks at 08:00 and 17:00."""
    day = dt.date.fromisoformat(first)
    while day <= dt.date.fromisoformat(last):
        nightly(delivery, local(day.isoformat(), "02:30"))
        for clock in ("08:00", "17:00"):
            tick(delivery, local(day.isoformat(), clock))
        day += dt.timedelta(days=1)


MEETING = local("2027-04-13", "13:00")
MOVED = local("2027-04-14", "13:00")


# ------------------------------------------------------------------------------------ request


def test_request_then_move_reach_every_calendar_and_the_convener_gets_her_own_copy(
    tmp_path: Path, delivery: Delivery, smtp_server: SmtpRecorder
) -> None:
    load(delivery.sessions, profile(tmp_path), LOADED_AT)
    tick(delivery, INVITED_AT)
    first = received(smtp_server)
    assert {(i.to, i.method, i.sequence, i.status) for i in first} == {
        (CECILIA, "REQUEST", 0, "CONFIRMED"),
        (ANNA, "PUBLISH", 0, "CONFIRMED"),  # the convener: her own copy, not an attendee
    }
    assert {i.uid for i in first} == {UID}
    assert next(i for i in first if i.to == ANNA).attendees == ()
    assert next(i for i in first if i.to == CECILIA).attendees == (CECILIA,)

    book(delivery, "2027-04-14", INVITED_AT + dt.timedelta(days=7))
    tick(delivery, INVITED_AT + dt.timedelta(days=7))
    every = received(smtp_server)
    assert [(i.to, i.method, i.sequence) for i in every[2:]] == [
        (ANNA, "PUBLISH", 1),
        (CECILIA, "REQUEST", 1),
    ] or [(i.to, i.method, i.sequence) for i in every[2:]] == [
        (CECILIA, "REQUEST", 1),
        (ANNA, "PUBLISH", 1),
    ]
    sequences_never_fall(every)
    assert calendars(every) == {ANNA: {UID: MOVED}, CECILIA: {UID: MOVED}}


def test_a_change_calendars_do_not_show_sends_nothing_again(
    tmp_path: Path, delivery: Delivery, smtp_server: SmtpRecorder
) -> None:
    load(delivery.sessions, profile(tmp_path), LOADED_AT)
    tick(delivery, INVITED_AT)
    assert len(smtp_server.received) == 2
    reworded = profile(tmp_path, ("Behovsanalys]", "Behovsanalys, Övrigt]"))
    load(delivery.sessions, reworded, INVITED_AT + dt.timedelta(days=1))
    run_days(delivery, "2027-03-24", "2027-04-13")
    assert len(smtp_server.received) == 2


# ------------------------------------------------------------- a retry never overtakes its update


def test_a_retried_request_is_not_delivered_after_the_update_that_replaced_it(
    tmp_path: Path, delivery: Delivery, smtp_server: SmtpRecorder
) -> None:
    load(delivery.sessions, profile(tmp_path), LOADED_AT)
    smtp_server.fail_rcpt(CECILIA, 451, "4.3.0 Try again later")
    assert tick(delivery, INVITED_AT)[f"kallelse:{CECILIA}"] is Outcome.RETRY
    smtp_server.accept_rcpt(CECILIA)
    retry_at = row_of(delivery, "kallelse", CECILIA).due_at
    # The retry is claimed (queued, on its way to a worker) ...
    with transaction(delivery.sessions) as session:
        (queued,) = claim_due(session, retry_at, 10_000)
    # ... while the meeting is moved and the update goes out first.
    book(delivery, "2027-04-14", retry_at)
    tick(delivery, retry_at)
    assert deliver_one(delivery, queued, retry_at) is Outcome.CANCELLED
    every = received(smtp_server)
    assert [(i.method, i.sequence) for i in every if i.to == CECILIA] == [("REQUEST", 1)]
    sequences_never_fall(every)
    assert calendars(every)[CECILIA] == {UID: MOVED}
    old = row_of(delivery, "kallelse", CECILIA)
    assert old.status == Status.CANCELLED and old.cancel_reason is not None
    assert old.cancel_reason.startswith("superseded")
    with delivery.sessions() as session:
        outcomes = session.scalars(
            select(models.DeliveryAttempt.outcome)
            .where(models.DeliveryAttempt.notification_id == old.id)
            .order_by(models.DeliveryAttempt.id)
        ).all()
    assert outcomes == ["transient", "skipped"]


def test_a_retry_still_waiting_is_made_obsolete_by_the_move(
    tmp_path: Path, delivery: Delivery, smtp_server: SmtpRecorder
) -> None:
    load(delivery.sessions, profile(tmp_path), LOADED_AT)
    smtp_server.fail_rcpt(CECILIA, 451, "4.3.0 Try again later")
    tick(delivery, INVITED_AT)
    smtp_server.accept_rcpt(CECILIA)
    book(delivery, "2027-04-14", INVITED_AT + dt.timedelta(minutes=1))
    old = row_of(delivery, "kallelse", CECILIA)
    assert old.status == Status.CANCELLED and old.cancel_reason is not None
    assert old.cancel_reason.startswith("superseded")
    run_days(delivery, "2027-03-23", "2027-03-26")
    every = received(smtp_server)
    assert [(i.method, i.sequence) for i in every if i.to == CECILIA] == [("REQUEST", 1)]
    assert calendars(every)[CECILIA] == {UID: MOVED}


# ------------------------------------------------------------------------------- hand-over


def test_a_substitute_takes_the_meeting_over_and_hands_it_back(
    tmp_path: Path, delivery: Delivery, smtp_server: SmtpRecorder
) -> None:
    load(delivery.sessions, profile(tmp_path, (CECILIA_ROLE, SUBSTITUTE)), LOADED_AT)
    run_days(delivery, "2027-03-23", "2027-03-31")
    assert calendars(received(smtp_server))[CECILIA] == {UID: MEETING}

    run_days(delivery, "2027-04-01", "2027-04-01")  # David's period starts
    held = calendars(received(smtp_server))
    assert held[CECILIA] == {} and held[DAVID] == {UID: MEETING}

    run_days(delivery, "2027-04-02", "2027-04-13")  # and ends on the 11th
    every = received(smtp_server)
    assert [(i.method, i.sequence) for i in every if i.to == CECILIA] == [
        ("REQUEST", 0),
        ("CANCEL", 0),
        ("REQUEST", 0),  # the same SEQUENCE, a later DTSTAMP: newer (RFC 5546 2.1.5)
    ]
    assert [(i.method, i.sequence) for i in every if i.to == DAVID] == [
        ("REQUEST", 0),
        ("CANCEL", 0),
    ]
    assert all(i.attendees == (i.to,) for i in every if i.to != ANNA)
    sequences_never_fall(every)
    assert calendars(every) == {ANNA: {UID: MEETING}, CECILIA: {UID: MEETING}, DAVID: {}}


def test_a_participant_who_leaves_the_profile_gets_the_meeting_taken_out(
    tmp_path: Path, delivery: Delivery, smtp_server: SmtpRecorder
) -> None:
    load(delivery.sessions, profile(tmp_path), LOADED_AT)
    tick(delivery, INVITED_AT)
    cecilia = (
        "  - key: cecilia\n    name: Cecilia Vikarie\n    email: cecilia@liten.se\n"
        "    roles:\n      - role: rektor\n        unit: ekskolan\n        from: 2027-02-01\n"
    )
    load(delivery.sessions, profile(tmp_path, (cecilia, "")), INVITED_AT + dt.timedelta(days=2))
    run_days(delivery, "2027-03-25", "2027-04-13")
    every = received(smtp_server)
    assert [(i.method, i.sequence) for i in every if i.to == CECILIA] == [
        ("REQUEST", 0),
        ("CANCEL", 0),
    ]
    assert calendars(every) == {ANNA: {UID: MEETING}, CECILIA: {}}


# --------------------------------------------------------------------------------- call-off


def test_calling_off_cancels_it_in_every_calendar_that_holds_it(
    tmp_path: Path, delivery: Delivery, smtp_server: SmtpRecorder
) -> None:
    load(delivery.sessions, profile(tmp_path), LOADED_AT)
    tick(delivery, INVITED_AT)
    called = INVITED_AT + dt.timedelta(days=3)
    assert "called off" in call_off(delivery, called)
    tick(delivery, called)
    every = received(smtp_server)
    assert {(i.to, i.method, i.sequence, i.status) for i in every[2:]} == {
        (CECILIA, "CANCEL", 1, "CANCELLED"),
        (ANNA, "PUBLISH", 1, "CANCELLED"),
    }
    assert calendars(every) == {ANNA: {}, CECILIA: {}}
    run_days(delivery, "2027-03-27", "2027-04-14")  # and nothing more is sent for it
    assert len(smtp_server.received) == 4


def test_the_call_off_goes_to_who_was_invited_not_to_who_holds_the_role_now(
    tmp_path: Path, delivery: Delivery, smtp_server: SmtpRecorder
) -> None:
    load(delivery.sessions, profile(tmp_path, (CECILIA_ROLE, SUBSTITUTE)), LOADED_AT)
    tick(delivery, INVITED_AT)
    called = local("2027-04-02", "10:00")  # David holds the role now; he was never invited
    call_off(delivery, called)
    tick(delivery, called)
    every = received(smtp_server)
    assert [(i.to, i.method) for i in every if i.to != ANNA] == [
        (CECILIA, "REQUEST"),
        (CECILIA, "CANCEL"),
    ]
    assert calendars(every) == {ANNA: {}, CECILIA: {}}


def test_calling_off_cancels_messages_still_to_be_sent_with_the_reason(
    tmp_path: Path, delivery: Delivery
) -> None:
    load(delivery.sessions, profile(tmp_path), LOADED_AT)
    call_off(delivery, INVITED_AT - dt.timedelta(days=1))
    waiting = row_of(delivery, "kallelse", CECILIA)
    assert (waiting.status, waiting.cancel_reason) == (Status.CANCELLED, CALLED_OFF)


@pytest.mark.parametrize("removed", ["booking", "routine"])
def test_removing_the_booking_or_the_routine_from_the_profile_calls_the_meeting_off(
    tmp_path: Path, delivery: Delivery, smtp_server: SmtpRecorder, removed: str
) -> None:
    load(delivery.sessions, profile(tmp_path), LOADED_AT)
    tick(delivery, INVITED_AT)
    text = profile(tmp_path).read_text(encoding="utf-8")
    if removed == "booking":
        text = text.replace(BOOKING, "")
    else:
        start = text.index("  - key: samverkansmote-var")
        text = text[:start] + text[text.index("places:") :]
    edited = tmp_path / "edited.yaml"
    edited.write_text(text, encoding="utf-8")
    reloaded = INVITED_AT + dt.timedelta(days=1)
    load(delivery.sessions, edited, reloaded)
    tick(delivery, reloaded)
    every = received(smtp_server)
    assert {(i.to, i.method, i.sequence, i.status) for i in every[2:]} == {
        (CECILIA, "CANCEL", 1, "CANCELLED"),
        (ANNA, "PUBLISH", 1, "CANCELLED"),
    }
    assert calendars(every) == {ANNA: {}, CECILIA: {}}


def test_the_hand_over_stored_in_a_caldav_server_leaves_the_meeting_where_it_belongs(
    tmp_path: Path, delivery: Delivery, smtp_server: SmtpRecorder, radicale: Radicale
) -> None:
    load(delivery.sessions, profile(tmp_path, (CECILIA_ROLE, SUBSTITUTE)), LOADED_AT)
    run_days(delivery, "2027-03-23", "2027-04-13")
    paths = store_in_caldav(radicale, received(smtp_server))
    hour = (MEETING, MEETING + dt.timedelta(hours=1))
    found = {to: radicale.overlapping(path, *hour) for to, path in paths.items()}
    name = UID.replace("@", "-")
    assert found == {ANNA: {name}, CECILIA: {name}, DAVID: set()}
