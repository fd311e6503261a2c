"""Fault-injection harness: a generated municipality, real processes, and counting at the SMTP end.

Every scenario runs the real thing: `samverkan worker` (Celery, prefork) and `samverkan beat`
as subprocesses, a private redis-server, a private PostgreSQL schema, and the SmtpRecorder
(aiosmtpd) in the test process. What arrived is counted per Message-ID, which is derived from
the idempotency key: one Message-ID, one planned message.

Sizes: the quick run (default; part of `make test`) mails `QUICK_MESSAGES` per scenario; the
full run (`make faults`, which sets SAMVERKAN_TEST_FAULTS=full) mails `FULL_MESSAGES`.
SAMVERKAN_TEST_FAULT_MESSAGES overrides both. SAMVERKAN_TEST_FAULT_REPORT names a file to which
each scenario appends its figures as one JSON line.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

import models
from models import Status
from models.db import make_engine, make_sessionmaker
from tests.fixtures.services import RedisProcess, create_schema
from tests.fixtures.smtp import SmtpRecorder
from tests.profiles import load

SAMVERKAN = str(Path(sys.executable).parent / "samverkan")
MODE_ENV = "SAMVERKAN_TEST_FAULTS"
SIZE_ENV = "SAMVERKAN_TEST_FAULT_MESSAGES"
REPORT_ENV = "SAMVERKAN_TEST_FAULT_REPORT"
QUICK_MESSAGES = 150
FULL_MESSAGES = 2000
FINAL = (Status.SENT, Status.FAILED, Status.CANCELLED)
LOADED_AT = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC)
MAILOUT = "utskick"  # the routine of the generated profile's mailout

REPORTS: list[FaultReport] = []


def full_run() -> bool:
    return os.environ.get(MODE_ENV, "").strip().lower() == "full"


def messages() -> int:
    given = os.environ.get(SIZE_ENV)
    if given:
        return int(given)
    return FULL_MESSAGES if full_run() else QUICK_MESSAGES


def mode() -> str:
    return "full" if full_run() else "quick"


# --------------------------------------------------------------------------- the profile


def write_profile(
    path: Path,
    rektorer: int,
    *,
    coordinators: int = 2,
    monthly: bool = False,
    bad_addresses: Iterable[int] = (),
) -> Path:
    """A municipality with `rektorer` principals and a mailout to all of them.

    `monthly`: twelve routines instead, one on the 10th of each month (a year of mail).
    """
    bad = set(bad_addresses)
    lines = [
        "municipality:",
        "  key: felprov",
        "  name: Felprovs kommun",
        "  sender: {name: Samverkan Felprov, email: samverkan@felprov.se}",
        '  send_time: "08:00"',
        "units:",
    ]
    schools = max(1, rektorer // 10)
    lines += [
        f"  - {{key: skola-{i:03d}, name: Skola {i}, kind: grundskola}}" for i in range(schools)
    ]
    lines += [
        "  - {key: forvaltning, name: Förvaltningen, kind: forvaltning}",
        "school_years:",
        "  rule: {start: {month: 8, day: 19}, end: {month: 6, day: 11}}",
        "people:",
        "  - {key: chef, name: Elsa Chef, email: chef@felprov.se, roles: [{role: elevhalsochef}]}",
    ]
    for i in range(coordinators):
        lines.append(
            f"  - {{key: samordnare-{i}, name: Sam Ordnare {i}, email: samordnare-{i}@felprov.se,"
            " roles: [{role: samordnare, unit: forvaltning}]}"
        )
    for i in range(rektorer):
        domain = "fel.felprov.se" if i in bad else "felprov.se"
        lines.append(
            f"  - {{key: rektor-{i:04d}, name: Rektor {i}, email: rektor-{i:04d}@{domain}, "
            f"roles: [{{role: rektor, unit: skola-{i % schools:03d}}}]}}"
        )
    lines.append("routines:")
    dates = [(m, 10) for m in range(1, 13)] if monthly else [(9, 15)]
    for month, day in dates:
        key = f"{MAILOUT}-{month:02d}" if monthly else MAILOUT
        lines += [
            f"  - key: {key}",
            f"    name: Utskick {month}",
            "    kind: mailout",
            f"    when: {{date: {{month: {month}, day: {day}}}}}",
            "    owners: [elevhalsochef]",
            "    messages:",
            "      - purpose: utskick",
            "        to: [rektor]",
            "        template: styrning-paminnelse",
            "        before: {days: 0}",
        ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def bad_address(i: int) -> str:
    return f"rektor-{i:04d}@fel.felprov.se"


# --------------------------------------------------------------------------- the database


def tagged(url: str, application_name: str) -> str:
    """`url` with libpq's application_name set, so the test can find these connections."""
    return (
        make_url(url)
        .update_query_dict({"application_name": application_name})
        .render_as_string(hide_password=False)
    )


@dataclass
class Outbox:
    """The test's own view of the database (its connections are not tagged)."""

    url: str
    engine: Engine = field(init=False)
    sessions: sessionmaker[Session] = field(init=False)

    def __post_init__(self) -> None:
        create_schema(self.url)
        self.engine = make_engine(self.url)
        self.sessions = make_sessionmaker(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def load(self, profile: Path) -> None:
        load(self.sessions, profile, LOADED_AT)

    def mailout_ids(self) -> list[int]:
        with self.sessions() as session:
            return list(
                session.scalars(
                    select(models.Notification.id)
                    .where(models.Notification.routine_key == MAILOUT)
                    .order_by(models.Notification.id)
                )
            )

    def make_due(self, ids: list[int], at: dt.datetime | None = None) -> None:
        """Make the rows due now: the mailout starts."""
        moment = at or dt.datetime.now(dt.UTC)
        with self.sessions() as session, session.begin():
            session.execute(
                update(models.Notification)
                .where(models.Notification.id.in_(ids))
                .values(due_at=moment)
            )

    def statuses(self, ids: list[int] | None = None) -> Counter[str]:
        query = select(models.Notification.status, func.count()).group_by(
            models.Notification.status
        )
        if ids is not None:
            query = query.where(models.Notification.id.in_(ids))
        with self.sessions() as session:
            return Counter({status: n for status, n in session.execute(query)})

    def rows(self, ids: list[int] | None = None) -> list[models.Notification]:
        query = select(models.Notification).order_by(models.Notification.id)
        if ids is not None:
            query = query.where(models.Notification.id.in_(ids))
        with self.sessions() as session:
            found = list(session.scalars(query))
            session.expunge_all()
            return found

    def attempts(self) -> dict[int, list[models.DeliveryAttempt]]:
        by_row: dict[int, list[models.DeliveryAttempt]] = {}
        with self.sessions() as session:
            for attempt in session.scalars(
                select(models.DeliveryAttempt).order_by(
                    models.DeliveryAttempt.notification_id, models.DeliveryAttempt.number
                )
            ):
                by_row.setdefault(attempt.notification_id, []).append(attempt)
            session.expunge_all()
        return by_row

    def ids_in(self, status: str, ids: list[int]) -> set[int]:
        with self.sessions() as session:
            return set(
                session.scalars(
                    select(models.Notification.id).where(
                        models.Notification.id.in_(ids), models.Notification.status == status
                    )
                )
            )

    def terminate(self, application_name: str) -> list[str]:
        """pg_terminate_backend on every connection tagged `application_name`; their states."""
        with self.engine.begin() as connection:
            rows = connection.execute(
                text(
                    "SELECT pid, state FROM pg_stat_activity "
                    "WHERE application_name = :name AND pid <> pg_backend_pid()"
                ),
                {"name": application_name},
            ).all()
            for pid, _state in rows:
                connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        return [str(state) for _pid, state in rows]


# --------------------------------------------------------------------------- processes


class Cluster:
    """The service's processes for one scenario; every process is stopped at the end."""

    def __init__(
        self,
        directory: Path,
        database_url: str,
        broker_url: str,
        smtp: SmtpRecorder,
        **settings: str,
    ) -> None:
        self.directory = directory
        self.application_name = f"samverkan-faults-{secrets.token_hex(4)}"
        base = {k: v for k, v in os.environ.items() if not k.startswith("SAMVERKAN_")}
        base.update(
            SAMVERKAN_DATABASE_URL=tagged(database_url, self.application_name),
            SAMVERKAN_BROKER_URL=broker_url,
            SAMVERKAN_SMTP_URL=f"smtp://{smtp.host}:{smtp.port}?timeout=5",
            SAMVERKAN_VAR_DIR=str(directory / "var"),
            SAMVERKAN_OUTBOX_DIR=str(directory / "outbox"),
            SAMVERKAN_LOG_LEVEL="WARNING",
            SAMVERKAN_TICK_SECONDS="1",
            SAMVERKAN_SWEEP_SECONDS="2",
            SAMVERKAN_LEASE_SECONDS="15",
            SAMVERKAN_RETRY_BASE_SECONDS="1",
            SAMVERKAN_RETRY_HORIZON_HOURS="1",
            SAMVERKAN_TICK_BATCH="100",
        )
        base.update({f"SAMVERKAN_{k.upper()}": v for k, v in settings.items()})
        self.env = base
        self.processes: list[subprocess.Popen[bytes]] = []
        self._logs = 0
        # Like docker-compose's `restart: unless-stopped`: a worker that exits on its own is
        # started again (Celery 5.7 workers can exit when the broker connection drops; see
        # docs/reliability.md). Killed or stopped workers are not.
        self.restarts = 0
        self._workers: dict[subprocess.Popen[bytes], int] = {}
        self._stopping = threading.Event()
        self._supervisor = threading.Thread(target=self._supervise, daemon=True)
        self._supervisor.start()

    @property
    def lease(self) -> float:
        return float(self.env["SAMVERKAN_LEASE_SECONDS"])

    def start(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        self._logs += 1
        log = (self.directory / f"{self._logs:02d}-{args[0]}.log").open("wb")
        process = subprocess.Popen(
            [SAMVERKAN, *args],
            env={**self.env, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: kill -9 takes the pool too
        )
        log.close()
        self.processes.append(process)
        return process

    def worker(self, concurrency: int = 2) -> subprocess.Popen[bytes]:
        process = self.start("worker", "--concurrency", str(concurrency))
        self._workers[process] = concurrency
        return process

    def _supervise(self) -> None:
        while not self._stopping.wait(0.5):
            for process, concurrency in list(self._workers.items()):
                if process.poll() is not None and not self._stopping.is_set():
                    del self._workers[process]
                    self.restarts += 1
                    self.worker(concurrency)

    def beat(self, var_dir: Path | None = None) -> subprocess.Popen[bytes]:
        env = {"SAMVERKAN_VAR_DIR": str(var_dir)} if var_dir else None
        return self.start("beat", env=env)

    def run(self, *args: str, timeout: float) -> str:
        done = subprocess.run(
            [SAMVERKAN, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert done.returncode == 0, f"samverkan {args} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        """kill -9 of the worker's whole process group (master and pool), no warning."""
        self._workers.pop(process, None)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop(self) -> None:
        self._stopping.set()
        self._supervisor.join(timeout=5)
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)

    def logs(self) -> str:
        parts = []
        for path in sorted(self.directory.glob("*.log")):
            content = path.read_text(errors="replace").splitlines()[-15:]
            parts.append(f"--- {path.name}\n" + "\n".join(content))
        return "\n".join(parts)


# --------------------------------------------------------------------------- waiting, counting


def wait_until(
    condition: Callable[[], bool], timeout: float, what: str, pause: float = 0.2
) -> float:
    """Poll until `condition()`; return the seconds it took. AssertionError after `timeout`."""
    began = time.monotonic()
    while not condition():
        if time.monotonic() - began > timeout:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(pause)
    return time.monotonic() - began


def arrivals(smtp: SmtpRecorder) -> Counter[str]:
    """How many copies of each Message-ID the SMTP server accepted."""
    return Counter(str(mail.message["Message-ID"]) for mail in smtp.received)


@dataclass
class FaultReport:
    scenario: str
    mode: str
    planned: int
    sent: int
    lost: int
    duplicated: int
    drain_seconds: float
    failed: int = 0
    details: dict[str, Any] = field(default_factory=dict)

    def record(self) -> None:
        REPORTS.append(self)
        target = os.environ.get(REPORT_ENV)
        if target:
            with Path(target).open("a", encoding="utf-8") as out:
                out.write(json.dumps(asdict(self), ensure_ascii=False) + "\n")


def count(
    scenario: str,
    outbox: Outbox,
    smtp: SmtpRecorder,
    ids: list[int],
    drain_seconds: float,
    **details: Any,
) -> FaultReport:
    """Compare what was planned with what the SMTP server received, per Message-ID."""
    rows = outbox.rows(ids)
    got = arrivals(smtp)
    should_arrive = {r.message_id for r in rows if r.status != Status.FAILED}
    lost = sum(1 for m in should_arrive if got[m] == 0)
    duplicated = sum(n - 1 for m, n in got.items() if n > 1 and m in should_arrive)
    failed_arrived = sum(got[r.message_id] for r in rows if r.status == Status.FAILED)
    details.setdefault("failed_rows_that_arrived", failed_arrived)
    report = FaultReport(
        scenario=scenario,
        mode=mode(),
        planned=len(rows),
        sent=sum(got[m] for m in should_arrive),
        lost=lost,
        duplicated=duplicated,
        drain_seconds=round(drain_seconds, 1),
        failed=sum(1 for r in rows if r.status == Status.FAILED),
        details=details,
    )
    report.record()
    return report


def all_final(outbox: Outbox, ids: list[int]) -> Callable[[], bool]:
    def check() -> bool:
        counts = outbox.statuses(ids)
        return sum(counts[s] for s in FINAL) == len(ids)

    return check


def start_mailout(outbox: Outbox, smtp: SmtpRecorder, ids: list[int], timeout: float = 60) -> float:
    """Send one row first (the processes are up when it arrives), then make the rest due.

    Returns the monotonic moment the mailout started.
    """
    outbox.make_due(ids[:1])
    wait_until(lambda: len(smtp.received) >= 1, timeout, "the first message (worker and beat up)")
    began = time.monotonic()
    outbox.make_due(ids[1:])
    return began


def drain_timeout(n: int, cluster: Cluster) -> float:
    """Generous: 5 messages a second at the least, plus two leases for what must be swept."""
    return 60 + n / 5 + 2 * cluster.lease


def redis_for(server: RedisProcess) -> str:
    return server.url
