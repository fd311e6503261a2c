"""The national mailout, side by side in one run (issue 11): the wire, a naive design, samverkan.

    .venv/bin/python bench/mailout.py [--messages N] [--reps R] [--workers W] [--profile]

Rows, each a median of R repetitions, all into the same Postfix `smtp-sink`:

- plain loop, prebuilt: one `smtplib` connection, messages built (and serialised) beforehand,
  500 at a time outside the clock; only the sending is timed;
- plain loop, building: the same loop building and serialising each message;
- naive: one Celery task per message (Redis, prefork × 2), each building its message and
  opening a new SMTP connection (bench/_naive_worker.py);
- samverkan: a generated municipality with N rektorer is loaded with `samverkan load`; real
  `samverkan worker` processes and `samverkan beat` run with the production defaults (tick
  every 60 s, at most 2,000 rows per tick); the routine's rows are made due, and the bench
  waits until every row is recorded as sent. The time runs from the tick that claimed the first
  row (its `sent_at`, the tick's moment) to the last row recorded; the wait for that first tick
  is shown separately. Between repetitions the rows are put back to pending (attempt log
  emptied) just before the next tick is expected, so the repetitions do not idle for a minute.

Two kinds: the mailout (the ~200 kB PDF-like attachment, incompressible like a real PDF, to
every rektor) and the small reminder (the same template, no attachment). The worker's peak RSS
(VmHWM) per process is read after the mailout repetitions. `--profile` then runs one more
repetition of each kind with py-spy attached to the worker and its pool (bench/spyprofile.py).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import secrets
import smtplib
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _services
from _common import fmt, table, write_tables

SENDER = "samverkan@bench.example"
ATTACHMENT_BYTES = 200_000
MAILOUT = "utskick"
REMINDER = "paminnelse"
DATABASE = "bench_mailout"
SAMVERKAN = str(Path(sys.executable).parent / "samverkan")
HERE = Path(__file__).resolve().parent
TICK_SECONDS = 60.0  # the production default (samverkan/settings.py); the bench never changes it
BODY = (
    "Hej,\n\nPåminnelse: skolans rutin för samverkan med socialtjänsten ska ses över före "
    "läsårsstart. Rutinen finns i kommunens samverkanskalender.\n\n"
) * 4


def recipient(index: int) -> str:
    return f"rektor-{index:05d}@bench.example"


def build_message(index: int, attachment: bytes | None) -> EmailMessage:
    """The plain loops' message: text and HTML, and the attachment when there is one."""
    message = EmailMessage()
    message["From"] = f"Samverkan Bench <{SENDER}>"
    message["To"] = f"Rektor {index} <{recipient(index)}>"
    message["Subject"] = "Föräldrastöd inför läsårsstarten"
    message["Message-ID"] = f"<bench-{index}@bench.example>"
    message.set_content(BODY)
    message.add_alternative(f"<html><body><p>{BODY}</p></body></html>", subtype="html")
    if attachment is not None:
        message.add_attachment(
            attachment, maintype="application", subtype="pdf", filename="foraldrastod.pdf"
        )
    return message


def make_attachment(path: Path, size: int = ATTACHMENT_BYTES) -> bytes:
    """PDF-like bytes: a PDF header, random (incompressible) content, an EOF marker."""
    data = b"%PDF-1.4\n" + os.urandom(size - 15) + b"\n%%EOF\n"
    path.write_bytes(data)
    return data


# --------------------------------------------------------------------------- plain loops


def plain_prebuilt(port: int, n: int, attachment: bytes | None) -> float:
    """Seconds spent sending `n` prebuilt messages over one connection (building not timed)."""
    spent = 0.0
    with smtplib.SMTP("127.0.0.1", port) as conn:
        for start in range(0, n, 500):
            built = [
                build_message(i, attachment).as_bytes() for i in range(start, min(n, start + 500))
            ]
            began = time.perf_counter()
            for offset, data in enumerate(built):
                conn.sendmail(SENDER, [recipient(start + offset)], data)
            spent += time.perf_counter() - began
    return spent


def plain_building(port: int, n: int, attachment: bytes | None) -> float:
    began = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as conn:
        for i in range(n):
            conn.sendmail(SENDER, [recipient(i)], build_message(i, attachment).as_bytes())
    return time.perf_counter() - began


# --------------------------------------------------------------------------- naive baseline


class Naive:
    """bench/_naive_worker.py: one task per message, a new SMTP connection per message."""

    def __init__(self, broker_url: str, port: int, directory: Path, concurrency: int) -> None:
        import redis
        from celery import Celery

        self.redis = redis.Redis.from_url(broker_url)
        self.app = Celery("naive-publisher", broker=broker_url)
        self.app.conf.update(task_serializer="json", task_default_queue="naive")
        self.directory = directory
        self.env = {
            **os.environ,
            "BENCH_BROKER_URL": broker_url,
            "BENCH_SMTP_PORT": str(port),
            "BENCH_CONCURRENCY": str(concurrency),
        }

    def run(self, n: int, attachment: Path | None) -> float:
        env = dict(self.env)
        if attachment is not None:
            env["BENCH_ATTACHMENT"] = str(attachment)
        log = (self.directory / f"naive-{secrets.token_hex(3)}.log").open("wb")
        worker = subprocess.Popen(
            [sys.executable, str(HERE / "_naive_worker.py")],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        try:
            self.redis.set("bench:naive:done", 0)
            self.app.send_task("naive.send", (0,))  # warm-up: the worker is up and importing
            _wait(lambda: int(self.redis.get("bench:naive:done") or 0) >= 1, 120, "naive warm-up")
            self.redis.set("bench:naive:done", 0)
            began = time.perf_counter()
            with self.app.producer_or_acquire() as producer:
                for i in range(n):
                    self.app.send_task("naive.send", (i,), producer=producer)
            _wait(lambda: int(self.redis.get("bench:naive:done") or 0) >= n, 3600, "naive")
            return time.perf_counter() - began
        finally:
            _services.stop(worker)


def _wait(condition: Callable[[], bool], timeout: float, what: str, pause: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(pause)


# --------------------------------------------------------------------------- samverkan


def write_profile(folder: Path, rektorer: int) -> Path:
    """A municipality with `rektorer` principals, a mailout with the attachment and a reminder."""
    (folder / "material").mkdir(parents=True, exist_ok=True)
    make_attachment(folder / "material" / "foraldrastod.pdf")
    schools = max(1, rektorer // 10)
    lines = [
        "municipality:",
        "  key: benchby",
        "  name: Benchby kommun",
        "  sender: {name: Samverkan Benchby, email: samverkan@benchby.se}",
        '  send_time: "08:00"',
        "units:",
        *(f"  - {{key: skola-{i:04d}, name: Skola {i}, kind: grundskola}}" for i in range(schools)),
        "  - {key: forvaltning, name: Förvaltningen, kind: forvaltning}",
        "school_years:",
        "  rule: {start: {month: 8, day: 19}, end: {month: 6, day: 11}}",
        "people:",
        "  - {key: chef, name: Elsa Chef, email: chef@benchby.se, roles: [{role: elevhalsochef}]}",
        "  - {key: samordnare, name: Sam Ordnare, email: samordnare@benchby.se,"
        " roles: [{role: samordnare, unit: forvaltning}]}",
        *(
            f"  - {{key: rektor-{i:05d}, name: Rektor {i}, email: rektor-{i:05d}@benchby.se, "
            f"roles: [{{role: rektor, unit: skola-{i % schools:04d}}}]}}"
            for i in range(rektorer)
        ),
        "routines:",
    ]
    routines = ((MAILOUT, "mailout", 9, True), (REMINDER, "reminder", 10, False))
    for key, kind, month, attach in routines:
        lines += [
            f"  - key: {key}",
            f"    name: Bench {key}",
            f"    kind: {kind}",
            f"    when: {{date: {{month: {month}, day: 15}}}}",
            "    owners: [elevhalsochef]",
            *(["    attachments: [material/foraldrastod.pdf]"] if attach else []),
            "    messages:",
            f"      - purpose: {key}",
            "        to: [rektor]",
            "        template: styrning-paminnelse",
            "        before: {days: 0}",
        ]
    path = folder / "benchby.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@dataclass
class ServiceRun:
    seconds: float  # first claim → last row recorded
    waited: float  # rows made due → the first tick's claim
    ticks: int
    statuses: dict[str, int] = field(default_factory=dict)


class Service:
    """samverkan worker(s) and beat with the production defaults, on a database of its own."""

    def __init__(
        self,
        directory: Path,
        broker_url: str,
        port: int,
        workers: int,
        tick_batch: int = 0,
        code: Path | None = None,
        concurrency: int = 2,
    ) -> None:
        from models.db import make_engine, make_sessionmaker

        _services.drop_database(DATABASE)
        self.url = _services.database(DATABASE)
        self.directory = directory
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SAMVERKAN_")}
        self.env.update(
            SAMVERKAN_DATABASE_URL=self.url,
            SAMVERKAN_BROKER_URL=broker_url,
            SAMVERKAN_SMTP_URL=f"smtp://127.0.0.1:{port}",
            SAMVERKAN_VAR_DIR=str(directory / "var"),
            SAMVERKAN_LOG_LEVEL="WARNING",
            **({"SAMVERKAN_TICK_BATCH": str(tick_batch)} if tick_batch else {}),
        )
        if code is not None:  # another checkout's code (--baseline): found before this one's
            self.env["PYTHONPATH"] = str(code)
        self.workers_wanted = workers
        self.concurrency = concurrency
        self.processes: list[subprocess.Popen[bytes]] = []
        self.workers: list[subprocess.Popen[bytes]] = []
        self.engine = make_engine(self.url)
        self.sessions = make_sessionmaker(self.engine)
        self.next_tick: float | None = None  # epoch seconds of the next expected tick

    def command(self, *args: str) -> str:
        done = subprocess.run(
            [SAMVERKAN, *args], env=self.env, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"samverkan {args[0]} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout.strip()

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        log = (self.directory / f"{len(self.processes):02d}-{args[0]}.log").open("wb")
        process = subprocess.Popen(
            [SAMVERKAN, *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.processes.append(process)
        return process

    def up(self) -> None:
        for _ in range(self.workers_wanted):
            self.workers.append(self.start("worker", "--concurrency", str(self.concurrency)))
        self.start("beat")

    def down(self) -> None:
        for process in self.processes:
            _services.stop(process)
        self.engine.dispose()
        if not os.environ.get("BENCH_KEEP"):
            _services.drop_database(DATABASE)

    def rss(self) -> list[float]:
        """Peak RSS (MB) of each worker process: the master and its pool."""
        found = []
        for worker in self.workers:
            for pid in [worker.pid, *_services.children(worker.pid)]:
                value = _services.peak_rss_mb(pid)
                if value is not None:
                    found.append(value)
        return found

    def pool_pids(self) -> list[int]:
        return [pid for w in self.workers for pid in _services.children(w.pid)]

    def count(self, routine: str) -> dict[str, int]:
        from sqlalchemy import func, select

        import models

        n = models.Notification
        with self.sessions() as session:
            rows = session.execute(
                select(n.status, func.count()).where(n.routine_key == routine).group_by(n.status)
            )
            return {str(status): int(count) for status, count in rows}

    def make_due(self, routine: str) -> int:
        """Every row of `routine` back to pending and due now, its attempt log emptied."""
        from sqlalchemy import delete, select, update

        import models

        n = models.Notification
        now = dt.datetime.now(dt.UTC)
        with self.sessions() as session, session.begin():
            ids = select(n.id).where(n.routine_key == routine).scalar_subquery()
            session.execute(
                delete(models.DeliveryAttempt).where(
                    models.DeliveryAttempt.notification_id.in_(ids)
                )
            )
            result = session.execute(
                update(n)
                .where(n.routine_key == routine)
                .values(
                    status="pending", attempts=0, last_error=None, smtp_reply=None,
                    claimed_at=None, sent_at=None, cancel_reason=None, due_at=now, updated_at=now,
                )
            )  # fmt: skip
            return int(result.rowcount)  # type: ignore[attr-defined]

    def first_and_ticks(self, routine: str) -> tuple[float, int]:
        from sqlalchemy import func, select

        import models

        n = models.Notification
        with self.sessions() as session:
            first = session.scalar(select(func.min(n.sent_at)).where(n.routine_key == routine))
            ticks = session.scalar(
                select(func.count(func.distinct(n.sent_at))).where(n.routine_key == routine)
            )
        assert first is not None
        return first.timestamp(), int(ticks or 0)

    def before_next_tick(self) -> None:
        """Sleep until 3 s before the next expected tick (instead of idling up to 60 s)."""
        if self.next_tick is not None:
            while self.next_tick < time.time() + 3:
                self.next_tick += TICK_SECONDS
            time.sleep(max(0.0, self.next_tick - time.time() - 3))

    def run(self, routine: str, total: int) -> ServiceRun:
        self.before_next_tick()
        made = self.make_due(routine)
        assert made == total, f"{made} rows of {routine}, expected {total}"
        due_at = time.time()
        final = ("sent", "failed", "cancelled")
        counts: dict[str, int] = {}
        deadline = time.monotonic() + 3 * 3600
        while sum(counts.get(s, 0) for s in final) < total:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{routine}: not done after 3 hours: {counts}")
            time.sleep(0.2)
            counts = self.count(routine)
        ended = time.time()
        first, ticks = self.first_and_ticks(routine)
        self.next_tick = first + TICK_SECONDS * (1 + (ended - first) // TICK_SECONDS)
        return ServiceRun(ended - first, first - due_at, ticks, counts)


# --------------------------------------------------------------------------- the run


@dataclass
class Row:
    name: str
    kind: str
    seconds: list[float] = field(default_factory=list)
    notes: str = ""

    def rate(self, n: int) -> float | None:
        return n / statistics.median(self.seconds) if self.seconds else None


def _median_note(runs: list[ServiceRun]) -> str:
    waited = statistics.median(r.waited for r in runs)
    ticks = statistics.median(r.ticks for r in runs)
    bad = [r.statuses for r in runs if set(r.statuses) - {"sent"}]
    note = f"wait for first tick {waited:.0f} s; {ticks:.0f} tick(s)"
    return note + (f"; NOT ALL SENT: {bad}" if bad else "")


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1, help="samverkan workers")
    parser.add_argument(
        "--concurrency", type=int, default=2, help="pool processes per samverkan worker"
    )
    parser.add_argument("--profile", action="store_true", help="py-spy the worker afterwards")
    parser.add_argument("--skip-service", action="store_true")
    parser.add_argument(
        "--service-only", action="store_true", help="leave out the plain loops and naive design"
    )
    parser.add_argument(
        "--tick-batch",
        type=int,
        default=0,
        help="SAMVERKAN_TICK_BATCH for the service (default: the production 2,000); a smaller "
        "batch shows at a small size how the tick paces a mailout larger than one batch",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="a checkout of an earlier commit: its service runs too, in the same run, after "
        "this one's (before and after side by side)",
    )
    args = parser.parse_args(argv)
    n, reps = args.messages, args.reps
    shape = f"{args.workers} worker × {args.concurrency} processes"
    keep = bool(os.environ.get("BENCH_KEEP"))
    directory = Path(tempfile.mkdtemp(prefix="bench-mailout-"))
    print(f"mailout bench: {n:,} messages × {reps} reps; logs in {directory}", flush=True)
    attachment_path = directory / "foraldrastod.pdf"
    attachment = make_attachment(attachment_path)
    size_kb = len(build_message(0, attachment).as_bytes()) / 1000
    small_kb = len(build_message(0, None).as_bytes()) / 1000
    redis_server = _services.RedisServer(directory)
    rows: list[Row] = []
    rss: list[float] = []
    profiles: list[str] = []
    try:
        with _services.smtp_sink(directory / "smtp-sink.log") as port:
            kinds = ((MAILOUT, attachment, attachment_path), (REMINDER, None, None))
            naive = Naive(redis_server.url(1), port, directory, concurrency=2)
            for kind, data, path in () if args.service_only else kinds:
                prebuilt = Row("plain loop, prebuilt", kind)
                building = Row("plain loop, building each", kind)
                naive_row = Row("naive: task + connection per message", kind, notes="prefork × 2")
                for rep in range(reps):
                    prebuilt.seconds.append(plain_prebuilt(port, n, data))
                    building.seconds.append(plain_building(port, n, data))
                    naive_row.seconds.append(naive.run(n, path))
                    print(f"  {kind} rep {rep + 1}: plain and naive done", flush=True)
                rows += [prebuilt, building, naive_row]
            if not args.skip_service:
                service = Service(
                    directory, redis_server.url(0), port, args.workers, args.tick_batch,
                    concurrency=args.concurrency,
                )  # fmt: skip
                try:
                    rows += _service_rows(service, directory, n, reps, shape, rss)
                    if args.profile:
                        profiles = _profile(service, directory, n)
                finally:
                    service.down()
            if args.baseline is not None and not args.skip_service:
                label = _commit_of(args.baseline)
                baseline = Service(
                    directory, redis_server.url(2), port, args.workers, args.tick_batch,
                    code=args.baseline, concurrency=args.concurrency,
                )  # fmt: skip
                try:
                    before = _service_rows(baseline, directory, n, reps, shape, [])
                finally:
                    baseline.down()
                for row in before:
                    row.name = f"samverkan at {label} (production tick)"
                rows += before
    finally:
        redis_server.stop()
    out = _report(rows, n, reps, size_kb, small_kb, rss, shape)
    out += "".join(profiles)
    print(out, flush=True)
    if not keep:
        import shutil

        shutil.rmtree(directory, ignore_errors=True)
    return out


def _commit_of(checkout: Path) -> str:
    done = subprocess.run(
        ["git", "-C", str(checkout), "log", "-1", "--format=%h"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return done.stdout.strip() or checkout.name


def _service_rows(
    service: Service, directory: Path, n: int, reps: int, shape: str, rss: list[float]
) -> list[Row]:
    profile = write_profile(directory / "profile", n)
    began = time.perf_counter()
    service.command("migrate")
    loaded = service.command("load", str(profile))
    print(f"  loaded in {time.perf_counter() - began:.0f} s: {loaded}", flush=True)
    service.up()
    rows = []
    for kind in (MAILOUT, REMINDER):
        row = Row("samverkan (production tick)", kind)
        runs = []
        for rep in range(reps):
            run = service.run(kind, n)
            runs.append(run)
            row.seconds.append(run.seconds)
            print(
                f"  {kind} rep {rep + 1}: samverkan {run.seconds:.1f} s "
                f"(+{run.waited:.0f} s to the first tick) {run.statuses}",
                flush=True,
            )
        row.notes = f"{shape}; " + _median_note(runs)
        rows.append(row)
        if kind == MAILOUT:
            rss += service.rss()
    return rows


def _profile(service: Service, directory: Path, n: int) -> list[str]:
    import spyprofile

    parts = []
    for kind in (MAILOUT, REMINDER):
        service.before_next_tick()
        if service.next_tick is not None:
            service.next_tick -= 2  # py-spy takes 2 s to attach: make the rows due earlier
        with spyprofile.Recording(service.workers[0].pid, directory / f"spy-{kind}.txt") as rec:
            run = service.run(kind, n)
        parts.append(
            spyprofile.report(
                rec.output, service.pool_pids(), n, f"{kind}, {n:,} messages", run.seconds
            )
        )
    return parts


def _report(
    rows: list[Row],
    n: int,
    reps: int,
    size_kb: float,
    small_kb: float,
    rss: list[float],
    shape: str,
) -> str:
    out = [
        f"### Mailout: {n:,} messages, medians of {reps}\n",
        f"Mailout message {size_kb:,.0f} kB on the wire (a {ATTACHMENT_BYTES // 1000} kB "
        f"attachment); small reminder {small_kb:,.1f} kB. Sink: Postfix smtp-sink.\n",
    ]
    for kind in (MAILOUT, REMINDER):
        mine = [r for r in rows if r.kind == kind]
        base = next((r.rate(n) for r in mine if r.name.startswith("plain loop, prebuilt")), None)
        body = []
        for r in mine:
            rate = r.rate(n)
            spread = ", ".join(f"{n / s:,.0f}" for s in r.seconds)
            ratio = f"{rate / base:.3f}" if rate and base else "—"
            body.append([r.name, fmt(rate, 0), ratio, spread, r.notes])
        title = "mailout (attachment)" if kind == MAILOUT else "small reminders"
        out.append(f"\n**{title}**\n")
        out.append(table(["what", "msg/s", "÷ plain prebuilt", "each run", "notes"], body))
        out.append("\n")
    if rss:
        out.append(
            f"\nWorker peak RSS after the mailout ({shape}; master "
            f"first, then pool): {', '.join(f'{x:.0f}' for x in rss)} MB\n"
        )
    return "\n".join(out)


if __name__ == "__main__":
    write_tables(main)
