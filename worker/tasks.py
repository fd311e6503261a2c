"""Celery tasks: three-line wrappers. Tasks carry row ids and ISO moments, never objects."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select

import models
from models.db import transaction
from scheduler.digest import plan_digests
from scheduler.outbox import claim_due, open_count, sweep_expired
from scheduler.planner import replan as replan_municipality
from worker.app import app
from worker.delivery import deliver_one
from worker.imapbox import read_replies
from worker.runtime import get_runtime

log = logging.getLogger("samverkan.tasks")


def _moment(value: str | None) -> dt.datetime:
    if value is None:
        return get_runtime().clock.now()
    return dt.datetime.fromisoformat(value).astimezone(dt.UTC)


def tick_once(
    now: dt.datetime, since: dt.datetime | None = None, backlog: bool = False
) -> list[int]:
    """Claim what is due at `now` and hand each row to a worker. Returns the claimed ids.

    With `backlog` (the beat's tick), rows already claimed and not yet finished count against
    `tick_batch`: the broker then never holds much more than one batch, so no row waits in it
    longer than the lease and is swept back while its task is still queued
    (docs/reliability.md).
    """
    runtime = get_runtime()
    with transaction(runtime.sessions) as session:
        room = runtime.settings.tick_batch - (open_count(session) if backlog else 0)
        ids = claim_due(session, now, room, since) if room > 0 else []
    # Published after the claim is committed; a publish that fails leaves the row queued,
    # and the sweeper puts it back when its lease runs out.
    for notification_id in ids:
        deliver.apply_async((notification_id, now.isoformat()))
    if ids:
        log.info("tick", extra={"action": "tick", "claimed": len(ids)})
    return ids


@app.task(name="samverkan.tick")
def tick(now: str | None = None) -> int:
    return len(tick_once(_moment(now), backlog=True))


@app.task(name="samverkan.deliver")
def deliver(notification_id: int, as_of: str) -> str:
    return deliver_one(get_runtime().delivery, notification_id, _moment(as_of)).value


@app.task(name="samverkan.sweep")
def sweep(now: str | None = None) -> int:
    runtime = get_runtime()
    lease = dt.timedelta(seconds=runtime.settings.lease_seconds)
    with transaction(runtime.sessions) as session:
        return sweep_expired(session, _moment(now), lease)


@app.task(name="samverkan.digest")
def digest(now: str | None = None) -> int:
    """Plan today's digest of failed messages for each municipality's coordinators."""
    runtime = get_runtime()
    settle = dt.timedelta(seconds=runtime.settings.lease_seconds)
    with transaction(runtime.sessions) as session:
        return plan_digests(session, _moment(now), settle)


@app.task(name="samverkan.replan")
def replan(now: str | None = None) -> int:
    runtime = get_runtime()
    moment = _moment(now)
    changed = 0
    with transaction(runtime.sessions) as session:
        for municipality_id in session.scalars(select(models.Municipality.id)):
            result = replan_municipality(
                session, municipality_id, moment, runtime.settings.horizon_days
            )
            changed += result.created + result.updated + result.revived + result.cancelled
    return changed


@app.task(name="samverkan.replies")
def replies(now: str | None = None) -> int:
    """Read the reply mailbox and plan the non-responders summaries (docs/invites.md)."""
    return read_replies(get_runtime(), _moment(now))
