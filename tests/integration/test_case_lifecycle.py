"""The life of a case meeting's invitation, end to end through the worker and a real SMTP
server, in simulated time: booked, moved, and called off (the case closed), including after
the school's role changed hands.

As for routine meetings (tests/integration/test_invite_lifecycle.py, whose parsing and tiny
per-recipient calendar this reuses): every message the server received is parsed and applied
in arrival order to a calendar per recipient that does not compare SEQUENCE. RFC 5546 3.2.2
(REQUEST), 3.2.5 (CANCEL to every attendee: those who were sent the invitation).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import models
from core.settings import ROOT
from models import Status
from models.db import transaction
from scheduler.calendar import STOCKHOLM
from scheduler.outbox import claim_due
from service import cases
from tests.fixtures.smtp import SmtpRecorder
from tests.integration.test_invite_lifecycle import calendars, received, sequences_never_fall
from tests.profiles import load
from worker.delivery import Delivery, DeliveryOutcome, RetryPolicy, deliver_one
from worker.render import Renderer
from worker.smtp_mailer import SmtpMailer

pytestmark = pytest.mark.integration

CASES = Path(__file__).parent.parent / "data" / "cases.yaml"
SAM, FIA, RUT, ULLA = "sam@fallby.se", "fia@fallby.se", "rut@fallby.se", "ulla@fallby.se"
VH1, VH2 = "vh1@hem.se", "vh2@hem.se"
RUT_ROLE = "    roles: [{role: rektor, unit: ekskolan}]\n  - key: fia\n"
# Rut is rektor of Ekskolan until 15 March; Ulla from the 16th.
HANDED_OVER = (
    "    roles: [{role: rektor, unit: ekskolan, to: 2027-03-15}]\n"
    "  - key: ulla\n"
    "    name: Ulla Rektor\n"
    "    email: ulla@fallby.se\n"
    "    roles: [{role: rektor, unit: ekskolan, from: 2027-03-16}]\n"
    "  - key: fia\n"
)


def at(text: str) -> dt.datetime:
    """A local Stockholm moment, as aware UTC."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=STOCKHOLM).astimezone(dt.UTC)


LOADED = at("2027-03-01T07:00")
MEETING = at("2027-03-25T13:00")
MOVED = at("2027-03-24T13:00")


@pytest.fixture
def sessions(session_factory: sessionmaker[Session], tmp_path: Path) -> sessionmaker[Session]:
    text = CASES.read_text(encoding="utf-8")
    assert text.count(RUT_ROLE) == 1
    profile = tmp_path / "cases.yaml"
    profile.write_text(text.replace(RUT_ROLE, HANDED_OVER), encoding="utf-8")
    load(session_factory, profile, LOADED)
    return session_factory


@pytest.fixture
def delivery(sessions: sessionmaker[Session], smtp_server: SmtpRecorder) -> Iterator[Delivery]:
    mailer = SmtpMailer(smtp_server.smtp_config())
    yield Delivery(sessions, mailer, Renderer(ROOT / "templates"), RetryPolicy(base_seconds=600))
    mailer.close()


def run(sessions: sessionmaker[Session], work: Any, *args: Any, by: str, now: dt.datetime) -> Any:
    with transaction(sessions) as session:
        municipality_id = session.scalars(select(models.Municipality.id)).one()
        return work(cases.Desk.open(session, municipality_id, by, now), *args)


def tick(delivery: Delivery, moment: dt.datetime) -> dict[str, DeliveryOutcome]:
    """Claim what is due at `moment` and deliver it, as beat and the worker do."""
    with transaction(delivery.sessions) as session:
        ids = claim_due(session, moment, 10_000)
    outcomes = {}
    for i in ids:
        with delivery.sessions() as session:
            row = session.get_one(models.Notification, i)
            key = f"{row.purpose}:{row.recipient_email}"
        outcomes[key] = deliver_one(delivery, i, moment)
    return outcomes


def open_and_book(sessions: sessionmaker[Session], delivery: Delivery) -> str:
    """Sam opens a case with Ekskolan (its rektor), Fia and two guardians; books 25 March."""
    request = cases.CaseRequest(
        owner="sam", school="ekskolan", family_worker="fia", guardians=(VH1, VH2)
    )
    opened = run(sessions, cases.open_case, request, by="sam", now=at("2027-03-02T09:00"))
    reference = str(opened.reference)
    consent = cases.ConsentRequest("vårdnadshavarna", "samverkansmöte", None, False)
    run(sessions, cases.record_consent, reference, consent, by="sam", now=at("2027-03-02T10:00"))
    book(sessions, reference, "2027-03-25", at("2027-03-03T10:00"))
    tick(delivery, at("2027-03-03T10:00"))
    return reference


def book(sessions: sessionmaker[Session], reference: str, day: str, now: dt.datetime) -> None:
    request = cases.BookingRequest(day, "13:00")
    run(sessions, cases.book_meeting, reference, request, by="sam", now=now)


def close(sessions: sessionmaker[Session], reference: str, now: dt.datetime) -> None:
    run(sessions, cases.close_case, reference, by="sam", now=now)


def invites_of(server: SmtpRecorder) -> list[Any]:
    return received(server)


def test_a_booked_case_meeting_reaches_every_participant_and_the_owner_convenes(
    sessions: sessionmaker[Session], delivery: Delivery, smtp_server: SmtpRecorder
) -> None:
    open_and_book(sessions, delivery)
    every = invites_of(smtp_server)
    assert {(i.to, i.method, i.sequence, i.status) for i in every} == {
        (SAM, "PUBLISH", 0, "CONFIRMED"),  # the owner convenes: her own copy
        (FIA, "REQUEST", 0, "CONFIRMED"),
        (RUT, "REQUEST", 0, "CONFIRMED"),  # Ekskolan's rektor on the booking day
        (VH1, "REQUEST", 0, "CONFIRMED"),
        (VH2, "REQUEST", 0, "CONFIRMED"),
    }
    assert len({i.uid for i in every}) == 1
    assert all(i.attendees == (i.to,) for i in every if i.to != SAM)  # no other address


def test_a_moved_case_meeting_moves_in_every_calendar(
    sessions: sessionmaker[Session], delivery: Delivery, smtp_server: SmtpRecorder
) -> None:
    reference = open_and_book(sessions, delivery)
    book(sessions, reference, "2027-03-24", at("2027-03-05T09:00"))
    tick(delivery, at("2027-03-05T09:00"))
    every = invites_of(smtp_server)
    assert sorted((i.to, i.sequence) for i in every[5:]) == sorted(
        (to, 1) for to in (SAM, FIA, RUT, VH1, VH2)
    )
    sequences_never_fall(every)
    (uid,) = {i.uid for i in every}
    assert calendars(every) == {to: {uid: MOVED} for to in (SAM, FIA, RUT, VH1, VH2)}


def test_closing_the_case_cancels_the_meeting_in_every_calendar_that_holds_it(
    sessions: sessionmaker[Session], delivery: Delivery, smtp_server: SmtpRecorder
) -> None:
    reference = open_and_book(sessions, delivery)
    close(sessions, reference, at("2027-03-10T09:00"))
    tick(delivery, at("2027-03-10T09:00"))
    every = invites_of(smtp_server)
    assert {(i.to, i.method, i.sequence, i.status) for i in every[5:]} == {
        (SAM, "PUBLISH", 1, "CANCELLED"),
        (FIA, "CANCEL", 1, "CANCELLED"),
        (RUT, "CANCEL", 1, "CANCELLED"),
        (VH1, "CANCEL", 1, "CANCELLED"),
        (VH2, "CANCEL", 1, "CANCELLED"),
    }
    assert calendars(every) == {to: {} for to in (SAM, FIA, RUT, VH1, VH2)}


def test_closing_after_the_role_changed_hands_cancels_for_the_one_invited_not_the_new_holder(
    sessions: sessionmaker[Session], delivery: Delivery, smtp_server: SmtpRecorder
) -> None:
    reference = open_and_book(sessions, delivery)
    closed = at("2027-03-20T09:00")  # Ulla is rektor now; Rut was invited
    close(sessions, reference, closed)
    tick(delivery, closed)
    every = invites_of(smtp_server)
    assert [(i.method, i.status) for i in every if i.to == RUT] == [
        ("REQUEST", "CONFIRMED"),
        ("CANCEL", "CANCELLED"),
    ]
    assert [i for i in every if i.to == ULLA] == []
    assert calendars(every)[RUT] == {}
    with sessions() as session:
        to_ulla = session.scalars(
            select(models.Notification).where(models.Notification.recipient_email == ULLA)
        ).all()
    assert to_ulla == []


def test_closing_cancels_an_invitation_still_waiting_with_the_reason(
    sessions: sessionmaker[Session], delivery: Delivery, smtp_server: SmtpRecorder
) -> None:
    request = cases.CaseRequest(
        owner="sam", school="ekskolan", family_worker="fia", guardians=(VH1, VH2)
    )
    opened = run(sessions, cases.open_case, request, by="sam", now=at("2027-03-02T09:00"))
    reference = str(opened.reference)
    consent = cases.ConsentRequest("vårdnadshavarna", "samverkansmöte", None, False)
    run(sessions, cases.record_consent, reference, consent, by="sam", now=at("2027-03-02T10:00"))
    book(sessions, reference, "2027-03-25", at("2027-03-03T10:00"))
    close(sessions, reference, at("2027-03-03T10:05"))  # before the worker sent anything
    tick(delivery, at("2027-03-03T10:05"))
    assert invites_of(smtp_server) == []  # nobody holds it: no CANCEL either
    with sessions() as session:
        waiting = session.scalars(
            select(models.Notification).where(
                models.Notification.occurrence == reference,
                models.Notification.purpose == "kallelse-m1",
            )
        ).all()
    assert len(waiting) == 5
    assert {(r.status, r.cancel_reason) for r in waiting} == {(Status.CANCELLED, "case closed")}
