"""The naive baseline for bench/mailout.py (NOT the project's app): one Celery task per message,
and each task builds its message and opens a new SMTP connection for it.

Started as a subprocess: `python bench/_naive_worker.py`, prefork, concurrency from
BENCH_CONCURRENCY. Configured by the parent through the environment:
  BENCH_BROKER_URL   the Redis broker
  BENCH_SMTP_PORT    the sink on 127.0.0.1
  BENCH_ATTACHMENT   a file to attach to every message (unset: a small reminder)
Each sent message increments the Redis key `bench:naive:done` on the broker's Redis, which is
how the bench counts completions. No database: what the naive design leaves out (a record of
each send, role checks) would only make it slower.
"""

from __future__ import annotations

import os
import smtplib
from pathlib import Path

import redis
from celery import Celery

QUEUE = "naive"
DONE_KEY = "bench:naive:done"

app = Celery("naive")
app.conf.update(
    broker_url=os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/15"),
    task_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    task_default_queue=QUEUE,
)

_state: dict[str, object] = {}


def _counter() -> redis.Redis:
    if "redis" not in _state:
        _state["redis"] = redis.Redis.from_url(os.environ["BENCH_BROKER_URL"])
    client = _state["redis"]
    assert isinstance(client, redis.Redis)
    return client


def _attachment() -> bytes | None:
    if "attachment" not in _state:
        name = os.environ.get("BENCH_ATTACHMENT")
        _state["attachment"] = Path(name).read_bytes() if name else None
    value = _state["attachment"]
    return value if isinstance(value, bytes) else None


@app.task(name="naive.send")
def send(index: int) -> None:
    import mailout  # the same message as the plain loops build

    message = mailout.build_message(index, _attachment())
    with smtplib.SMTP("127.0.0.1", int(os.environ["BENCH_SMTP_PORT"])) as conn:
        conn.sendmail(mailout.SENDER, [mailout.recipient(index)], message.as_bytes())
    _counter().incr(DONE_KEY)


def main() -> None:
    app.worker_main(
        [
            "worker",
            "--pool=prefork",
            f"--concurrency={os.environ.get('BENCH_CONCURRENCY', '2')}",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            f"--queues={QUEUE}",
            "--loglevel=WARNING",
        ]
    )


if __name__ == "__main__":
    main()
