"""`samverkan plan`: what a year holds, as a table or JSON, computed without changing anything."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from sqlalchemy.orm import Session

from scheduler.calendar import STOCKHOLM
from scheduler.planner import PlannedRow, compute_plan, planning_input
from worker.render import Renderer


def year_plan(
    session: Session, municipality_id: int, year: int, renderer: Renderer
) -> list[dict[str, Any]]:
    """One item per occurrence (on its day) and one per message (on its due day), by date."""
    data = planning_input(session, municipality_id)
    start = dt.datetime(year, 1, 1, tzinfo=STOCKHOLM).astimezone(dt.UTC)
    end = dt.datetime(year + 1, 1, 1, tzinfo=STOCKHOLM).astimezone(dt.UTC)
    plan = compute_plan(data, start, end)
    items: list[dict[str, Any]] = []
    routines = {routine.key: routine for routine, _ in data.routines}
    for occurrence in plan.occurrences:
        routine = routines[occurrence.routine]
        owners = data.directory.resolve(routine.owners, occurrence.date)
        item: dict[str, Any] = {
            "date": occurrence.date.isoformat(),
            "routine": occurrence.routine,
            "kind": occurrence.kind.value,
            "occurrence": occurrence.key,
            "recipients": [o.email for o in owners],
            "subject": routine.name,
        }
        if occurrence.kind.value == "meeting":
            booking = occurrence.booking
            item["booked"] = booking is not None
            if booking is not None:
                item["start"] = booking.start.astimezone(STOCKHOLM).isoformat()
                item["end"] = booking.end.astimezone(STOCKHOLM).isoformat()
                item["location"] = booking.location
            else:
                item["window_end"] = (
                    occurrence.window_end.isoformat() if occurrence.window_end else None
                )
        items.append(item)
    groups: dict[tuple[str, str, str], list[PlannedRow]] = defaultdict(list)
    for row in plan.rows:
        groups[(row.routine, row.occurrence, row.purpose)].append(row)
    for (routine_key, occurrence_key, purpose), rows in groups.items():
        first = rows[0]
        items.append(
            {
                "date": first.due_at.astimezone(STOCKHOLM).date().isoformat(),
                "routine": routine_key,
                "kind": "message",
                "occurrence": occurrence_key,
                "purpose": purpose,
                "template": first.template,
                "due_at": first.due_at.isoformat(),
                "recipients": [r.recipient.email for r in rows],
                "subject": renderer.subject(first.template, first.context),
                "invite": first.context.get("meeting") is not None,
            }
        )
    items.sort(
        key=lambda i: (i["date"], i["routine"], i["kind"] == "message", i.get("purpose", ""))
    )
    return items
