"""The Celery app, configured from the settings; tasks are thin wrappers (see worker/tasks.py).

Choices made deliberately (docs/architecture.md explains them):
- acks_late + reject_on_worker_lost: a task is acknowledged only after it ran, so with Redis a
  worker killed mid-task leaves it to be redelivered; `deliver_one` is idempotent on the row
  id. (The embedded filesystem transport removes a message when fetched: there the sweeper's
  lease recovers the row.)
- prefetch multiplier 1: a worker holds one task at a time, so a dying worker strands little.
- no ETA/countdown: long waits live in the database (due_at), never in the broker; a publish
  with an ETA more than a minute ahead is refused (`_refuse_long_eta`).
- results ignored: the outbox row is the result.
"""

from __future__ import annotations

import datetime as dt
import gc
from pathlib import Path
from typing import Any

from celery import Celery
from celery.schedules import crontab
from celery.signals import before_task_publish, worker_process_init

import worker.fstransport  # noqa: F401  (registers the embedded broker scheme)
from core.errors import LongEtaError as LongEtaError  # re-exported
from core.settings import Settings
from worker.runtime import use_settings

app = Celery("samverkan", include=["worker.tasks"])
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    enable_utc=True,
    # On a lost broker connection, let running deliveries finish (each records its outcome in
    # the database); cancelling them would cut sends in flight and widen the one window in
    # which SMTP may deliver a copy twice (docs/reliability.md).
    worker_cancel_long_running_tasks_on_connection_loss=False,
)

# The daily digest of failed messages to the coordinators, in local time (docs/reliability.md).
DIGEST_AT = crontab(hour=7, minute=0)
# A task may wait in the broker this long at the most; longer waits live in the database.
MAX_ETA = dt.timedelta(minutes=1)


def _refuse_long_eta(headers: dict[str, Any] | None = None, **_: Any) -> None:
    """Refuse, in the publishing process, any task whose ETA lies beyond MAX_ETA."""
    eta = (headers or {}).get("eta")
    if not eta:
        return
    moment = dt.datetime.fromisoformat(str(eta))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    if moment - dt.datetime.now(dt.UTC) > MAX_ETA:
        raise LongEtaError(
            f"task {(headers or {}).get('task')} was to wait in the broker until {eta}: "
            "long waits belong in the database (due_at), not in the broker"
        )


before_task_publish.connect(_refuse_long_eta)


def _freeze_startup_heap(**_: Any) -> None:
    """Put what a pool process has when it starts out of the garbage collector's way.

    What the process imported and configured before its first task (Celery, SQLAlchemy's
    tables, the templates: some 160,000 objects) lives as long as the process, yet every full
    collection walked it: about 110 ms each, 0.25 ms a message in a mailout (measured
    with gc.callbacks, docs/performance.md). `gc.freeze()` moves those objects to a generation
    the collector never visits; the objects made afterwards are collected as before. Garbage
    is collected first: whatever is frozen is never freed.
    """
    gc.collect()
    gc.freeze()


worker_process_init.connect(_freeze_startup_heap)


def broker_options(settings: Settings) -> dict[str, Any]:
    if settings.embedded_broker:
        folder = settings.broker_dir
        for sub in ("queue", "processed", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        return {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            # Otherwise kombu writes its exchange table into ./control of whatever directory.
            "control_folder": str(folder / "control"),
            "store_processed": False,
            # The default 1 s poll would make each simulated tick wait a second for nothing.
            "polling_interval": 0.05,
        }
    # Redis: a task unacknowledged this long is redelivered; longer than any send can take.
    return {"visibility_timeout": 3600}


def _forget_connections() -> None:
    """Drop the producers the app pooled for its previous broker.

    Celery builds its connection pool once, from the configuration of the moment, and keeps it:
    configured again (a `simulate` after another command in one process, a test after a test)
    it would go on publishing to the old broker, where no worker listens. The same reset Celery
    does after a fork.
    """
    # Not closed: something may still hold the old pool, and acquiring from a closed one raises.
    app._pool = None
    amqp = app.__dict__.get("amqp")
    if amqp is not None:
        amqp._producer_pool = None


def configure(settings: Settings) -> Celery:
    """Point the app (and this process's runtime) at `settings`."""
    use_settings(settings)
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    _forget_connections()
    app.conf.update(
        broker_url=settings.effective_broker_url,
        broker_transport_options=broker_options(settings),
        # The filesystem transport has no broadcast; remote control needs it.
        worker_enable_remote_control=not settings.embedded_broker,
        timezone=settings.timezone,
        beat_schedule_filename=str(Path(settings.var_dir) / "celerybeat-schedule"),
        beat_schedule={
            "tick": {"task": "samverkan.tick", "schedule": settings.tick_seconds},
            "sweep": {"task": "samverkan.sweep", "schedule": settings.sweep_seconds},
            "replan": {"task": "samverkan.replan", "schedule": crontab(hour=2, minute=30)},
            "digest": {"task": "samverkan.digest", "schedule": DIGEST_AT},
            "replies": {"task": "samverkan.replies", "schedule": settings.reply_poll_seconds},
        },
    )
    return app
