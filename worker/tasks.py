"""Celery tasks: three-line wrappers. Tasks carry row ids and ISO moments, never objects."""

from __future__ import annotations

import datetime as dt
import logging
import socket
from collections import Counter

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

import models
from models.db import transaction
from scheduler.digest import plan_digests
from scheduler.outbox import anything_due, claim_due, open_count, serialize_ticks, sweep_expired
from scheduler.planner import replan as replan_municipality
from worker.app import app
from worker.delivery import deliver_batch, deliver_one
from worker.imapbox import read_replies
from worker.runtime import Runtime, get_runtime

log = logging.getLogger("samverkan.tasks")


def _moment(value: str | None) -> dt.datetime:
    if value is None:
        return get_runtime().clock.now()
    return dt.datetime.fromisoformat(value).astimezone(dt.UTC)


def tick_once(
    now: dt.datetime,
    since: dt.datetime | None = None,
    backlog: bool = False,
    runtime: Runtime | None = None,
) -> list[int]:
    """Claim what is due at `now` and hand each row to a worker. Returns the claimed ids.

    With `backlog` (the beat's tick), rows already claimed and not yet finished count against
    `tick_batch`: the broker then never holds much more than one batch, so no row waits in it
    longer than the lease and is swept back while its task is still queued
    (docs/reliability.md). `runtime`: this process's unless given (bench/tickscale.py).
    """
    return _ask_then_claim(runtime or get_runtime(), now, since, backlog)[0]


def _ask_then_claim(
    runtime: Runtime, now: dt.datetime, since: dt.datetime | None, backlog: bool
) -> tuple[list[int], bool]:
    """The claimed ids, and whether they filled the room the batch left (so more may be due)."""
    if nothing_due(runtime, now, since):
        return [], False
    return claim_and_publish(runtime, now, since, backlog)


def claim_and_publish(
    runtime: Runtime, now: dt.datetime, since: dt.datetime | None, backlog: bool
) -> tuple[list[int], bool]:
    """The tick's transaction: what a tick runs when rows are due or the question could not
    be asked (and what every tick ran before `nothing_due`, so bench/tickscale.py times both)."""
    with transaction(runtime.sessions) as session:
        if backlog:
            # One backlog tick at a time (PostgreSQL; SQLite's BEGIN IMMEDIATE already does
            # this): two ticks must not both count the same rows in flight and each fill the
            # room, which would put two batches in the broker.
            serialize_ticks(session)
        room = runtime.settings.tick_batch - (open_count(session) if backlog else 0)
        ids = claim_due(session, now, room, since) if room > 0 else []
    # Published after the claim is committed, a batch of rows per task; a publish that fails
    # leaves its rows queued, and the sweeper puts them back when their lease runs out.
    size = batch_size(len(ids), runtime.settings.deliver_batch)
    for start in range(0, len(ids), size):
        deliver_many.apply_async((ids[start : start + size], now.isoformat()))
    if ids:
        log.info("tick", extra={"action": "tick", "claimed": len(ids)})
    return ids, room > 0 and len(ids) == room


def nothing_due(runtime: Runtime, now: dt.datetime, since: dt.datetime | None = None) -> bool:
    """Whether the tick can stop before its transaction: on PostgreSQL one question
    (`outbox.anything_due`) on the process's held connection, one round trip on the index, so
    an idle tick costs about what RedBeat's does (docs/performance.md). False means "claim":
    something is due, or the answer is unknown (SQLite, whose transactions take the write
    lock, or a dropped connection, which the claim's session then meets with its pre-ping)."""
    rows = runtime.held.execute_or_none(*anything_due(now, since))
    return rows is not None and not rows


# A tick's rows go out in at least this many tasks when there are enough of them, so a small
# tick (a few hundred rows) is shared by the pool instead of a few full batches in a row.
SPREAD = 8


def batch_size(claimed: int, largest: int) -> int:
    """Rows per delivery task for a tick that claimed `claimed`: at most `largest`
    (SAMVERKAN_DELIVER_BATCH), and small enough for at least SPREAD tasks."""
    return max(1, min(largest, -(-claimed // SPREAD)))


@app.task(name="samverkan.tick")
def tick(now: str | None = None, follow_up: bool = False) -> int:
    """The beat's tick (each `tick_seconds`), or a follow-up of a tick that filled its batch.

    A tick that hands out as many rows as its batch has room for publishes one follow-up
    tick right behind its deliveries. The broker's queue is first in, first out, so the
    follow-up runs when the workers have taken the batch, claims the next one, and so on
    until a tick finds less due than it has room for: a mailout of 10,000 goes out at the
    workers' pace, not at one batch a minute, and the broker still holds about one batch.
    Beat's schedule keeps its one tick; only beat's tick writes the heartbeat, so /metrics
    still shows when beat itself stopped.
    """
    ids, full = _ask_then_claim(get_runtime(), _moment(now), None, backlog=True)
    if full:
        tick.apply_async(kwargs={"now": now, "follow_up": True})
    if not follow_up:
        beat_heartbeat(dt.datetime.now(dt.UTC))
    return len(ids)


def beat_heartbeat(at: dt.datetime) -> None:
    """The tick ran, on this worker: the rows `/metrics` reads (tick age, worker heartbeat).
    One statement; on PostgreSQL on the held connection the tick asked on (one round trip)."""
    runtime = get_runtime()
    names = ("tick", f"worker:{socket.gethostname()}"[:200])
    dialect = runtime.engine.dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    upsert = insert(models.Heartbeat).values([{"name": name, "at": at} for name in names])
    statement = upsert.on_conflict_do_update(
        index_elements=["name"], set_={"at": upsert.excluded.at}
    )
    if runtime.held.execute_or_none(statement) is None:
        with transaction(runtime.sessions) as session:
            session.execute(statement)


@app.task(name="samverkan.deliver_batch")
def deliver_many(notification_ids: list[int], as_of: str) -> dict[str, int]:
    """Deliver a batch of claimed rows; how many ended which way (sent, retry, ...)."""
    outcomes = deliver_batch(get_runtime().delivery, notification_ids, _moment(as_of))
    return dict(Counter(outcome.value for outcome in outcomes.values()))


@app.task(name="samverkan.deliver")
def deliver(notification_id: int, as_of: str) -> str:
    """One row: what a tick before batches published (a broker may still hold such tasks)."""
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
                session, municipality_id, moment, runtime.settings.horizon_days, reuse=True
            )
            changed += result.created + result.updated + result.revived + result.cancelled
    return changed


@app.task(name="samverkan.replies")
def replies(now: str | None = None) -> int:
    """Read the reply mailbox and plan the non-responders summaries (docs/invites.md)."""
    return read_replies(get_runtime(), _moment(now))
