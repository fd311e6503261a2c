"""`samverkan simulate` in the test's own process, with the worker inline, and the check that
the outbox equals the plan."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import models
from core.settings import ROOT, Settings
from models.db import transaction
from scheduler.outbox import claim_due, in_retry
from scheduler.planner import compute_plan, planning_input
from scheduler.spec import RESERVED_ROUTINE_KEYS
from service.simulate import SimulationResult, simulate
from worker.delivery import Delivery, RetryPolicy, deliver_batch
from worker.mailers import MemoryMailer
from worker.render import Renderer

TEMPLATES = ROOT / "templates"


def simulate_inline(
    sessions: sessionmaker[Session],
    first_day: dt.date,
    last_day: dt.date,
    horizon_days: int = 400,
    mailer: MemoryMailer | None = None,
) -> SimulationResult:
    """The real simulation loop (re-plan each day, tick, deliver); the claimed rows are
    delivered at once by `deliver_batch`, in the service's batches, instead of through a
    broker to a worker."""
    delivery = Delivery(sessions, mailer or MemoryMailer(), Renderer(TEMPLATES), RetryPolicy())

    def tick(now: dt.datetime, since: dt.datetime) -> list[int]:
        with transaction(sessions) as session:
            ids = claim_due(session, now, 10_000, since)
        size = Settings().deliver_batch
        for start in range(0, len(ids), size):
            deliver_batch(delivery, ids[start : start + size], now)
        return ids

    runtime: Any = SimpleNamespace(
        sessions=sessions, settings=SimpleNamespace(horizon_days=horizon_days)
    )
    return simulate(runtime, first_day, last_day, tick)


def routine_rows(session: Session) -> list[models.Notification]:
    return list(
        session.scalars(
            select(models.Notification)
            .where(models.Notification.routine_key.not_in(sorted(RESERVED_ROUTINE_KEYS)))
            .order_by(models.Notification.id)
        )
    )


def planned_fields(row: Any) -> dict[str, Any]:
    """What a planned row says a message is, in the outbox's columns."""
    return {
        "template": row.template,
        "context": row.context,
        "person_id": row.recipient.person_id,
        "roles": list(row.recipient.roles),
        "recipient_email": row.recipient.email,
        "recipient_name": row.recipient.name,
        "due_at": row.due_at,
        "message_id": row.message_id,
    }


def latest_pending(session: Session) -> dt.datetime | None:
    """The due moment of the last row still to be sent (not a retry)."""
    rows = [r for r in routine_rows(session) if r.status == models.Status.PENDING]
    return max((r.due_at for r in rows if not in_retry(r)), default=None)


def outbox_problems(
    session: Session, now: dt.datetime, horizon_days: int, reach: dt.datetime | None = None
) -> list[str]:
    """Where the outbox differs from `compute_plan` for the database's state at `now`.

    The range is now to the horizon or to the last row still pending, whichever is later;
    `reach` (the last row pending before the step) extends it, so a row cancelled for being
    far is seen.
    Rows still to be sent (pending, not a retry, due from now) must be exactly the planned
    ones, with the planned fields; every planned message must have its row, never cancelled
    (it may be sent, failed or in flight already).
    """
    problems: list[str] = []
    municipality_id = session.scalars(select(models.Municipality.id)).one()
    rows = routine_rows(session)
    waiting = [
        r for r in rows if r.status == models.Status.PENDING and not in_retry(r) and r.due_at >= now
    ]
    end = now + dt.timedelta(days=horizon_days)
    for last in [r.due_at for r in waiting] + ([reach] if reach is not None else []):
        end = max(end, last + dt.timedelta(microseconds=1))
    plan = compute_plan(planning_input(session, municipality_id), now, end)
    planned = {p.key: p for p in plan.rows}
    by_key = {r.idempotency_key: r for r in rows}
    for r in waiting:
        wanted = planned.get(r.idempotency_key)
        if wanted is None:
            problems.append(f"pending but not planned: {r.idempotency_key} due {r.due_at}")
            continue
        actual = {k: getattr(r, k) for k in planned_fields(wanted)}
        if actual != planned_fields(wanted):
            problems.append(f"pending but differs from the plan: {r.idempotency_key}")
    for key, p in planned.items():
        found = by_key.get(key)
        if found is None:
            problems.append(f"planned but missing: {key} due {p.due_at}")
        elif found.status == models.Status.CANCELLED:
            problems.append(f"planned but cancelled ({found.cancel_reason}): {key}")
        elif found.message_id != p.message_id:
            problems.append(f"planned with another Message-ID: {key}")
    return problems
