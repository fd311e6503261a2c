"""Whether a re-plan can stand on the last one instead of planning again.

A plan is a function of what it reads (`PlanningRows`), of the planner's own code and the
holiday calendar, of the horizon, and of the moment. A full re-plan stores a digest of the
first four with the moment, and computes until when the moment does not matter: the earliest
of

- the first message timing due from now (a row comes due and is sent; an invitation's moment
  passes, which the hand-over of invitations looks at), and the first row;
- the first row beyond the range, less the horizon (the range would reach it);
- the first day a role assignment starts or the day after one ends (the hand-over of
  invitations resolves roles on today's date);
- the next new year, now's and the range's (a plan looks at the occurrences from the year
  before now's to the range's last year);
- a week after the re-plan, so the full comparison, which also repairs a row changed behind
  the planner's back, runs at least weekly.

A meeting beginning is not such a moment: the invitations' hand-over and a called-off
meeting's CANCELs are planned only while it is ahead, and what they plan is due at once,
which ends the stamp as it is made.

Before that moment and with the same digest, a full re-plan would write nothing: the nightly
re-plan (`replan(..., reuse=True)`) skips the plan and the comparison, once it has counted the
rows of its scope still to be sent and found the stamp's count (a row cancelled, deleted or
added by hand is repaired the next night; a row's fields edited by hand, within a week).
Every other re-plan (a profile load, a booking, a meeting called off) plans in full.
`docs/architecture.md` holds the argument; `tests/integration/test_plan_stamp.py` and
`tests/integration/test_replan_state.py` its tests.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

import models
from scheduler.calendar import STOCKHOLM, local_moment

if TYPE_CHECKING:
    from scheduler.planner import Plan, PlanningInput, PlanningRows

Pending = Callable[[], int]
WEEK = dt.timedelta(days=7)
# How far beyond the range a full re-plan looks, for the first row the range would reach.
LOOKAHEAD = WEEK
_SOURCES = ("core", "models", "scheduler")
MIDNIGHT = dt.time(0)


@lru_cache(maxsize=1)
def planner_version() -> str:
    """The planner's code and the holiday calendar it counts working days with: a deploy of
    either plans every municipality in full once."""
    digest = hashlib.sha256(metadata.version("holidays").encode())
    root = Path(__file__).resolve().parent.parent
    for package in _SOURCES:
        for path in sorted((root / package).rglob("*.py")):
            digest.update(path.relative_to(root).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def input_digest(rows: PlanningRows, horizon_days: int) -> str:
    """A digest of everything a plan depends on except the moment."""
    text = repr(
        (
            planner_version(),
            horizon_days,
            rows.own,
            rows.routines,
            rows.bookings,
            rows.assignments,
            rows.people,
            rows.invites,
        )
    )
    return hashlib.sha256(text.encode()).hexdigest()


def valid_until(
    data: PlanningInput, plan: Plan, now: dt.datetime, end: dt.datetime, horizon_days: int
) -> dt.datetime:
    """Until when a plan of [now, end) from `data` stays what a full re-plan would give.

    `plan` reaches `LOOKAHEAD` beyond `end` (see the module's docstring for each moment).
    """
    horizon = dt.timedelta(days=horizon_days)
    today = now.astimezone(STOCKHOLM).date()
    end_year = end.astimezone(STOCKHOLM).year
    moments = [
        now + WEEK,
        local_moment(dt.date(today.year + 1, 1, 1), MIDNIGHT),
        # The range reaching into another year: a plan looks at that year's occurrences.
        local_moment(dt.date(end_year + 1, 1, 1), MIDNIGHT) - horizon,
    ]
    # A timing without a recipient plans nothing until a role changes hands (a boundary below),
    # and one with recipients is a row too; the rule stated plainly: a moment comes due.
    moments += [t.due_at for t, _ in plan.timings if t.due_at >= now]
    moments += [r.due_at if r.due_at < end else r.due_at - horizon for r in plan.rows]
    for a in data.directory.assignments:
        if a.valid_from is not None and a.valid_from > today:
            moments.append(local_moment(a.valid_from, MIDNIGHT))
        if a.valid_to is not None and a.valid_to >= today:
            moments.append(local_moment(a.valid_to + dt.timedelta(days=1), MIDNIGHT))
    return min(moments)


def reusable(
    session: Session, municipality_id: int, digest: str, now: dt.datetime, pending: Pending
) -> models.PlanStamp | None:
    """The stamp a re-plan at `now` with this digest can stand on, if any: `pending()` counts
    the scope's rows still to be sent, asked last (the one query)."""
    stamp = session.get(models.PlanStamp, municipality_id)
    if stamp is None or stamp.digest != digest:
        return None
    if not stamp.planned_at <= now < stamp.valid_until:
        return None
    if stamp.pending != pending():
        return None
    return stamp


def record(
    session: Session,
    municipality_id: int,
    digest: str,
    now: dt.datetime,
    until: dt.datetime,
    rows: int,
    pending: int,
) -> None:
    """Store a full re-plan's stamp. A stamp that still holds for this digest and count is
    kept as it is (what it says is still true), so a re-plan that changes nothing writes
    nothing."""
    if reusable(session, municipality_id, digest, now, lambda: pending) is not None:
        return
    stamp = session.get(models.PlanStamp, municipality_id)
    if stamp is None:
        stamp = models.PlanStamp(municipality_id=municipality_id)
        session.add(stamp)
    stamp.digest, stamp.planned_at, stamp.valid_until = digest, now, until
    stamp.rows, stamp.pending = rows, pending
