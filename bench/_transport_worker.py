"""A minimal Celery worker for bench/transports.py (NOT the project's app).

Started as a subprocess: `python bench/_transport_worker.py NAME`. Configured from the
environment by the parent:
  BENCH_BROKER_URL         the broker URL
  BENCH_TRANSPORT_OPTIONS  JSON, broker_transport_options
  BENCH_SOCKET             an AF_UNIX datagram socket; each task reports to it
  BENCH_POLLING_INTERVAL   if set, patched onto kombu's SQLAlchemy Transport class (its
                           transport options cannot carry it: they go to create_engine)
The URL scheme fsatomic:// is the project's worker.fstransport.Transport (registered on import).
The app uses the project's worker settings that matter to a transport (acks_late,
prefetch multiplier 1, JSON, results ignored, remote control off).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time

from celery import Celery
from kombu.transport import TRANSPORT_ALIASES

QUEUE = "bench"


# The project's own atomic-publish transport, so the bench measures the code we ship.
TRANSPORT_ALIASES.setdefault("fsatomic", "worker.fstransport:Transport")


def make_app(broker_url: str, transport_options: dict[str, object]) -> Celery:
    app = Celery("bench")
    app.conf.update(
        broker_url=broker_url,
        broker_transport_options=transport_options,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        worker_enable_remote_control=False,
        worker_hijack_root_logger=False,
        task_default_queue=QUEUE,
        enable_utc=True,
    )
    return app


def _patch_sqla_polling() -> None:
    value = os.environ.get("BENCH_POLLING_INTERVAL")
    if value:
        from kombu.transport import sqlalchemy as sqla

        sqla.Transport.polling_interval = float(value)


def main() -> None:
    name = sys.argv[1] if len(sys.argv) > 1 else "w1"
    _patch_sqla_polling()
    app = make_app(
        os.environ["BENCH_BROKER_URL"], json.loads(os.environ.get("BENCH_TRANSPORT_OPTIONS", "{}"))
    )
    report_to = os.environ["BENCH_SOCKET"]
    out = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    pid = os.getpid()

    @app.task(name="bench.noop")
    def noop(tag: str, sleep: float = 0.0) -> None:
        if sleep:
            out.sendto(f"start {tag} {pid}".encode(), report_to)
            time.sleep(sleep)
        out.sendto(f"done {tag} {pid}".encode(), report_to)

    app.worker_main(
        [
            "worker",
            "--pool=threads",
            "--concurrency=2",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            f"--queues={QUEUE}",
            f"--hostname={name}@%h",
            "--loglevel=WARNING",
        ]
    )


if __name__ == "__main__":
    main()
