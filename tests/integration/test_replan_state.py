"""The outbox equals the plan, after any sequence of edits, loads, bookings and simulations.

A hypothesis state machine edits a profile (routines, messages, timings, roles, people, the
school year, bookings), loads it at any moment with any horizon (earlier moments too: a
simulation re-run of an earlier range), books meetings by command, simulates ranges with
the real loop, and runs the nightly re-plan at any later moment, also right after an edit
made straight in the database (tests/planedits.py). When the nightly re-plan stood on the last
full one (scheduler/planstamp.py), a full re-plan at that moment must write nothing. After
every step the rows still to be sent equal what `compute_plan` gives for the database's final
state, from now to the horizon or to the last row still pending, whichever is later; a
planned message is never left cancelled (so a cancelled row planned again has come back, with
its key and Message-ID), and a sent row never changes.

Runs on SQLite and PostgreSQL (`database_url`). SAMVERKAN_REPLAN_EXAMPLES sets the number of
examples (12 by default, so `make test` stays quick); e.g. 300 for a long run.
"""

from __future__ import annotations

import copy
import datetime as dt
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session, sessionmaker

import models
from core.errors import SamverkanError
from models import Base
from models.db import transaction
from scheduler.calendar import STOCKHOLM
from scheduler.planner import replan
from service.profiles import load_profile, validate_profile
from service.simulate import local_midnight
from tests.planedits import EDITS
from tests.profiles import MINIMAL
from tests.simulation import latest_pending, outbox_problems, routine_rows, simulate_inline

EXAMPLES = int(os.environ.get("SAMVERKAN_REPLAN_EXAMPLES", "12"))
FIRST = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)
DAYS = 760  # moments from November 2026 to the end of 2028
HORIZONS = (14, 60, 400)

SCHOOL_YEAR_ROUTINE: dict[str, Any] = {
    "key": "lasarsstart",
    "name": "Material vid läsårets början",
    "kind": "mailout",
    "when": {"school_year": "start"},
    "owners": ["elevhalsochef"],
    "messages": [
        {
            "purpose": "forbered",
            "to": ["elevhalsochef"],
            "template": "lasarsstart-forbered",
            "before": {"weeks": 3},
        },
        {
            "purpose": "utskick",
            "to": ["rektor"],
            "reply_to": "elevhalsochef",
            "template": "lasarsstart-material",
        },
    ],
}


def base_profile() -> dict[str, Any]:
    profile: dict[str, Any] = yaml.safe_load(MINIMAL.read_text(encoding="utf-8"))
    profile["routines"].append(copy.deepcopy(SCHOOL_YEAR_ROUTINE))
    return profile


moments = st.integers(0, DAYS).map(lambda d: FIRST + dt.timedelta(days=d))
april_days = st.sampled_from(
    [dt.date(y, 4, d) for y in (2027, 2028) for d in (6, 13, 14, 20, 21, 27)]
)


class OutboxMachine(RuleBasedStateMachine):
    def __init__(self, sessions: sessionmaker[Session], engine: Engine, folder: Path) -> None:
        super().__init__()
        self.sessions = sessions
        self.folder = folder
        with engine.begin() as connection:  # each example starts from an empty database
            for table in reversed(Base.metadata.sorted_tables):
                connection.execute(delete(table))
        self.profile = base_profile()
        self.shelf: dict[str, Any] = {}  # what an edit took out, to put back later
        self.now = FIRST
        self.horizon = 400
        self.sent: dict[str, tuple[Any, ...]] = {}
        self.message_ids: dict[str, str] = {}
        self.reach: dt.datetime | None = None
        self.reused = 0

    # --- the steps ---------------------------------------------------------------------------

    @initialize(at=moments, horizon=st.sampled_from(HORIZONS))
    def first_load(self, at: dt.datetime, horizon: int) -> None:
        assert self._load(at, horizon)

    @rule(at=moments, horizon=st.sampled_from(HORIZONS))
    def load(self, at: dt.datetime, horizon: int) -> None:
        self._load(at, horizon)

    # Each edit is loaded at once (at the last moment, with the last horizon) or left for a
    # later load, so edits also pile up between loads.

    @rule(
        key=st.sampled_from(["utvardering", "samverkansmote-var", "lasarsstart"]), now=st.booleans()
    )
    def toggle_routine(self, key: str, now: bool) -> None:
        routines = self.profile["routines"]
        here = [r for r in routines if r["key"] == key]
        if here:
            routines.remove(here[0])
            self.shelf[key] = here[0]
        else:
            routines.append(self.shelf.pop(key))
        self._reload(now)

    @rule(now=st.booleans())
    def toggle_message(self, now: bool) -> None:
        routine = self._routine("utvardering")
        if routine is None:
            return
        messages = routine["messages"]
        if len(messages) > 1:
            self.shelf["message"] = messages.pop()
        elif "message" in self.shelf:
            messages.append(self.shelf.pop("message"))
        self._reload(now)

    @rule(days=st.sampled_from([10, 20, 30, 45]), now=st.booleans())
    def move_reminder(self, days: int, now: bool) -> None:
        routine = self._routine("utvardering")
        if routine is not None:
            routine["messages"][0]["before"] = {"days": days}
        self._reload(now)

    @rule(person=st.sampled_from(["anna", "bo", "cecilia"]), now=st.booleans())
    def toggle_roles(self, person: str, now: bool) -> None:
        row = self._person(person)
        shelved = f"roles-{person}"
        # A person keeps at least one role: one no routine addresses stands in.
        if shelved not in self.shelf:
            self.shelf[shelved] = row["roles"]
            row["roles"] = [{"role": "samordnare"}]
        else:
            row["roles"] = self.shelf.pop(shelved)
        self._reload(now)

    @rule(person=st.sampled_from(["anna", "bo", "cecilia"]), n=st.integers(1, 3), now=st.booleans())
    def rename(self, person: str, n: int, now: bool) -> None:
        row = self._person(person)
        row["email"] = f"{person}{n}@liten.se"
        row["name"] = f"{person.title()} {n}"
        self._reload(now)

    @rule(day=st.sampled_from([15, 19, 24]), now=st.booleans())
    def school_year(self, day: int, now: bool) -> None:
        self.profile["school_years"]["rule"]["start"] = {"month": 8, "day": day}
        self._reload(now)

    @rule(day=april_days, hour=st.sampled_from([9, 13]), now=st.booleans())
    def profile_booking(self, day: dt.date, hour: int, now: bool) -> None:
        routine = self._routine("samverkansmote-var")
        if routine is not None:
            routine.setdefault("bookings", {})[day.year] = {
                "date": day.isoformat(),
                "time": f"{hour:02d}:00",
            }
        self._reload(now)

    @rule(year=st.sampled_from([2027, 2028]), now=st.booleans())
    def drop_profile_booking(self, year: int, now: bool) -> None:
        routine = self._routine("samverkansmote-var")
        if routine is not None:
            routine.get("bookings", {}).pop(year, None)
            if not routine.get("bookings"):
                routine.pop("bookings", None)
        self._reload(now)

    @rule(day=april_days, at=moments, hour=st.sampled_from([10, 14]))
    def book(self, day: dt.date, at: dt.datetime, hour: int) -> None:
        from service.booking import book_routine_meeting

        try:
            with transaction(self.sessions) as session:
                municipality_id = session.scalars(select(models.Municipality.id)).one()
                book_routine_meeting(
                    session,
                    municipality_id,
                    "samverkansmote-var",
                    day.isoformat(),
                    f"{hour}:00",
                    None,
                    at,
                    self.horizon,
                )
        except SamverkanError:
            return  # refused (a routine taken out, a day passed): nothing changed
        self.now = at

    @rule(start=moments, days=st.integers(1, 90))
    def simulate(self, start: dt.datetime, days: int) -> None:
        first = start.date()
        last = first + dt.timedelta(days=days - 1)
        simulate_inline(self.sessions, first, last, self.horizon)
        # Its last re-plan reached from inside the range to the range's end plus the horizon.
        self.now = local_midnight(last + dt.timedelta(days=1))

    @rule(days=st.integers(0, 45), hours=st.integers(0, 23))
    def nightly(self, days: int, hours: int) -> None:
        self._nightly(self.now + dt.timedelta(days=days, hours=hours))

    # An edit straight in the database, no re-plan with it (an edit the planner did not make),
    # then the nightly re-plan: it must see the edit, never stand on the plan before it.
    @rule(kind=st.sampled_from(sorted(EDITS)), days=st.integers(0, 45))
    def edit_behind_the_planner(self, kind: str, days: int) -> None:
        with transaction(self.sessions) as session:
            EDITS[kind](session, self.now.astimezone(STOCKHOLM).date())
        self._nightly(self.now + dt.timedelta(days=days))

    # --- the invariants ------------------------------------------------------------------------

    @invariant()
    def outbox_equals_plan(self) -> None:
        with self.sessions() as session:
            # The range also reaches the last row that was pending before this step: a row
            # cancelled for being far would otherwise have left the range with it.
            problems = outbox_problems(session, self.now, self.horizon, self.reach)
            self.reach = latest_pending(session)
        assert not problems, "\n".join(problems[:10])

    @invariant()
    def sent_rows_never_change_and_keys_keep_their_message_id(self) -> None:
        with self.sessions() as session:
            rows = routine_rows(session)
        for r in rows:
            assert self.message_ids.setdefault(r.idempotency_key, r.message_id) == r.message_id
            if r.status == models.Status.SENT:
                snapshot = (r.id, r.status, r.sent_at, r.due_at, r.recipient_email, r.context)
                assert self.sent.setdefault(r.idempotency_key, snapshot) == snapshot
        assert set(self.sent) <= {r.idempotency_key for r in rows}

    # --- helpers -------------------------------------------------------------------------------

    def _nightly(self, at: dt.datetime) -> None:
        """The nightly re-plan at `at` (worker.tasks.replan's body). When it stood on the last
        full re-plan, a full re-plan at the same moment must find nothing to write."""
        with transaction(self.sessions) as session:
            municipality_id = session.scalars(select(models.Municipality.id)).one()
            result = replan(session, municipality_id, at, self.horizon, reuse=True)
        if result.reused:
            self.reused += 1
            with self.sessions() as session:  # rolled back: only what it would write
                full = replan(session, municipality_id, at, self.horizon)
                session.rollback()
            assert (full.created, full.updated, full.revived, full.cancelled) == (0, 0, 0, 0)
        self.now = at

    def _reload(self, now: bool) -> None:
        if now:
            self._load(self.now, self.horizon)

    def _load(self, at: dt.datetime, horizon: int) -> bool:
        path = self.folder / "profile.yaml"
        path.write_text(yaml.safe_dump(self.profile, allow_unicode=True), encoding="utf-8")
        try:
            valid = validate_profile(path, at.date())
        except SamverkanError:
            return False  # refused as a whole (e.g. a routine that never occurs): no change
        with transaction(self.sessions) as session:
            load_profile(session, valid, at, horizon)
        self.now, self.horizon = at, horizon
        return True

    def _routine(self, key: str) -> dict[str, Any] | None:
        found = [r for r in self.profile["routines"] if r["key"] == key]
        return found[0] if found else None

    def _person(self, key: str) -> dict[str, Any]:
        person: dict[str, Any] = next(p for p in self.profile["people"] if p["key"] == key)
        return person


def test_the_outbox_equals_the_plan_after_any_sequence_of_steps(
    session_factory: sessionmaker[Session], engine: Engine, tmp_path: Path
) -> None:
    run_state_machine_as_test(
        lambda: OutboxMachine(session_factory, engine, tmp_path),
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=15,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )


def test_the_check_passes_on_a_plain_load_and_catches_a_cancelled_planned_row(
    session_factory: sessionmaker[Session], engine: Engine, tmp_path: Path
) -> None:
    machine = OutboxMachine(session_factory, engine, tmp_path)
    assert machine._load(FIRST, 400)
    machine.outbox_equals_plan()
    with transaction(session_factory) as session:
        row = next(r for r in routine_rows(session) if r.status == models.Status.PENDING)
        row.status = models.Status.CANCELLED
    with pytest.raises(AssertionError, match="planned but cancelled"):
        machine.outbox_equals_plan()
