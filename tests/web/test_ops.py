"""`/healthz` and `/metrics`, read from the database."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

import models
from models.db import transaction
from tests.web.conftest import NOW, World, failed_row


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name} in {text}")


def test_healthz_answers_ok(world: World) -> None:
    answer = world.client().get("/healthz")
    assert answer.status_code == 200 and answer.text == "ok\n"


def test_metrics_count_what_is_pending_due_sent_and_failed(world: World) -> None:
    failed = failed_row(world.sessions)
    with transaction(world.sessions) as session:
        n = models.Notification
        session.get_one(n, failed).updated_at = NOW - dt.timedelta(minutes=5)
        sent = session.scalars(select(n).where(n.status == "pending", n.due_at > NOW)).first()
        assert sent is not None
        sent.status, sent.sent_at = "sent", NOW - dt.timedelta(minutes=10)
    with world.sessions() as session:
        pending = session.scalars(select(n).where(n.status == "pending")).all()
    oldest = min(r.due_at for r in pending if r.due_at <= NOW)
    text = world.client().get("/metrics").text
    assert metric(text, 'samverkan_outbox_rows{status="pending"}') == len(pending)
    assert metric(text, "samverkan_outbox_oldest_due_seconds") == (NOW - oldest).total_seconds()
    assert metric(text, "samverkan_outbox_sent_last_hour") == 1
    assert metric(text, "samverkan_outbox_failed_last_hour") == 1


def test_metrics_read_the_tick_and_worker_heartbeats(world: World) -> None:
    text = world.client().get("/metrics").text
    assert "samverkan_tick_age_seconds NaN" in text
    with transaction(world.sessions) as session:
        session.add(models.Heartbeat(name="tick", at=NOW - dt.timedelta(seconds=42)))
        session.add(models.Heartbeat(name="worker:host-1", at=NOW - dt.timedelta(seconds=7)))
    text = world.client().get("/metrics").text
    assert metric(text, "samverkan_tick_age_seconds") == 42
    assert 'samverkan_worker_heartbeat_age_seconds{worker="host-1"} 7' in text
    assert "exempel" not in text.lower() and "liten" not in text
