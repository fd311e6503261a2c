"""Meeting places are profile data chosen by key; the profile itself is read by the guard.

What an invite says about where a meeting is comes from the profile's `places`, chosen by
key when booking: nothing typed at booking reaches a message. Every string of a profile goes
through the identity-number guard at load. Each refusal names file, line and field, never the
value, and changes nothing.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import re
from pathlib import Path

import icalendar
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

import models
from core.settings import ROOT
from models.db import transaction
from scheduler.outbox import claim_due
from service.booking import BookingError, book_meeting
from tests.profiles import MINIMAL, load, refusal, snapshot, write_variant
from worker.delivery import Delivery, Outcome, deliver_one
from worker.mailers import MemoryMailer
from worker.render import Renderer

NOW = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC)
PLACES = "places:\n  - key: stadshuset\n    name: Stadshuset\n"
# Valid numbers (date and check digit), in shapes people type.
NUMBERS = ["120315-1236", "2012-03-15-1236", "12 03 15-1236", "120315_1236", "1203\u200b151236"]


def variant(tmp_path: Path, old: str, new: str) -> Path:
    return write_variant(tmp_path, old, new)


@pytest.mark.parametrize(
    ("old", "new", "field", "message"),
    [
        (
            "      place: stadshuset\n",
            "      place: radhuset\n",
            "routines[1].meeting.place",
            "no place with that key under 'places'",
        ),
        (
            "      place: stadshuset\n",
            "      location: Stadshuset, rum 3\n",
            "routines[1].meeting",
            "'location' is no longer free text",
        ),
        (
            PLACES,
            PLACES + "    unit: almskolan\n",
            "places[0].unit",
            "no unit with that key",
        ),
        (
            PLACES,
            PLACES + "  - key: stadshuset\n    name: Stadshuset igen\n",
            "places[1].key",
            "duplicate key",
        ),
        (
            PLACES,
            PLACES + "    video: http://mote.liten.se/x\n",
            "places[0].video",
            "String should match pattern",
        ),
        (
            "      agenda: [Uppföljning av föregående möte, Behovsanalys]\n",
            "      agenda: [Uppföljning av föregående möte, Behovsanalys]\n    bookings:\n"
            "      2027: {date: 2027-04-13, time: '13:00', place: radhuset}\n",
            "routines[1].bookings[2027].place",
            "no place with that key",
        ),
    ],
)
def test_a_bad_place_is_refused_naming_file_line_and_field(
    tmp_path: Path,
    session_factory: sessionmaker[Session],
    engine: Engine,
    old: str,
    new: str,
    field: str,
    message: str,
) -> None:
    text = refusal(session_factory, engine, variant(tmp_path, old, new), NOW)
    assert re.search(rf"minimal\.yaml:\d+: {re.escape(field)}: {re.escape(message)}", text), text
    assert "radhuset" not in text and "rum 3" not in text  # the value is never repeated


FIELDS = [
    ("  name: Lilla kommunen\n", "  name: Lilla kommunen {n}\n", "municipality.name"),
    ("    name: Anna Chef\n", "    name: Anna Chef {n}\n", "people[0].name"),
    ("    email: anna@liten.se\n", "    email: anna.{n}@liten.se\n", "people[0].email"),
    (PLACES, PLACES + "    address: Storgatan {n}\n", "places[0].address"),
    (
        "      agenda: [Uppföljning av föregående möte, Behovsanalys]\n",
        "      agenda: [Uppföljning av föregående möte, 'Behovsanalys {n}']\n",
        "routines[1].meeting.agenda[1]",
    ),
    ("    name: Utvärdering av samverkan\n", "    name: 'Utvärdering {n}'\n", "routines[0].name"),
]


@pytest.mark.parametrize(("old", "new", "field"), FIELDS)
@pytest.mark.parametrize("number", NUMBERS)
def test_an_identity_number_anywhere_in_a_profile_is_refused(
    tmp_path: Path,
    session_factory: sessionmaker[Session],
    engine: Engine,
    old: str,
    new: str,
    field: str,
    number: str,
) -> None:
    if "email" in field:
        number = re.sub(r"[^0-9]", ".", number).replace("..", ".")
    bad = variant(tmp_path, old, new.format(n=number))
    text = refusal(session_factory, engine, bad, NOW)
    assert re.search(rf":\d+: {re.escape(field)}(:| )", text), text
    assert "1236" not in text  # the value is never repeated


def with_place(tmp_path: Path) -> Path:
    return variant(
        tmp_path,
        PLACES,
        PLACES
        + "    address: Storgatan 1, Lilla\n  - key: video\n    name: Videomöte\n"
        + "    video: https://mote.liten.se/samverkan\n",
    )


def test_book_takes_a_place_by_key_and_the_invite_says_what_the_profile_says(
    tmp_path: Path, session_factory: sessionmaker[Session]
) -> None:
    load(session_factory, with_place(tmp_path), NOW)
    with transaction(session_factory) as session:
        municipality_id = session.scalars(select(models.Municipality.id)).one()
        book_meeting(
            session, municipality_id, "samverkansmote-var", "2027-04-13", "13:00", "video", NOW, 400
        )
    sent = deliver_invite(session_factory)
    calendar = next(p for p in sent.walk() if p.get_content_type() == "text/calendar")
    (event,) = icalendar.Calendar.from_ical(calendar.get_content()).walk("VEVENT")
    assert str(event["LOCATION"]) == "Videomöte"
    assert "https://mote.liten.se/samverkan" in str(event["DESCRIPTION"])
    plain = next(p for p in sent.walk() if p.get_content_type() == "text/plain").get_content()
    assert "Plats: Videomöte; video: https://mote.liten.se/samverkan" in plain


def test_without_a_place_the_routine_default_with_its_address_is_used(
    tmp_path: Path, session_factory: sessionmaker[Session]
) -> None:
    load(session_factory, with_place(tmp_path), NOW)
    with transaction(session_factory) as session:
        municipality_id = session.scalars(select(models.Municipality.id)).one()
        book_meeting(
            session, municipality_id, "samverkansmote-var", "2027-04-13", "13:00", None, NOW, 400
        )
    sent = deliver_invite(session_factory)
    calendar = next(p for p in sent.walk() if p.get_content_type() == "text/calendar")
    (event,) = icalendar.Calendar.from_ical(calendar.get_content()).walk("VEVENT")
    assert str(event["LOCATION"]) == "Stadshuset, Storgatan 1, Lilla"


@pytest.mark.parametrize("typed", ["Stadshuset, rum 3", "Rum 3, Lisa 120315-1236", "radhuset"])
def test_book_refuses_anything_but_a_place_key_and_changes_nothing(
    session_factory: sessionmaker[Session], engine: Engine, typed: str
) -> None:
    load(session_factory, MINIMAL, NOW)
    before = snapshot(engine)
    with transaction(session_factory) as session, pytest.raises(BookingError) as refused:
        municipality_id = session.scalars(select(models.Municipality.id)).one()
        book_meeting(
            session, municipality_id, "samverkansmote-var", "2027-04-13", "13:00", typed, NOW, 400
        )
    assert str(refused.value).startswith("--place: no place with that key")
    assert typed not in str(refused.value) and "Rum" not in str(refused.value)
    assert snapshot(engine) == before


def deliver_invite(sessions: sessionmaker[Session]) -> email.message.EmailMessage:
    with sessions() as session:
        invite = session.scalars(
            select(models.Notification).where(models.Notification.purpose == "kallelse")
        ).first()
        assert invite is not None
        session.expunge(invite)
    with transaction(sessions) as session:
        claim_due(session, invite.due_at, 100)
    mailer = MemoryMailer()
    delivery = Delivery(sessions, mailer, Renderer(ROOT / "templates"))
    assert deliver_one(delivery, invite.id, invite.due_at) is Outcome.SENT
    (sent,) = mailer.messages
    parsed = email.message_from_bytes(
        sent.as_bytes(policy=email.policy.SMTP), policy=email.policy.default
    )
    assert isinstance(parsed, email.message.EmailMessage)
    return parsed
