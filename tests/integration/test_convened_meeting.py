"""Seed 004's convened meeting, through the database: the weekly reminders and the notice
after an unbooked month are outbox rows; booking the meeting cancels every one still pending."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

import models
from models import Status
from models.db import transaction
from scheduler.calendar import STOCKHOLM
from service.booking import book_meeting
from tests.profiles import EXAMPLE, load, refusal, write_variant

pytestmark = pytest.mark.integration
NOW = dt.datetime(2027, 8, 2, 6, 0, tzinfo=dt.UTC)


def autumn_rows(sessions: sessionmaker[Session]) -> list[models.Notification]:
    with sessions() as session:
        found = list(
            session.scalars(
                select(models.Notification)
                .where(
                    models.Notification.routine_key == "samverkansmote-host",
                    models.Notification.occurrence == "2027",
                )
                .order_by(models.Notification.due_at, models.Notification.id)
            )
        )
        session.expunge_all()
        return found


def test_unbooked_reminders_and_notice_are_planned_and_booking_cancels_them(
    session_factory: sessionmaker[Session],
) -> None:
    load(session_factory, EXAMPLE, NOW)
    rows = autumn_rows(session_factory)
    weekly = sorted({r.purpose for r in rows if r.purpose.startswith("boka-vecka-")})
    assert weekly == [
        "boka-vecka-2027-09-24",
        "boka-vecka-2027-10-01",
        "boka-vecka-2027-10-08",
        "boka-vecka-2027-10-15",
        "boka-vecka-2027-10-22",
        "boka-vecka-2027-10-29",
    ]
    notices = [r for r in rows if r.purpose == "obokat"]
    # Both coordinators, the elevhälsochef's manager and the enhetschef's manager.
    assert sorted(r.recipient_email for r in notices) == [
        "elin.bergstrom@exempelby.se",
        "lars.nystrom@exempelby.se",
        "peter.akesson@exempelby.se",
        "tobias.ahlberg@exempelby.se",
    ]
    assert {r.due_at.astimezone(STOCKHOLM).date() for r in notices} == {dt.date(2027, 11, 1)}

    booked_at = dt.datetime(2027, 10, 4, 9, 0, tzinfo=dt.UTC)  # after three rounds went out
    with transaction(session_factory) as session:
        sent = [r.id for r in rows if r.due_at < booked_at]
        for row in session.scalars(
            select(models.Notification).where(models.Notification.id.in_(sent))
        ):
            row.status = Status.SENT
        municipality_id = session.scalars(select(models.Municipality.id)).one()
        book_meeting(
            session,
            municipality_id,
            "samverkansmote-host",
            "2027-10-12",
            "13:00",
            None,
            booked_at,
            400,
        )
    after = {r.id: r for r in autumn_rows(session_factory)}
    for row in rows:
        if row.purpose.startswith(("boka-", "obokat")):
            expected = Status.SENT if row.id in sent else Status.CANCELLED
            assert after[row.id].status == expected, row.purpose
    assert any(r.purpose == "kallelse" and r.status == Status.PENDING for r in after.values())


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "        before: {days: 30}\n",
            "        before: {days: 30}\n        repeat: {weeks: 1}\n        until_booked: true\n",
            ":56: routines[0].messages[0].repeat: repeat is for a meeting held in a month",
        ),
        (
            "        before: {days: 30}\n",
            '        before: {days: 30}\n        "on": window_end\n',
            ":56: routines[0].messages[0].on: window_end is for a meeting held in a month",
        ),
        (
            "        before: {weeks: 6}\n        until_booked: true\n",
            "        before: {weeks: 6}\n        repeat: {weeks: 1}\n",
            ":73: routines[1].messages[0]: repeat needs until_booked",
        ),
    ],
)
def test_a_repeat_or_month_end_that_cannot_work_is_refused_at_load(
    old: str,
    new: str,
    expected: str,
    tmp_path: Path,
    engine: Engine,
    session_factory: sessionmaker[Session],
) -> None:
    bad = write_variant(tmp_path, old, new)
    message = refusal(session_factory, engine, bad, NOW)
    assert expected in message, message
