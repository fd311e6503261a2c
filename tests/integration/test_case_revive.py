"""Case and report rows follow the outbox's rule: a cancelled message wanted again comes back
(same key, same Message-ID), after the same checks as an insert; a late reminder does not."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import models
from core.errors import ConfidentialityError
from models.db import transaction
from scheduler.caseoutbox import CaseRow, Subject, sync_rows
from tests.profiles import load, snapshot

CASES = Path(__file__).parent.parent / "data" / "cases.yaml"
LOADED = dt.datetime(2027, 3, 1, 6, 0, tzinfo=dt.UTC)
LATER = LOADED + dt.timedelta(days=1)


def case_row(purpose: str, due_at: dt.datetime, **changes: object) -> CaseRow:
    row = CaseRow(
        key=f"fall/report/2027-0001/{purpose}/x", purpose=purpose,
        template="anmalan-registrerad", context={"n": 1}, person_id=None, roles=(),
        email="x@fallby.se", name="X", due_at=due_at, late="send",
        message_id=f"<{purpose}@fallby.se>",
    )  # fmt: skip
    return dataclasses.replace(row, **changes)  # type: ignore[arg-type]


@pytest.fixture
def subject(session_factory: sessionmaker[Session]) -> Subject:
    load(session_factory, CASES, LOADED)
    with session_factory() as session:
        municipality_id = session.scalars(select(models.Municipality.id)).one()
    return Subject(municipality_id, "report", "2027-0001", suspected_abuse=False)


def sync(
    sessions: sessionmaker[Session], subject: Subject, rows: list[CaseRow], now: dt.datetime
) -> object:
    with transaction(sessions) as session:
        return sync_rows(session, subject, rows, now, "report changed")


def by_purpose(sessions: sessionmaker[Session]) -> dict[str, models.Notification]:
    with sessions() as session:
        found = session.scalars(
            select(models.Notification).where(models.Notification.occurrence == "2027-0001")
        )
        return {r.purpose: r for r in found}


def test_a_cancelled_case_row_wanted_again_comes_back(
    subject: Subject, session_factory: sessionmaker[Session]
) -> None:
    a, b = case_row("a", LATER), case_row("b", LATER + dt.timedelta(days=3))
    assert sync(session_factory, subject, [a, b], LOADED).created == 2  # type: ignore[attr-defined]
    first = by_purpose(session_factory)
    assert sync(session_factory, subject, [a], LOADED).cancelled == ["b"]  # type: ignore[attr-defined]
    assert by_purpose(session_factory)["b"].status == models.Status.CANCELLED
    moved = dataclasses.replace(b, due_at=LATER + dt.timedelta(days=5), context={"n": 2})
    result = sync(session_factory, subject, [a, moved], LOADED)
    assert (result.revived, result.created) == (1, 0)  # type: ignore[attr-defined]
    back = by_purpose(session_factory)["b"]
    assert back.status == models.Status.PENDING and back.cancel_reason is None
    assert (back.id, back.message_id) == (first["b"].id, first["b"].message_id)
    assert back.context == {"n": 2} and back.due_at == LATER + dt.timedelta(days=5)


def test_a_late_reminder_is_not_revived(
    subject: Subject, session_factory: sessionmaker[Session]
) -> None:
    reminder = case_row("paminnelse", LATER, late="skip")
    sync(session_factory, subject, [reminder], LOADED)
    sync(session_factory, subject, [], LOADED)
    sync(session_factory, subject, [reminder], LATER + dt.timedelta(hours=1))
    assert by_purpose(session_factory)["paminnelse"].status == models.Status.CANCELLED


def test_a_revive_passes_the_confidentiality_check(
    subject: Subject, session_factory: sessionmaker[Session], engine: object
) -> None:
    guardian = case_row("vardnadshavare", LATER, external="guardian", email="vh@hem.se")
    sync(session_factory, subject, [guardian], LOADED)
    sync(session_factory, subject, [], LOADED)
    flagged = dataclasses.replace(subject, suspected_abuse=True)
    before = snapshot(engine)  # type: ignore[arg-type]
    with pytest.raises(ConfidentialityError):
        sync(session_factory, flagged, [guardian], LOADED)
    assert snapshot(engine) == before  # type: ignore[arg-type]
    assert by_purpose(session_factory)["vardnadshavare"].status == models.Status.CANCELLED
