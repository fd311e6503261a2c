"""Run the real path (tick → claim → worker → mailer) while a simulated clock jumps from one
due moment to the next. The demo, the acceptance test, and a coordinator's preview of a year.

Only rows due inside the range are touched: anything overdue from before the range belongs
to real time, and simulating the same range twice sends nothing the second time.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select

import models
from core.errors import SimulationStalled as SimulationStalled  # re-exported
from models.db import transaction
from scheduler.calendar import STOCKHOLM
from scheduler.outbox import next_due, open_count
from scheduler.planner import replan
from worker.runtime import Runtime


@dataclass
class SimulationResult:
    start: dt.datetime
    end: dt.datetime
    ticks: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    by_routine: dict[str, Counter[str]] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def sent(self) -> int:
        return self.outcomes["sent"]


def local_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tzinfo=STOCKHOLM).astimezone(dt.UTC)


def simulate(
    runtime: Runtime,
    first_day: dt.date,
    last_day: dt.date,
    tick: Callable[[dt.datetime, dt.datetime], list[int]],
    progress: Callable[[dt.datetime], None] | None = None,
    wait_seconds: float = 120.0,
) -> SimulationResult:
    """Simulate [first_day, last_day] (local dates, inclusive).

    `tick(now, since)` claims what is due and hands it to the workers.
    """
    start, end = local_midnight(first_day), local_midnight(last_day + dt.timedelta(days=1))
    result = SimulationResult(start, end)
    began = time.monotonic()
    horizon = (end - start).days + runtime.settings.horizon_days
    _replan_all(runtime, start, horizon)
    planned_day = first_day
    moment = _next_moment(runtime, start, end)
    while moment is not None:
        day = moment.astimezone(STOCKHOLM).date()
        if day != planned_day:  # the nightly re-plan, as beat would run it
            _replan_all(runtime, moment, horizon)
            planned_day = day
        ids = tick(moment, start)
        result.ticks += 1
        _wait_for(runtime, ids, wait_seconds)
        _count(runtime, ids, result)
        if progress is not None:
            progress(moment)
        moment = _next_moment(runtime, start, end)
    result.seconds = time.monotonic() - began
    return result


def _replan_all(runtime: Runtime, now: dt.datetime, horizon_days: int) -> None:
    with transaction(runtime.sessions) as session:
        for municipality_id in session.scalars(select(models.Municipality.id)):
            replan(session, municipality_id, now, horizon_days, reuse=True)


def _next_moment(runtime: Runtime, start: dt.datetime, end: dt.datetime) -> dt.datetime | None:
    with runtime.sessions() as session:
        moment = next_due(session, after=start - dt.timedelta(microseconds=1))
    if moment is None or moment >= end:
        return None
    return moment


def _wait_for(runtime: Runtime, ids: list[int], wait_seconds: float) -> None:
    if not ids:
        return
    deadline = time.monotonic() + wait_seconds
    pause = 0.01
    while True:
        with runtime.sessions() as session:
            if open_count(session, ids) == 0:
                return
        if time.monotonic() > deadline:
            raise SimulationStalled(
                f"{len(ids)} message(s) were handed to the workers but not finished within "
                f"{wait_seconds:.0f} s: is a worker running against the same broker?"
            )
        time.sleep(pause)
        pause = min(pause * 2, 0.2)


def _count(runtime: Runtime, ids: list[int], result: SimulationResult) -> None:
    if not ids:
        return
    with runtime.sessions() as session:
        rows = session.execute(
            select(models.Notification.routine_key, models.Notification.status).where(
                models.Notification.id.in_(ids)
            )
        )
        for routine, status in rows:
            # A transient failure is back to pending: it is counted when it is finally done.
            if status == models.Status.PENDING:
                status = "retrying"
            result.outcomes[status] += 1
            result.by_routine.setdefault(routine, Counter())[status] += 1
