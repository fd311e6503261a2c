"""`samverkan plan`: what a year holds, as a table or JSON, computed without changing anything.

The computed plan is joined with the outbox by idempotency key, so each message shows its
state per recipient: planned, sending, retrying, sent (when), failed (the reply) or cancelled
(why). Messages of the year that the outbox holds but the plan no longer has (sent before a
routine changed, cancelled since) are shown too, so the whole year is there.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

import models
from scheduler.calendar import STOCKHOLM
from scheduler.outbox import in_retry
from scheduler.planner import PlannedRow, compute_plan, planning_input
from scheduler.spec import RESERVED_ROUTINE_KEYS
from worker.render import Renderer

Group = tuple[str, str, str]  # routine, occurrence, purpose


def year_plan(
    session: Session,
    municipality_id: int,
    year: int,
    renderer: Renderer,
    now: dt.datetime,
) -> list[dict[str, Any]]:
    """One item per occurrence (on its day) and one per message (on its due day), by date;
    a message's state is told as of `now`."""
    data = planning_input(session, municipality_id)
    start = dt.datetime(year, 1, 1, tzinfo=STOCKHOLM).astimezone(dt.UTC)
    end = dt.datetime(year + 1, 1, 1, tzinfo=STOCKHOLM).astimezone(dt.UTC)
    plan = compute_plan(data, start, end)
    items = [_occurrence_item(data, occurrence) for occurrence in plan.occurrences]
    rows = _outbox_rows(session, municipality_id, start, end, [r.key for r in plan.rows])
    groups: dict[Group, list[PlannedRow]] = defaultdict(list)
    for row in plan.rows:
        groups[(row.routine, row.occurrence, row.purpose)].append(row)
    for rows_of_group in groups.values():
        items.append(_message_item(rows_of_group, rows, renderer, now))
    items += _outbox_only(rows, {r.key for r in plan.rows}, renderer)
    items.sort(
        key=lambda i: (i["date"], i["routine"], i["kind"] == "message", i.get("purpose", ""))
    )
    return items


def _occurrence_item(data: Any, occurrence: Any) -> dict[str, Any]:
    routine = next(r for r, _ in data.routines if r.key == occurrence.routine)
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
    return item


def _outbox_rows(
    session: Session, municipality_id: int, start: dt.datetime, end: dt.datetime, keys: list[str]
) -> dict[str, models.Notification]:
    """The routine rows of the year (by due or sent moment) and every row of a planned key."""
    n = models.Notification
    routine_rows = (n.municipality_id == municipality_id) & n.routine_key.not_in(
        sorted(RESERVED_ROUTINE_KEYS)
    )
    in_year = or_((n.due_at >= start) & (n.due_at < end), (n.sent_at >= start) & (n.sent_at < end))
    found = {r.idempotency_key: r for r in session.scalars(select(n).where(routine_rows, in_year))}
    for i in range(0, len(keys), 500):
        chunk = keys[i : i + 500]
        for r in session.scalars(select(n).where(routine_rows, n.idempotency_key.in_(chunk))):
            found[r.idempotency_key] = r
    return found


def delivery_state(
    row: models.Notification | None, due_at: dt.datetime, now: dt.datetime
) -> dict[str, Any]:
    """What became of one message to one recipient."""
    if row is None:
        # Planned, but not in the outbox: beyond the horizon, or due before the routine existed.
        return {"state": "planned" if due_at >= now else "not planned"}
    state: dict[str, Any] = {"state": _state_name(row)}
    if row.status == models.Status.SENT:
        state["sent_at"] = row.sent_at.isoformat() if row.sent_at else None
    elif row.status == models.Status.CANCELLED:
        state["reason"] = row.cancel_reason
    elif row.status == models.Status.FAILED or in_retry(row):
        state["reply"] = row.smtp_reply or row.last_error
    return state


def _state_name(row: models.Notification) -> str:
    if row.status == models.Status.PENDING:
        return "retrying" if in_retry(row) else "planned"
    if row.status in (models.Status.QUEUED, models.Status.SENDING):
        return "sending"
    return str(row.status)


def _message_item(
    planned: list[PlannedRow],
    rows: dict[str, models.Notification],
    renderer: Renderer,
    now: dt.datetime,
) -> dict[str, Any]:
    first = planned[0]
    deliveries = [
        {"recipient": p.recipient.email, **delivery_state(rows.get(p.key), p.due_at, now)}
        for p in planned
    ]
    return {
        "date": first.due_at.astimezone(STOCKHOLM).date().isoformat(),
        "routine": first.routine,
        "kind": "message",
        "occurrence": first.occurrence,
        "purpose": first.purpose,
        "template": first.template,
        "due_at": first.due_at.isoformat(),
        "recipients": [p.recipient.email for p in planned],
        "subject": renderer.subject(first.template, first.context),
        "invite": first.context.get("meeting") is not None,
        "in_plan": True,
        "state": summary(deliveries),
        "deliveries": deliveries,
    }


def _outbox_only(
    rows: dict[str, models.Notification], planned: set[str], renderer: Renderer
) -> list[dict[str, Any]]:
    """Messages of the year the outbox holds and the plan no longer has, one item a group."""
    groups: dict[Group, list[models.Notification]] = defaultdict(list)
    for key, row in rows.items():
        if key not in planned:
            groups[(row.routine_key, row.occurrence, row.purpose)].append(row)
    items = []
    for (routine, occurrence, purpose), members in groups.items():
        first = min(members, key=lambda r: r.due_at)
        deliveries = [
            {"recipient": r.recipient_email, **delivery_state(r, r.due_at, first.due_at)}
            for r in members
        ]
        items.append(
            {
                "date": first.due_at.astimezone(STOCKHOLM).date().isoformat(),
                "routine": routine,
                "kind": "message",
                "occurrence": occurrence,
                "purpose": purpose,
                "template": first.template,
                "due_at": first.due_at.isoformat(),
                "recipients": [r.recipient_email for r in members],
                "subject": renderer.subject(first.template, first.context),
                "invite": first.context.get("meeting") is not None,
                "in_plan": False,
                "state": summary(deliveries),
                "deliveries": deliveries,
            }
        )
    return items


def summary(deliveries: list[dict[str, Any]]) -> str:
    """One word when every recipient's message is in the same state, else counts per state."""
    counts: dict[str, int] = defaultdict(int)
    for d in deliveries:
        counts[d["state"]] += 1
    if len(counts) == 1:
        return next(iter(counts))
    return ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))


def state_text(item: dict[str, Any]) -> str:
    """The state column of the table: the summary, and when, why or the reply for one."""
    text = str(item["state"])
    for d in item["deliveries"]:
        detail = d.get("sent_at") or d.get("reason") or d.get("reply")
        if detail:
            if d.get("sent_at"):
                detail = dt.datetime.fromisoformat(detail).astimezone(STOCKHOLM)
                detail = detail.strftime("%Y-%m-%d %H:%M")
            return f"{text} ({detail})"
    return text
