"""Recording answers (scheduler.answers.record_answer) against what the outbox says was sent:
the example profile's April 2027 meeting, invitations delivered by the worker, real
databases (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import models
from core.settings import ROOT
from models.db import transaction
from scheduler.answers import AnswerOutcome, booked_meeting, plan_summaries, record_answer
from scheduler.identity import event_uid
from scheduler.outbox import claim_due
from service.booking import book_routine_meeting
from tests.profiles import EXAMPLE, load
from worker.delivery import Delivery, RetryPolicy, deliver_one
from worker.mailers import MemoryMailer
from worker.render import Renderer
from worker.replies import Reply

pytestmark = pytest.mark.integration

LOADED = dt.datetime(2027, 3, 1, 7, 0, tzinfo=dt.UTC)
NOW = dt.datetime(2027, 3, 24, 12, 0, tzinfo=dt.UTC)
ROUTINE = "samverkansmote-var"
UID = event_uid("exempel", ROUTINE, "2027", "exempelby.se")
MEETING_DAY = dt.date(2027, 4, 13)


def deliver_until(sessions: sessionmaker[Session], mailer: MemoryMailer, last: dt.date) -> None:
    delivery = Delivery(
        sessions, mailer, Renderer(ROOT / "templates"), RetryPolicy(), "svar@exempelby.se"
    )
    day = dt.date(2027, 3, 1)
    while day <= last:
        now = dt.datetime.combine(day, dt.time(8), tzinfo=dt.UTC)
        with transaction(sessions) as session:
            ids = claim_due(session, now, 10_000)
        for notification_id in ids:
            deliver_one(delivery, notification_id, now)
        day += dt.timedelta(days=1)


@dataclass
class Invited:
    sessions: sessionmaker[Session]
    municipality_id: int
    attendees: list[str]
    convener: str


@pytest.fixture
def invited(session_factory: sessionmaker[Session]) -> Invited:
    load(session_factory, EXAMPLE, LOADED)
    deliver_until(session_factory, MemoryMailer(), dt.date(2027, 3, 23))
    with session_factory() as session:
        municipality_id = session.scalars(select(models.Municipality.id)).one()
        view = booked_meeting(session, municipality_id, ROUTINE, MEETING_DAY)
        convener = session.scalars(
            select(models.Person.email).where(models.Person.name == view.organizer)
        ).one()
    assert view.uid == UID
    return Invited(session_factory, municipality_id, [p.email for p in view.invited], convener)


def answer(
    invited: Invited,
    attendee: str,
    partstat: str = "ACCEPTED",
    sequence: int = 0,
    minute: int = 0,
    uid: str = UID,
) -> AnswerOutcome:
    stamp = dt.datetime(2027, 3, 24, 9, minute, tzinfo=dt.UTC)
    with transaction(invited.sessions) as session:
        return record_answer(session, Reply(uid, attendee, partstat, sequence, stamp), NOW)


def answers(invited: Invited) -> dict[str, str | None]:
    with invited.sessions() as session:
        view = booked_meeting(session, invited.municipality_id, ROUTINE, MEETING_DAY)
    return {p.email: (p.answer if p.answered else None) for p in view.invited}


def test_an_invited_persons_answer_is_recorded_and_shown(invited: Invited) -> None:
    first, second = invited.attendees[:2]
    assert answer(invited, first.upper(), "ACCEPTED") is AnswerOutcome.RECORDED
    assert answer(invited, second, "DECLINED") is AnswerOutcome.RECORDED
    shown = answers(invited)
    assert (shown[first], shown[second]) == ("ACCEPTED", "DECLINED")
    assert sum(value is None for value in shown.values()) == len(invited.attendees) - 2


def test_replies_that_match_no_meeting_or_no_invitee_are_ignored(invited: Invited) -> None:
    other = event_uid("exempel", ROUTINE, "2031", "exempelby.se")
    assert answer(invited, invited.attendees[0], uid=other) is AnswerOutcome.UNKNOWN_MEETING
    assert answer(invited, "okand@annanstans.se") is AnswerOutcome.UNKNOWN_ATTENDEE
    # The convener got her own copy (PUBLISH), not an invitation: she is not an invitee.
    assert answer(invited, invited.convener) is AnswerOutcome.UNKNOWN_ATTENDEE
    with invited.sessions() as session:
        assert session.scalars(select(models.Answer)).all() == []


def test_a_newer_answer_replaces_an_older_one_and_never_the_reverse(invited: Invited) -> None:
    who = invited.attendees[0]
    assert answer(invited, who, "TENTATIVE", minute=10) is AnswerOutcome.RECORDED
    assert answer(invited, who, "TENTATIVE", minute=10) is AnswerOutcome.STALE  # read twice
    assert answer(invited, who, "DECLINED", minute=5) is AnswerOutcome.STALE  # older DTSTAMP
    assert answer(invited, who, "ACCEPTED", minute=20) is AnswerOutcome.RECORDED
    assert answers(invited)[who] == "ACCEPTED"


def test_an_answer_to_the_old_time_of_a_moved_meeting_is_ignored(invited: Invited) -> None:
    who = invited.attendees[0]
    assert answer(invited, who, "ACCEPTED") is AnswerOutcome.RECORDED
    moved_at = dt.datetime(2027, 3, 25, 7, 0, tzinfo=dt.UTC)
    with transaction(invited.sessions) as session:
        book_routine_meeting(
            session, invited.municipality_id, ROUTINE, "2027-04-14", "13:00", None, moved_at, 400
        )
    deliver_until(invited.sessions, MemoryMailer(), dt.date(2027, 3, 26))
    with invited.sessions() as session:
        view = booked_meeting(session, invited.municipality_id, ROUTINE, dt.date(2027, 4, 14))
    assert view.sequence == 1
    # Their answer to the old time no longer counts as an answer to the new one.
    assert next(p for p in view.invited if p.email == who).answered is False
    assert answer(invited, who, "DECLINED", sequence=0, minute=30) is AnswerOutcome.OLD_SEQUENCE
    assert answer(invited, who, "DECLINED", sequence=1, minute=31) is AnswerOutcome.RECORDED
    assert answer(invited, who, "ACCEPTED", sequence=0, minute=40) is AnswerOutcome.OLD_SEQUENCE


def test_the_summary_is_planned_once_per_version_and_moves_with_the_meeting(
    invited: Invited,
) -> None:
    with transaction(invited.sessions) as session:
        assert plan_summaries(session, NOW) == 1
        assert plan_summaries(session, NOW) == 0
    with invited.sessions() as session:
        (row,) = session.scalars(
            select(models.Notification).where(
                models.Notification.template == "svar-sammanstallning"
            )
        )
        assert row.recipient_email == invited.convener
        # Thursday 8 April 2027 at the profile's send time (08:00 Stockholm).
        assert row.due_at == dt.datetime(2027, 4, 8, 6, 0, tzinfo=dt.UTC)
        assert "meeting" not in row.context  # no invitation is attached to it
    moved_at = dt.datetime(2027, 3, 25, 7, 0, tzinfo=dt.UTC)
    with transaction(invited.sessions) as session:
        book_routine_meeting(
            session, invited.municipality_id, ROUTINE, "2027-04-21", "13:00", None, moved_at, 400
        )
    deliver_until(invited.sessions, MemoryMailer(), dt.date(2027, 3, 26))
    later = dt.datetime(2027, 3, 26, 12, 0, tzinfo=dt.UTC)
    with transaction(invited.sessions) as session:
        assert plan_summaries(session, later) == 1
    with invited.sessions() as session:
        rows = session.scalars(
            select(models.Notification)
            .where(models.Notification.template == "svar-sammanstallning")
            .order_by(models.Notification.id)
        ).all()
        assert [r.status for r in rows] == ["cancelled", "pending"]
        assert rows[1].due_at == dt.datetime(2027, 4, 16, 6, 0, tzinfo=dt.UTC)
