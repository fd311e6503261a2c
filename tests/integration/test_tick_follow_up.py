"""The beat's tick and its follow-ups (worker/tasks.py `tick`): a tick that fills the room of
its batch publishes one more tick right behind the batch's deliveries; the chain ends at the
first tick that finds less due than it has room for; only beat's own tick writes the
heartbeat. Run against the real embedded broker (kombu's filesystem transport under var/) and
a real SQLite database: the queue's files are read back in order."""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

import models
import worker.runtime
from core.settings import load_settings
from models import Status
from models.db import transaction
from scheduler.outbox import serialize_ticks
from tests.profiles import MINIMAL, load
from worker.app import configure
from worker.delivery import deliver_batch
from worker.runtime import get_runtime
from worker.tasks import SPREAD, batch_size, tick, tick_once

LOADED_AT = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC)
END_OF_2027 = dt.datetime(2027, 12, 31, tzinfo=dt.UTC)
BATCH = 2
DELIVER = "samverkan.deliver_batch"


@pytest.fixture
def var_dir(tmp_path: Path, monkeypatch: Any) -> Iterator[Path]:
    monkeypatch.setattr(worker.runtime, "_settings", None)
    monkeypatch.setattr(worker.runtime, "_runtime", None)
    configure(
        load_settings({"SAMVERKAN_VAR_DIR": str(tmp_path), "SAMVERKAN_TICK_BATCH": str(BATCH)})
    )
    runtime = get_runtime()
    models.Base.metadata.create_all(runtime.engine)
    load(runtime.sessions, MINIMAL, LOADED_AT)
    yield tmp_path
    runtime.close()


def published(var_dir: Path) -> list[tuple[str, dict[str, Any]]]:
    """The tasks in the broker's queue, oldest first (task name, kwargs or args), taken out."""
    folder = var_dir / "broker" / "queue"
    files = sorted(folder.glob("*.msg"), key=lambda f: (f.stat().st_mtime_ns, f.name))
    tasks = []
    for file in files:
        message = json.loads(file.read_text())
        args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
        tasks.append((message["headers"]["task"], kwargs or {"args": args}))
        file.unlink()
    return tasks


def heartbeat(name: str = "tick") -> dt.datetime | None:
    with get_runtime().sessions() as session:
        return session.scalar(select(models.Heartbeat.at).where(models.Heartbeat.name == name))


def due_rows() -> int:
    with get_runtime().sessions() as session:
        rows = session.scalars(
            select(models.Notification.id).where(
                models.Notification.status == Status.PENDING,
                models.Notification.due_at <= END_OF_2027,
            )
        )
        return len(rows.all())


def test_a_tick_that_fills_its_batch_is_followed_until_nothing_more_is_due(var_dir: Path) -> None:
    now = END_OF_2027.isoformat()
    due = due_rows()
    assert due > BATCH and due % BATCH, "a full batch, then a shorter one"
    runtime = get_runtime()
    assert tick(now) == BATCH  # beat's tick
    beat_at = heartbeat()
    assert beat_at is not None
    delivered = 0
    follow_ups = 0
    while True:
        tasks = published(var_dir)
        deliveries = [t for t in tasks if t[0] == DELIVER]
        # The follow-up, if any, comes last: behind every delivery of its batch.
        assert [t[0] for t in tasks[: len(deliveries)]] == [DELIVER] * len(deliveries)
        handed_out = 0
        for _, task in deliveries:
            ids, as_of = task["args"]
            deliver_batch(runtime.delivery, ids, dt.datetime.fromisoformat(as_of))
            handed_out += len(ids)
        delivered += handed_out
        rest = tasks[len(deliveries) :]
        if not rest:
            assert handed_out < BATCH  # the last tick found less than a batch
            break
        assert rest == [("samverkan.tick", {"now": now, "follow_up": True})]
        follow_ups += 1
        tick(**rest[0][1])
    assert delivered == due
    assert follow_ups == due // BATCH
    assert heartbeat() == beat_at  # the follow-ups do not pass for beat


def test_a_tick_with_no_room_publishes_nothing_and_no_follow_up(var_dir: Path) -> None:
    now = END_OF_2027.isoformat()
    assert tick(now) == BATCH
    first = published(var_dir)
    assert [name for name, _ in first][-1] == "samverkan.tick"
    assert {name for name, _ in first[:-1]} == {DELIVER}
    assert sum(len(task["args"][0]) for _, task in first[:-1]) == BATCH
    # The batch is still in flight (nothing delivered): the next tick has no room.
    assert tick(now, follow_up=True) == 0
    assert published(var_dir) == []


def test_backlog_ticks_wait_for_each_other(session_factory: Any) -> None:
    """Two backlog ticks never count what is in flight at the same time: the second waits
    until the first's transaction ends (advisory lock on PostgreSQL, BEGIN IMMEDIATE on
    SQLite), so they cannot both fill the room and put two batches in the broker."""
    events: list[str] = []
    entered = threading.Event()

    def second() -> None:
        entered.set()
        with transaction(session_factory) as session:
            serialize_ticks(session)
            session.execute(select(models.Notification.id).limit(1))
            events.append("second counted")

    with transaction(session_factory) as session:
        serialize_ticks(session)
        session.execute(select(models.Notification.id).limit(1))
        thread = threading.Thread(target=second)
        thread.start()
        entered.wait()
        thread.join(timeout=1.0)  # it must still be waiting
        events.append("first committed")
    thread.join(timeout=30)
    assert events == ["first committed", "second counted"]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 100])
def test_a_tick_hands_out_each_claimed_row_once_in_tasks_of_the_delivery_batch(
    tmp_path: Path, monkeypatch: Any, size: int
) -> None:
    """Every claimed id in exactly one task, in the order claimed, no task over the size."""
    monkeypatch.setattr(worker.runtime, "_settings", None)
    monkeypatch.setattr(worker.runtime, "_runtime", None)
    settings = {
        "SAMVERKAN_VAR_DIR": str(tmp_path),
        "SAMVERKAN_TICK_BATCH": "10",
        "SAMVERKAN_DELIVER_BATCH": str(size),
    }
    configure(load_settings(settings))
    runtime = get_runtime()
    try:
        models.Base.metadata.create_all(runtime.engine)
        load(runtime.sessions, MINIMAL, LOADED_AT)
        claimed = tick_once(END_OF_2027)
        assert len(claimed) == min(10, due_rows() + len(claimed))
        tasks = published(tmp_path)
        batches = [task["args"][0] for name, task in tasks if name == DELIVER]
        assert all(0 < len(batch) <= size for batch in batches)
        assert [i for batch in batches for i in batch] == claimed
        expected = batch_size(len(claimed), size)
        assert [len(batch) for batch in batches[:-1]] == [expected] * (len(batches) - 1)
        assert len(batches) >= min(SPREAD, len(claimed)) or len(batches) * size >= len(claimed)
    finally:
        runtime.close()


@pytest.mark.parametrize("claimed", [0, 1, 7, 8, 9, 63, 500, 799, 800, 801, 2000, 10_000])
@pytest.mark.parametrize("largest", [1, 20, 100])
def test_the_batch_size_spreads_a_small_tick_and_never_exceeds_the_setting(
    claimed: int, largest: int
) -> None:
    size = batch_size(claimed, largest)
    tasks = -(-claimed // size)
    assert 1 <= size <= largest
    # Spread: one row fewer per task would need more than SPREAD tasks (or the size is 1) ...
    assert size == 1 or -(-claimed // (size - 1)) > SPREAD
    # ... and no smaller than it needs to be, unless the tasks are full batches already.
    assert tasks <= SPREAD or size == largest
