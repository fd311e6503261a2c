"""The daily digest of failed messages: exactly the failed rows of its window, to each coordinator,
once a day, delivered like every other message (scheduler/digest.py)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

import models
from core.settings import ROOT
from models import Status
from models.db import transaction
from scheduler.digest import DIGEST_ROUTINE, digest_key, plan_digests
from scheduler.outbox import claim_due
from tests.profiles import MINIMAL, load, write_variant
from worker.delivery import Delivery, Outcome, deliver_one
from worker.mailers import MemoryMailer
from worker.render import Renderer

LOADED_AT = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC)
NOW = dt.datetime(2027, 6, 1, 5, 0, tzinfo=dt.UTC)  # 07:00 in Stockholm
SETTLE = dt.timedelta(minutes=10)
COORDINATORS = """  - key: sara
    name: Sara Samordnare
    email: sara@liten.se
    roles:
      - role: samordnare
  - key: olle
    name: Olle Samordnare
    email: olle@liten.se
    roles:
      - role: samordnare
        to: 2027-05-31
routines:
"""


@pytest.fixture
def sessions(tmp_path: Path, session_factory: sessionmaker[Session]) -> sessionmaker[Session]:
    profile = write_variant(tmp_path, "routines:\n", COORDINATORS)
    load(session_factory, profile, LOADED_AT)
    return session_factory


def fail(sessions: sessionmaker[Session], purpose: str, at: dt.datetime, error: str) -> int:
    with transaction(sessions) as session:
        row = session.scalars(
            select(models.Notification).where(models.Notification.purpose == purpose)
        ).first()
        assert row is not None
        row.status = Status.FAILED
        row.updated_at = at
        row.attempts = 1
        row.last_error = error
        return row.id


def digests(sessions: sessionmaker[Session]) -> list[models.Notification]:
    with sessions() as session:
        rows = list(
            session.scalars(
                select(models.Notification)
                .where(models.Notification.routine_key == DIGEST_ROUTINE)
                .order_by(models.Notification.id)
            )
        )
        session.expunge_all()
        return rows


def plan(sessions: sessionmaker[Session], now: dt.datetime) -> int:
    with transaction(sessions) as session:
        return plan_digests(session, now, SETTLE)


def test_nothing_failed_means_no_digest(sessions: sessionmaker[Session]) -> None:
    assert plan(sessions, NOW) == 0
    assert digests(sessions) == []


def test_the_digest_lists_exactly_the_failures_of_its_window(
    sessions: sessionmaker[Session],
) -> None:
    inside = fail(sessions, "paminnelse-30", NOW - dt.timedelta(hours=5), "550 5.1.1 No such user")
    fail(sessions, "underlag", NOW - dt.timedelta(days=3), "old, reported before")
    assert plan(sessions, NOW) == 1  # Olle's role ended yesterday: only Sara
    (digest,) = digests(sessions)
    assert digest.idempotency_key == digest_key("liten", dt.date(2027, 6, 1), "sara")
    assert digest.recipient_email == "sara@liten.se" and digest.roles == ["samordnare"]
    assert digest.status == Status.PENDING and digest.due_at == NOW
    failures = digest.context["failures"]
    with sessions() as session:
        row = session.get_one(models.Notification, inside)
    assert failures == [
        {
            "routine": "Utvärdering av samverkan",
            "purpose": "paminnelse-30",
            "address": row.recipient_email,
            "attempts": 1,
            "failed_at": "2027-06-01T02:00:00+02:00",
            "error": "550 5.1.1 No such user",
        }
    ]
    assert digest.context["window"] == {
        "from": "2027-05-31T06:50:00+02:00",
        "to": "2027-06-01T06:50:00+02:00",
    }


def test_one_digest_a_day_and_the_next_window_starts_where_the_last_ended(
    sessions: sessionmaker[Session],
) -> None:
    fail(sessions, "paminnelse-30", NOW - dt.timedelta(hours=5), "550 first")
    assert plan(sessions, NOW) == 1
    assert plan(sessions, NOW + dt.timedelta(hours=2)) == 0  # a second beat, the same day
    # Failed just before the first digest's cut-off was reported; one just after was not yet.
    fail(sessions, "underlag", NOW - SETTLE + dt.timedelta(seconds=1), "550 second")
    tomorrow = NOW + dt.timedelta(days=1)
    assert plan(sessions, tomorrow) == 1
    first, second = digests(sessions)
    assert [f["error"] for f in first.context["failures"]] == ["550 first"]
    assert [f["error"] for f in second.context["failures"]] == ["550 second"]
    assert second.context["window"]["from"] == first.context["window"]["to"]


def test_failed_digests_are_not_reported_in_the_next_digest(
    sessions: sessionmaker[Session],
) -> None:
    fail(sessions, "paminnelse-30", NOW - dt.timedelta(hours=5), "550 first")
    plan(sessions, NOW)
    with transaction(sessions) as session:
        session.execute(
            update(models.Notification)
            .where(models.Notification.routine_key == DIGEST_ROUTINE)
            .values(status=Status.FAILED, updated_at=NOW + dt.timedelta(minutes=1))
        )
    assert plan(sessions, NOW + dt.timedelta(days=1)) == 0


def test_no_coordinator_no_digest(
    session_factory: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    load(session_factory, MINIMAL, LOADED_AT)
    fail(session_factory, "paminnelse-30", NOW - dt.timedelta(hours=5), "550")
    assert plan(session_factory, NOW) == 0
    assert "no coordinator" in caplog.text


def test_the_digest_is_delivered_like_any_message(sessions: sessionmaker[Session]) -> None:
    fail(sessions, "paminnelse-30", NOW - dt.timedelta(hours=5), "550 5.1.1 <No such user>")
    plan(sessions, NOW)
    with transaction(sessions) as session:
        (claimed,) = claim_due(session, NOW, 100, since=NOW)
    mailer = MemoryMailer()
    delivery = Delivery(sessions, mailer, Renderer(ROOT / "templates"))
    assert deliver_one(delivery, claimed, NOW) is Outcome.SENT
    (message,) = mailer.messages
    assert message["To"].addresses[0].addr_spec == "sara@liten.se"
    assert str(message["Subject"]) == (
        "Sammanställning: 1 meddelande från samverkanskalendern kom inte fram"
    )
    plain = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert plain is not None and html is not None
    text = plain.get_content()
    assert "Mottagare: anna@liten.se" in text
    assert "550 5.1.1 <No such user>" in text
    assert "tisdag 1 juni 2027 kl. 02.00" in text
    assert "&lt;No such user&gt;" in html.get_content()
    assert "Utvärdering av samverkan" in text
