"""Replies end to end: book (the example profile's April 2027 meeting), deliver the
invitations through the worker to a real SMTP server, answer some of them with the genuine
replies of Outlook, Gmail and Apple Calendar (tests/data/replies/, rewritten to this meeting's
UID and to each participant's address, each with its own answer) into a real IMAP server
(Dovecot), poll, and the convener's summary three working days before the meeting names
exactly those who did not answer."""

from __future__ import annotations

import datetime as dt
import email.policy
from email.message import EmailMessage

import icalendar
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import models
from core.settings import ROOT, ImapConfig
from models import Status
from models.db import transaction
from scheduler.answers import booked_meeting, plan_summaries
from scheduler.identity import event_uid
from scheduler.outbox import claim_due
from tests.fixtures.imap import MAILBOX, Dovecot
from tests.fixtures.smtp import SmtpRecorder
from tests.profiles import EXAMPLE, load
from tests.reply_samples import GENUINE, reply_message
from worker.delivery import Delivery, RetryPolicy, deliver_one
from worker.imapbox import handle_with, poll_mailbox
from worker.render import Renderer
from worker.smtp_mailer import SmtpMailer

pytestmark = pytest.mark.integration

LOADED = dt.datetime(2027, 3, 1, 7, 0, tzinfo=dt.UTC)
INVITED = dt.datetime(2027, 3, 23, 8, 0, tzinfo=dt.UTC)  # the invitations (3 weeks before)
POLLED = dt.datetime(2027, 3, 30, 12, 0, tzinfo=dt.UTC)
SUMMARY_DAY = dt.date(2027, 4, 8)  # three working days before Tuesday 13 April
ROUTINE = "samverkansmote-var"


def deliver_due(sessions: sessionmaker[Session], delivery: Delivery, now: dt.datetime) -> int:
    with transaction(sessions) as session:
        ids = claim_due(session, now, 10_000)
    for notification_id in ids:
        deliver_one(delivery, notification_id, now)
    return len(ids)


def calendar_of(message: EmailMessage) -> icalendar.Calendar:
    for part in message.walk():
        if part.get_content_type() == "text/calendar":
            return icalendar.Calendar.from_ical(part.get_payload(decode=True))
    raise AssertionError("no calendar part")


def test_answers_are_read_from_the_mailbox_and_the_summary_names_who_did_not_answer(
    session_factory: sessionmaker[Session],
    smtp_server: SmtpRecorder,
    dovecot: Dovecot,
) -> None:
    load(session_factory, EXAMPLE, LOADED)
    mailer = SmtpMailer(smtp_server.smtp_config())
    delivery = Delivery(
        session_factory,
        mailer,
        Renderer(ROOT / "templates"),
        RetryPolicy(),
        reply_mailbox=MAILBOX,
    )
    try:
        for day in range(1, 24):  # every morning from 1 to 23 March
            deliver_due(session_factory, delivery, dt.datetime(2027, 3, day, 8, 0, tzinfo=dt.UTC))
        invitations = [
            r for r in smtp_server.received if r.message.get_content_type() == "multipart/mixed"
        ]
        uid = event_uid("exempel", ROUTINE, "2027", "exempelby.se")
        invites = {
            r.rcpt_tos[0]: calendar_of(r.message)
            for r in invitations
            if any(p.get_content_type() == "text/calendar" for p in r.message.walk())
            and str(next(iter(calendar_of(r.message).walk("VEVENT")))["UID"]) == uid
        }
        requests = {a: c for a, c in invites.items() if str(c["METHOD"]) == "REQUEST"}
        own = [a for a, c in invites.items() if str(c["METHOD"]) == "PUBLISH"]
        assert len(requests) >= len(GENUINE) + 1 and len(own) >= 1
        # Every invitation names the reply mailbox as the organizer, with the convener's name.
        for calendar in requests.values():
            event = next(iter(calendar.walk("VEVENT")))
            organizer = event["ORGANIZER"]
            assert str(organizer).lower() == f"mailto:{MAILBOX}"
            assert organizer.params["CN"] and "SENT-BY" not in organizer.params

        # Every genuine sample answers for another participant, with the answer it holds;
        # junk and a stranger's answer too.
        attendees = sorted(requests)
        answering = {
            address: (sample.stem, sample.partstat)
            for address, sample in zip(attendees, GENUINE.values(), strict=False)
        }
        messages = [
            reply_message(stem, uid=uid, attendee=address, partstat=partstat, serial=i)
            for i, (address, (stem, partstat)) in enumerate(answering.items())
        ]
        messages.append(
            reply_message("outlook", uid=uid, attendee="okand@annanstans.test", partstat="ACCEPTED")
        )
        messages.append(b"Subject: Fr\xc3\xa5ga\r\n\r\nKan vi flytta m\xc3\xb6tet?\r\n")
        dovecot.append(*messages)
        config = ImapConfig.from_url(dovecot.url)
        result = poll_mailbox(
            config,
            handle_with(session_factory, POLLED),
            ssl_context=dovecot.cert.client_context(),
        )
        assert result.recorded == len(GENUINE) == 9
        assert dict(result.ignored) == {"unknown-attendee": 1, "no-calendar": 1}
        assert dovecot.count("INBOX") == 0

        with session_factory() as session:
            municipality_id = session.scalars(select(models.Municipality.id)).one()
            view = booked_meeting(session, municipality_id, ROUTINE, dt.date(2027, 4, 13))
        answers = {p.email: p.answer for p in view.invited}
        assert {a: answers[a] for a in answering} == {
            a: partstat for a, (_, partstat) in answering.items()
        }
        missing = sorted(p.name for p in view.not_answered)
        assert len(missing) == len(requests) - len(GENUINE)

        with transaction(session_factory) as session:
            assert plan_summaries(session, POLLED) == 1
            assert plan_summaries(session, POLLED) == 0  # idempotent
        before = len(smtp_server.received)
        for day in range(24, 32):  # the mornings up to the summary's day
            deliver_due(session_factory, delivery, dt.datetime(2027, 3, day, 8, 0, tzinfo=dt.UTC))
        for day in range(1, SUMMARY_DAY.day + 1):
            deliver_due(session_factory, delivery, dt.datetime(2027, 4, day, 8, 0, tzinfo=dt.UTC))
    finally:
        mailer.close()
    summaries = [
        r
        for r in smtp_server.received[before:]
        if str(r.message["Subject"]).startswith("Svar på kallelsen")
    ]
    assert len(summaries) == 1
    summary = summaries[0]
    with session_factory() as session:
        convener = session.scalars(
            select(models.Person).where(models.Person.name == view.organizer)
        ).one()
        row = session.scalars(
            select(models.Notification).where(
                models.Notification.template == "svar-sammanstallning"
            )
        ).one()
        assert row.status == Status.SENT
    assert summary.rcpt_tos == (convener.email,)
    text = summary.message.get_body(("plain",))
    assert text is not None
    body = text.get_content()
    listed = sorted(line[2:].split(" (")[0] for line in body.splitlines() if line.startswith("- "))
    assert listed == missing
    assert not any(p.name in body for p in view.invited if p.email in answering)
    assert summary.message.get_content_type() != "multipart/mixed"  # no invitation attached
    assert email.policy  # the message was parsed with the default policy by the fixture
