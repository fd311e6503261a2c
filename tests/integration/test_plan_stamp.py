"""The nightly re-plan stands on the last full one only while that plan is still the answer.

scheduler/planstamp.py: a full re-plan stores a digest of what it read and until when the
moment does not matter; the nightly re-plan (`reuse=True`) then skips planning and comparing.
Here, on SQLite and PostgreSQL: with nothing changed it writes nothing at all; every kind of
edit of what a plan reads ends the stamp; a role changing hands on a later day ends it that
day (the invitations' hand-over); a row cancelled, deleted or added behind the planner's back
is repaired the next night, and a stamp never holds for more than a week, so a row edited
behind its back is repaired within one. `tests/integration/test_replan_state.py`
checks the same against the full plan after any sequence of steps.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

import models
from models.db import transaction
from scheduler.calendar import STOCKHOLM
from scheduler.planner import PlanResult, replan
from service.booking import book_routine_meeting
from tests.planedits import EDITS
from tests.profiles import MINIMAL, load, snapshot, write_variant
from tests.simulation import outbox_problems, routine_rows, simulate_inline

# No moment ends a stamp in the first week after it.
LOADED_AT = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)


def nightly(sessions: sessionmaker[Session], at: dt.datetime, horizon: int = 400) -> PlanResult:
    """worker.tasks.replan's body for the one municipality."""
    with transaction(sessions) as session:
        municipality_id = session.scalars(select(models.Municipality.id)).one()
        return replan(session, municipality_id, at, horizon, reuse=True)


def problems(sessions: sessionmaker[Session], at: dt.datetime, horizon: int = 400) -> list[str]:
    with sessions() as session:
        return outbox_problems(session, at, horizon)


def at_local(day: str, time: str = "02:30") -> dt.datetime:
    """The nightly re-plan's moment on a local day."""
    local = dt.datetime.fromisoformat(f"{day}T{time}").replace(tzinfo=STOCKHOLM)
    return local.astimezone(dt.UTC)


def test_with_nothing_changed_the_nightly_re_plan_stands_on_the_last_and_writes_nothing(
    session_factory: sessionmaker[Session], engine: Engine
) -> None:
    load(session_factory, MINIMAL, LOADED_AT)
    before = snapshot(engine)
    result = nightly(session_factory, LOADED_AT + dt.timedelta(hours=15))
    assert result.reused and result.unchanged > 0
    assert snapshot(engine) == before
    # A full re-plan then writes nothing either: the stamp still holds, so it stays as it is.
    with transaction(session_factory) as session:
        municipality_id = session.scalars(select(models.Municipality.id)).one()
        full = replan(session, municipality_id, LOADED_AT + dt.timedelta(hours=15), 400)
    assert (full.created, full.updated, full.revived, full.cancelled, full.reused) == (
        0,
        0,
        0,
        0,
        False,
    )
    assert snapshot(engine) == before


@pytest.mark.parametrize("kind", sorted(EDITS))
def test_an_edit_of_what_a_plan_reads_ends_the_stamp(
    kind: str, session_factory: sessionmaker[Session]
) -> None:
    load(session_factory, MINIMAL, LOADED_AT)
    with transaction(session_factory) as session:  # so the booking edit has one to change
        municipality_id = session.scalars(select(models.Municipality.id)).one()
        book_routine_meeting(
            session,
            municipality_id,
            "samverkansmote-var",
            "2027-04-14",
            "13:00",
            None,
            LOADED_AT,
            400,
        )
    later = LOADED_AT + dt.timedelta(hours=15)
    assert nightly(session_factory, later).reused  # the stamp holds before the edit
    with transaction(session_factory) as session:
        EDITS[kind](session, later.astimezone(STOCKHOLM).date())
    assert not nightly(session_factory, later).reused
    assert problems(session_factory, later) == []


def test_an_edit_of_what_a_plan_does_not_read_keeps_the_stamp(
    session_factory: sessionmaker[Session],
) -> None:
    load(session_factory, MINIMAL, LOADED_AT)
    with transaction(session_factory) as session:
        municipality = session.scalars(select(models.Municipality)).one()
        municipality.texts_version += 1  # the worker's, not the planner's
    assert nightly(session_factory, LOADED_AT + dt.timedelta(hours=15)).reused


# Bo leaves the rektor role after the invitation reached him, Cecilia takes it, or both: the
# night the change takes effect, the invitations change hands (a CANCEL, a REQUEST).
HANDOVERS = {
    "bo leaves, cecilia arrives": ("to: 2027-03-25", "from: 2027-03-26"),
    "bo leaves": ("to: 2027-03-25", "from: 2027-09-01"),
    "cecilia arrives": ("to: 2027-12-31", "from: 2027-03-26"),
}


@pytest.mark.parametrize("change", sorted(HANDOVERS))
def test_a_role_changing_hands_on_a_later_day_ends_the_stamp_that_day(
    change: str, tmp_path: Path, session_factory: sessionmaker[Session]
) -> None:
    bo_to, cecilia_from = HANDOVERS[change]
    profile = write_variant(tmp_path, "to: 2027-01-31", bo_to)
    profile = write_variant(tmp_path, "from: 2027-02-01", cecilia_from, source=profile)
    loaded = at_local("2027-03-01", "10:00")
    load(session_factory, profile, loaded)
    with transaction(session_factory) as session:
        municipality_id = session.scalars(select(models.Municipality.id)).one()
        book_routine_meeting(
            session, municipality_id, "samverkansmote-var", "2027-04-14", "13:00", None, loaded, 400
        )
    # The invitation (three weeks before) goes out on 24 March, to Bo and Anna.
    simulate_inline(session_factory, dt.date(2027, 3, 24), dt.date(2027, 3, 24))
    nightly(session_factory, at_local("2027-03-25"))  # the invitations' record changed
    assert nightly(session_factory, at_local("2027-03-25", "23:30")).reused
    turned = at_local("2027-03-26")
    assert not nightly(session_factory, turned).reused
    assert problems(session_factory, turned) == []
    with session_factory() as session:
        handed = {
            (r.recipient_email, r.purpose)
            for r in routine_rows(session)
            if r.due_at == turned and r.status == models.Status.PENDING
        }
    assert handed, "the invitations changed hands"
    if change != "cecilia arrives":
        assert any(email == "bo@liten.se" for email, _ in handed)
    if change != "bo leaves":
        assert any(email == "cecilia@liten.se" for email, _ in handed)


@pytest.mark.parametrize("by_hand", ["cancelled", "deleted"])
def test_a_row_cancelled_or_deleted_behind_the_planner_is_back_the_next_night(
    by_hand: str, session_factory: sessionmaker[Session]
) -> None:
    load(session_factory, MINIMAL, LOADED_AT)
    with transaction(session_factory) as session:
        row = next(r for r in routine_rows(session) if r.status == models.Status.PENDING)
        key = row.idempotency_key
        if by_hand == "cancelled":
            row.status = models.Status.CANCELLED
        else:
            session.delete(row)
    night = LOADED_AT + dt.timedelta(hours=15)
    result = nightly(session_factory, night)
    assert not result.reused and result.revived + result.created == 1
    with session_factory() as session:
        assert {r.idempotency_key: r.status for r in routine_rows(session)}[key] == (
            models.Status.PENDING
        )
    assert problems(session_factory, night) == []


def test_a_stamp_holds_a_week_at_most_so_a_row_edited_behind_the_planner_is_repaired(
    session_factory: sessionmaker[Session],
) -> None:
    load(session_factory, MINIMAL, LOADED_AT)
    with transaction(session_factory) as session:
        row = next(r for r in routine_rows(session) if r.status == models.Status.PENDING)
        row.recipient_email = "someone.else@liten.se"  # by hand, in the database
        key = row.idempotency_key
    six_days = LOADED_AT + dt.timedelta(days=6)
    assert nightly(session_factory, six_days).reused  # not compared: still edited
    week = LOADED_AT + dt.timedelta(days=7)
    result = nightly(session_factory, week)
    assert not result.reused and result.updated == 1
    with session_factory() as session:
        emails = {r.idempotency_key: r.recipient_email for r in routine_rows(session)}
    assert emails[key] != "someone.else@liten.se"
    assert problems(session_factory, week) == []


def test_a_row_the_range_reaches_on_a_later_night_ends_the_stamp_that_night(
    session_factory: sessionmaker[Session],
) -> None:
    horizon = 14
    load(session_factory, MINIMAL, LOADED_AT, horizon)
    with session_factory() as session:
        assert routine_rows(session) == []  # nothing in the first fortnight
        municipality_id = session.scalars(select(models.Municipality.id)).one()
    # Night by night until the first row comes into the range: each night equals the plan.
    night = at_local("2026-12-02")
    while True:
        result = nightly(session_factory, night, horizon)
        assert problems(session_factory, night, horizon) == []
        with session_factory() as session:
            if routine_rows(session):
                break
        night += dt.timedelta(days=1)
    assert not result.reused and result.created > 0
    with session_factory() as session:
        first = min(r.due_at for r in routine_rows(session))
        stamp = session.get_one(models.PlanStamp, municipality_id)
    assert night - dt.timedelta(days=1) <= first - dt.timedelta(days=horizon) < night
    assert stamp.planned_at == night


def test_a_re_plan_of_an_earlier_moment_plans_in_full(
    session_factory: sessionmaker[Session],
) -> None:
    """A simulation re-run of an earlier range re-plans before the stamp's moment: the rows
    due between then and the stamp were never compared against that moment."""
    load(session_factory, MINIMAL, LOADED_AT)
    earlier = LOADED_AT - dt.timedelta(days=1)
    assert not nightly(session_factory, earlier).reused
    assert problems(session_factory, earlier) == []


def test_a_longer_horizon_plans_in_full(session_factory: sessionmaker[Session]) -> None:
    load(session_factory, MINIMAL, LOADED_AT, 14)
    result = nightly(session_factory, LOADED_AT + dt.timedelta(hours=15), 400)
    assert not result.reused and result.created > 0
    assert problems(session_factory, LOADED_AT + dt.timedelta(hours=15), 400) == []


# Routines whose rows a plan finds only once a new year has come: a January meeting's reminder
# due in December (the plan looks at the occurrences of the range's last year, so the range
# reaching into January brings it in), and a message 400 days after New Year's Eve (the plan
# looks at occurrences from the year before now's, so at New Year the one two years back drops).
AROUND_NEW_YEAR = {
    "the range reaches January": (
        14,
        "      date: {month: 1, day: 10}\n",
        "        before: {days: 12}\n",
    ),
    "now reaches January": (
        60,
        "      date: {month: 12, day: 31}\n",
        "        after: {days: 400}\n",
    ),
}


@pytest.mark.parametrize("case", sorted(AROUND_NEW_YEAR))
def test_night_by_night_over_new_year_the_outbox_equals_the_plan(
    case: str, tmp_path: Path, session_factory: sessionmaker[Session]
) -> None:
    horizon, when, offset = AROUND_NEW_YEAR[case]
    routine = (
        "  - key: nyar\n"
        "    name: Uppföljning kring nyår\n"
        "    kind: deadline\n"
        "    when:\n" + when + "    owners: [elevhalsochef]\n"
        "    messages:\n"
        "      - purpose: paminnelse\n"
        "        to: [elevhalsochef]\n"
        "        template: utvardering-paminnelse\n" + offset
    )
    profile = write_variant(tmp_path, "routines:\n", "routines:\n" + routine)
    load(session_factory, profile, LOADED_AT, horizon)
    night, changed = at_local("2026-12-02"), 0
    while night < at_local("2027-01-12"):
        result = nightly(session_factory, night, horizon)
        changed += result.created + result.cancelled
        assert problems(session_factory, night, horizon) == [], night
        night += dt.timedelta(days=1)
    assert changed, "a row came or went over New Year"
