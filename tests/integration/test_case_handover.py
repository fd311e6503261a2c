"""A case meeting's participant changing after the invitation went out, end to end through the
worker and a real SMTP server in simulated time: CANCEL to the one who leaves (from the record
of who was sent what), REQUEST to the one who arrives; and the owner's summary of who has not
answered, which names staff and only counts everyone else.

Each message the server received is parsed (python-icalendar) and applied in arrival order to
a tiny calendar per recipient that does not compare SEQUENCE
(tests/integration/test_invite_lifecycle.py), so a message in the wrong order or to the wrong
person shows as a wrong final calendar.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import models
from core.settings import ROOT
from models import Status
from models.db import transaction
from scheduler.answers import plan_summaries, record_answer
from scheduler.calendar import STOCKHOLM
from scheduler.outbox import claim_due
from scheduler.planner import replan
from service import cases
from tests.fixtures.smtp import SmtpRecorder
from tests.integration.test_invite_lifecycle import calendars, received, sequences_never_fall
from tests.profiles import load
from worker.delivery import Delivery, DeliveryOutcome, RetryPolicy, deliver_one
from worker.render import Renderer
from worker.smtp_mailer import SmtpMailer

pytestmark = pytest.mark.integration

CASES = Path(__file__).parent.parent / "data" / "cases.yaml"
SAM, FIA, RUT = "sam@fallby.se", "fia@fallby.se", "rut@fallby.se"
VH1, VH2 = "vh1@hem.se", "vh2@hem.se"
RUT_ROLE = "    roles: [{role: rektor, unit: ekskolan}]\n  - key: fia\n"
FIA_PERSON = (
    "  - key: fia\n"
    "    name: Fia Familjebehandlare\n"
    "    email: fia@fallby.se\n"
    "    roles: [{role: familjebehandlare, unit: ifo}]\n"
)


def substitute(email: str) -> str:
    """Rut is rektor of Ekskolan but for 8-12 March, when Vilma substitutes for her."""
    return (
        "    roles:\n"
        "      - {role: rektor, unit: ekskolan, to: 2027-03-07}\n"
        "      - {role: rektor, unit: ekskolan, from: 2027-03-13}\n"
        "  - key: vilma\n"
        "    name: Vilma Vikarie\n"
        f"    email: {email}\n"
        "    roles: [{role: rektor, unit: ekskolan, from: 2027-03-08, to: 2027-03-12}]\n"
        "  - key: fia\n"
    )


VILMA = "vilma@fallby.se"
VILMA_OUTSIDE = "vilma.vikarie@gmail.com"  # not in the staff domain: not staff


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=STOCKHOLM).astimezone(dt.UTC)


LOADED = at("2027-03-01T07:00")
MEETING = at("2027-03-25T13:00")


def write_profile(tmp_path: Path, *replacements: tuple[str, str]) -> Path:
    text = CASES.read_text(encoding="utf-8")
    for old, new in replacements:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path = tmp_path / "cases.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def delivery(
    session_factory: sessionmaker[Session], smtp_server: SmtpRecorder
) -> Iterator[Delivery]:
    mailer = SmtpMailer(smtp_server.smtp_config())
    yield Delivery(
        session_factory, mailer, Renderer(ROOT / "templates"), RetryPolicy(base_seconds=600)
    )
    mailer.close()


def run(sessions: sessionmaker[Session], work: Any, *args: Any, by: str, now: dt.datetime) -> Any:
    with transaction(sessions) as session:
        municipality_id = session.scalars(select(models.Municipality.id)).one()
        return work(cases.Desk.open(session, municipality_id, by, now), *args)


def tick(delivery: Delivery, moment: dt.datetime) -> dict[str, DeliveryOutcome]:
    with transaction(delivery.sessions) as session:
        ids = claim_due(session, moment, 10_000)
    outcomes = {}
    for i in ids:
        with delivery.sessions() as session:
            row = session.get_one(models.Notification, i)
            key = f"{row.purpose}:{row.recipient_email}"
        outcomes[key] = deliver_one(delivery, i, moment)
    return outcomes


def nightly(delivery: Delivery, moment: dt.datetime) -> None:
    """The nightly re-plan (beat, 02:30), then the answers' beat task's summaries."""
    with transaction(delivery.sessions) as session:
        municipality_id = session.scalars(select(models.Municipality.id)).one()
        replan(session, municipality_id, moment, 400)
        plan_summaries(session, moment)


def run_days(delivery: Delivery, first: str, last: str) -> None:
    """Each day: the nightly re-plan, then ticks at 08:00 and 17:00."""
    day = dt.date.fromisoformat(first)
    while day <= dt.date.fromisoformat(last):
        nightly(delivery, at(f"{day.isoformat()}T02:30"))
        for clock in ("08:00", "17:00"):
            tick(delivery, at(f"{day.isoformat()}T{clock}"))
        day += dt.timedelta(days=1)


def open_and_book(
    delivery: Delivery, guardians: tuple[str, ...] = (VH1, VH2), report: str | None = None
) -> str:
    """Sam opens a case with Ekskolan (its rektor) and Fia; books 25 March on 3 March."""
    sessions = delivery.sessions
    request = cases.CaseRequest(
        owner="sam", school="ekskolan", family_worker="fia", guardians=guardians, report=report
    )
    opened = run(sessions, cases.open_case, request, by="sam", now=at("2027-03-02T09:00"))
    reference = str(opened.reference)
    consent = cases.ConsentRequest("vårdnadshavarna", "samverkansmöte", None, False)
    run(sessions, cases.record_consent, reference, consent, by="sam", now=at("2027-03-02T10:00"))
    booking = cases.BookingRequest("2027-03-25", "13:00")
    run(sessions, cases.book_meeting, reference, booking, by="sam", now=at("2027-03-03T10:00"))
    tick(delivery, at("2027-03-03T10:00"))
    return reference


def methods(every: list[Any], to: str) -> list[tuple[str, int]]:
    return [(i.method, i.sequence) for i in every if i.to == to]


def rows_to(delivery: Delivery, email: str) -> list[models.Notification]:
    with delivery.sessions() as session:
        found = list(
            session.scalars(
                select(models.Notification)
                .where(models.Notification.recipient_email == email)
                .order_by(models.Notification.id)
            )
        )
        for row in found:
            session.expunge(row)
        return found


# ----------------------------------------------------------------------------------- hand-over


def test_a_substitute_takes_the_case_meeting_over_and_hands_it_back(
    tmp_path: Path, delivery: Delivery, smtp_server: SmtpRecorder
) -> None:
    load(delivery.sessions, write_profile(tmp_path, (RUT_ROLE, substitute(VILMA))), LOADED)
    open_and_book(delivery)
    run_days(delivery, "2027-03-04", "2027-03-07")
    assert methods(received(smtp_server), RUT) == [("REQUEST", 0)]

    run_days(delivery, "2027-03-08", "2027-03-08")  # Vilma's period starts
    held = calendars(received(smtp_server))
    (uid,) = held[SAM]
    assert held[RUT] == {} and held[VILMA] == {uid: MEETING}

    run_days(delivery, "2027-03-09", "2027-03-15")  # and ends on the 12th
    every = received(smtp_server)
    assert methods(every, RUT) == [("REQUEST", 0), ("CANCEL", 0), ("REQUEST", 0)]
    assert methods(every, VILMA) == [("REQUEST", 0), ("CANCEL", 0)]
    for untouched in (SAM, FIA, VH1, VH2):  # the others get nothing more
        assert len(methods(every, untouched)) == 1
    assert all(i.attendees == (i.to,) for i in every if i.to != SAM)
    sequences_never_fall(every)
    assert calendars(every) == {to: {uid: MEETING} for to in (SAM, FIA, RUT, VH1, VH2)} | {
        VILMA: {}
    }
    cancel = next(r for r in rows_to(delivery, RUT) if "-lamnar-" in r.purpose)
    assert cancel.template == "arende-avbokad" and cancel.roles == []  # addressed directly


def test_the_hand_over_is_planned_by_the_command_that_changes_the_case_too(
    tmp_path: Path, delivery: Delivery, smtp_server: SmtpRecorder
) -> None:
    """No nightly re-plan: moving the meeting on the 9th sees Vilma holding the role."""
    load(delivery.sessions, write_profile(tmp_path, (RUT_ROLE, substitute(VILMA))), LOADED)
    reference = open_and_book(delivery)
    moved = at("2027-03-09T09:00")
    booking = cases.BookingRequest("2027-03-24", "13:00")
    run(delivery.sessions, cases.book_meeting, reference, booking, by="sam", now=moved)
    tick(delivery, moved)
    every = received(smtp_server)
    assert methods(every, RUT) == [("REQUEST", 0), ("CANCEL", 1)]
    assert methods(every, VILMA) == [("REQUEST", 1)]
    assert calendars(every)[RUT] == {}


def test_a_family_worker_removed_from_the_profile_gets_the_meeting_taken_out(
    tmp_path: Path, delivery: Delivery, smtp_server: SmtpRecorder
) -> None:
    load(delivery.sessions, write_profile(tmp_path), LOADED)
    open_and_book(delivery)
    gone = at("2027-03-05T07:00")
    load(delivery.sessions, write_profile(tmp_path, (FIA_PERSON, "")), gone)  # the load plans it
    tick(delivery, gone)
    every = received(smtp_server)
    assert methods(every, FIA) == [("REQUEST", 0), ("CANCEL", 0)]
    assert calendars(every)[FIA] == {}
    run_days(delivery, "2027-03-06", "2027-03-10")  # nothing more, for anyone
    assert received(smtp_server) == every


def test_guardians_addressed_by_email_never_hand_over(
    tmp_path: Path, delivery: Delivery, smtp_server: SmtpRecorder
) -> None:
    """Guardians hold no role: a re-plan plans nothing for them, whatever changes."""
    load(delivery.sessions, write_profile(tmp_path, (RUT_ROLE, substitute(VILMA))), LOADED)
    open_and_book(delivery)
    run_days(delivery, "2027-03-04", "2027-03-15")
    for guardian in (VH1, VH2):
        assert [r.purpose for r in rows_to(delivery, guardian)] == ["kallelse-m1"]


def test_a_meeting_held_or_past_hands_nothing_over(
    tmp_path: Path, delivery: Delivery, smtp_server: SmtpRecorder
) -> None:
    load(delivery.sessions, write_profile(tmp_path, (RUT_ROLE, substitute(VILMA))), LOADED)
    reference = open_and_book(delivery)
    booking = cases.BookingRequest("2027-03-05", "13:00")  # moved before Vilma's period
    run(
        delivery.sessions,
        cases.book_meeting,
        reference,
        booking,
        by="sam",
        now=at("2027-03-04T09:00"),
    )
    tick(delivery, at("2027-03-04T09:00"))
    run_days(delivery, "2027-03-05", "2027-03-07")
    run(delivery.sessions, cases.hold_meeting, reference, by="sam", now=at("2027-03-07T16:00"))
    run_days(delivery, "2027-03-08", "2027-03-15")
    assert rows_to(delivery, VILMA) == []
    assert methods(received(smtp_server), RUT) == [("REQUEST", 0), ("REQUEST", 1)]


def test_on_suspected_abuse_a_substitute_who_is_not_staff_is_sent_nothing(
    tmp_path: Path, delivery: Delivery, smtp_server: SmtpRecorder
) -> None:
    load(delivery.sessions, write_profile(tmp_path, (RUT_ROLE, substitute(VILMA_OUTSIDE))), LOADED)
    flagged = cases.ReportRequest("ekskolan", "rut", "norr", suspected_abuse=True)
    registered = run(
        delivery.sessions, cases.register_report, flagged, by="rut", now=at("2027-03-01T09:00")
    )
    open_and_book(delivery, guardians=(), report=str(registered.reference))
    run_days(delivery, "2027-03-04", "2027-03-15")
    every = received(smtp_server)
    assert rows_to(delivery, VILMA_OUTSIDE) == []  # not planned, not sent
    assert [i for i in every if i.to == VILMA_OUTSIDE] == []
    # Rut leaves the meeting while Vilma holds the role, and gets it back after.
    assert methods(every, RUT) == [("REQUEST", 0), ("CANCEL", 0), ("REQUEST", 0)]
    assert calendars(every)[RUT] != {}


def test_a_cancel_to_one_back_in_the_role_before_it_is_sent_is_not_sent(
    tmp_path: Path, delivery: Delivery, smtp_server: SmtpRecorder
) -> None:
    """Checked again at send time: planned on the 8th, sent on the 13th when Rut is back."""
    load(delivery.sessions, write_profile(tmp_path, (RUT_ROLE, substitute(VILMA))), LOADED)
    open_and_book(delivery)
    nightly(delivery, at("2027-03-08T02:30"))
    (leaving,) = [r for r in rows_to(delivery, RUT) if "-lamnar-" in r.purpose]
    assert leaving.status == Status.PENDING
    tick(delivery, at("2027-03-13T08:00"))  # no re-plan in between: the worker checks
    (leaving,) = [r for r in rows_to(delivery, RUT) if "-lamnar-" in r.purpose]
    assert leaving.status == Status.CANCELLED
    assert "participant of the meeting again" in (leaving.cancel_reason or "")
    assert methods(received(smtp_server), RUT) == [("REQUEST", 0)]


# ------------------------------------------------------------------------------------- summary


@dataclass(frozen=True)
class Answer:
    uid: str
    attendee: str
    partstat: str
    sequence: int = 0
    dtstamp: dt.datetime | None = None


def answer(delivery: Delivery, uid: str, attendee: str, partstat: str, now: dt.datetime) -> None:
    with transaction(delivery.sessions) as session:
        assert record_answer(session, Answer(uid, attendee, partstat), now).recorded


def summaries(server: SmtpRecorder) -> list[EmailMessage]:
    return [
        r.message
        for r in server.received
        if str(r.message["Subject"]).startswith("Svar på kallelsen")
    ]


def text_of(message: EmailMessage) -> str:
    parts = [message.get_body(("plain",)), message.get_body(("html",))]
    return "\n".join(str(p.get_content()) for p in parts if p is not None)


def test_the_owner_gets_a_summary_naming_staff_and_counting_everyone_else(
    tmp_path: Path, delivery: Delivery, smtp_server: SmtpRecorder
) -> None:
    load(delivery.sessions, write_profile(tmp_path), LOADED)
    reference = open_and_book(delivery, guardians=(VH1, VH2))
    (uid,) = {i.uid for i in received(smtp_server)}
    answer(delivery, uid, FIA, "ACCEPTED", at("2027-03-04T10:00"))
    answer(delivery, uid, VH1, "ACCEPTED", at("2027-03-04T11:00"))
    run_days(delivery, "2027-03-19", "2027-03-22")  # 22 March: 3 working days before the 25th
    (summary,) = summaries(smtp_server)
    assert summary["To"].addresses[0].addr_spec == SAM
    subject, body = str(summary["Subject"]), text_of(summary)
    assert reference in subject and "2 har inte svarat" in subject
    assert "Rut Rektor (rektor)" in body  # staff: named, with the role
    assert "Fia" not in body  # answered
    assert "1 deltagare som inte tillhör kommunens personal har inte svarat" in body
    assert "2 av 4 inbjudna har svarat" in body
    for private in (VH1, VH2, "hem.se", "Vårdnadshavare", "vårdnadshavare", "Elev"):
        assert private not in subject and private not in body, private
    assert "text/calendar" not in summary.as_string()  # a plain message, no invite
    with delivery.sessions() as session:
        row = session.scalars(
            select(models.Notification).where(
                models.Notification.template == "svar-sammanstallning"
            )
        ).one()
        assert row.occurrence == f"{reference}-m1" and row.recipient_email == SAM


def test_a_summary_is_planned_once_per_version_and_none_when_the_case_is_closed(
    tmp_path: Path, delivery: Delivery, smtp_server: SmtpRecorder
) -> None:
    load(delivery.sessions, write_profile(tmp_path), LOADED)
    reference = open_and_book(delivery)
    run_days(delivery, "2027-03-04", "2027-03-05")
    with delivery.sessions() as session:
        pending = session.scalars(
            select(models.Notification).where(
                models.Notification.template == "svar-sammanstallning"
            )
        ).all()
        assert [(r.status, r.due_at) for r in pending] == [(Status.PENDING, at("2027-03-22T08:00"))]
    run(delivery.sessions, cases.close_case, reference, by="sam", now=at("2027-03-06T09:00"))
    run_days(delivery, "2027-03-06", "2027-03-26")
    assert summaries(smtp_server) == []
