"""`/metrics` in the Prometheus text format, read from the database, so every process that
serves it tells the same truth. Counts are over the whole installation, never per
municipality: the page names nobody and no municipality.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

import models

HOUR = dt.timedelta(hours=1)


def healthy(session: Session) -> bool:
    try:
        return session.execute(text("SELECT 1")).scalar() == 1
    except SQLAlchemyError:
        return False


def _gauge(name: str, help_text: str, samples: list[tuple[str, float]]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
    lines += [f"{name}{labels} {value:g}" for labels, value in samples]
    return lines


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(session: Session, now: dt.datetime) -> str:
    n = models.Notification
    counts = dict(
        session.execute(
            select(n.status, func.count())
            .where(n.status.in_(models.OPEN_STATUSES))
            .group_by(n.status)
        ).all()
    )
    oldest = session.scalar(
        select(func.min(n.due_at)).where(n.status.in_(models.OPEN_STATUSES), n.due_at <= now)
    )
    sent = session.scalar(select(func.count()).where(n.sent_at >= now - HOUR, n.sent_at <= now))
    failed = session.scalar(
        select(func.count()).where(n.status == models.Status.FAILED, n.updated_at >= now - HOUR)
    )
    beats = {row.name: row.at for row in session.execute(select(models.Heartbeat.name, models.Heartbeat.at))}
    lines = _gauge(
        "samverkan_outbox_rows",
        "Messages not yet sent, by status.",
        [(f'{{status="{s.value}"}}', float(counts.get(s.value, 0))) for s in models.OPEN_STATUSES],
    )
    lines += _gauge(
        "samverkan_outbox_oldest_due_seconds",
        "Age of the oldest message that is due and not sent (0 when none).",
        [("", max((now - oldest).total_seconds(), 0.0) if oldest else 0.0)],
    )
    lines += _gauge(
        "samverkan_outbox_sent_last_hour",
        "Messages sent in the last hour.",
        [("", float(sent or 0))],
    )
    lines += _gauge(
        "samverkan_outbox_failed_last_hour",
        "Messages that failed for good in the last hour.",
        [("", float(failed or 0))],
    )
    tick = beats.get("tick")
    lines += _gauge(
        "samverkan_tick_age_seconds",
        "Seconds since beat's tick last ran (NaN: never).",
        [("", (now - tick).total_seconds() if tick else float("nan"))],
    )
    workers = sorted(
        (name.removeprefix("worker:"), at)
        for name, at in beats.items()
        if name.startswith("worker:")
    )
    lines += _gauge(
        "samverkan_worker_heartbeat_age_seconds",
        "Seconds since each worker last ran a tick.",
        [(f'{{worker="{_escape(w)}"}}', (now - at).total_seconds()) for w, at in workers],
    )
    return "\n".join(lines).replace(" nan", " NaN") + "\n"
