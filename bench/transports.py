"""Which Celery broker transport for the embedded (no server) mode? Run: python bench/transports.py

Each candidate gets real Celery workers, started as SUBPROCESSES (bench/_transport_worker.py:
a minimal app with one no-op task, threads pool, concurrency 2, the project's acks_late /
prefetch-1 settings). The bench process publishes; every task reports to an AF_UNIX datagram
socket the bench listens on, so completions are counted (and timed) in this process.

Per candidate (`python bench/transports.py redis` runs only the names containing "redis"):
  throughput   publish N=500 tasks, time from the first publish to the last completion;
  latency      one task at a time, published at a random moment of the worker's polling
               cycle (as a tick is), publish → completion report; median of 50;
               both repeated 5 times with the same worker; tables show medians of the 5;
  two workers  two worker processes on the same queue, 500 tasks, twice: every task must run
               exactly once; worker deaths and error lines in the workers' logs are counted;
  kill -9      a worker is killed while running 2 tasks (4 published): how many of the 4 ever
               complete once a fresh worker is started (acks_late promises all 4).
Then, without Celery: one publisher and two consumer processes race on a filesystem queue
(RACE_MESSAGES messages), for kombu's transport and for the bench's atomic-publish subclass.
A worker that dies is noted (with its last CRITICAL/ERROR line) and restarted. Every phase has
a deadline and each candidate a time budget, so the bench always finishes.
"""

# ruff: noqa: E402  (imports follow the sys.path set-up, so each script runs alone)

from __future__ import annotations

import contextlib
import itertools
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import fmt, median, ratio, table, write_tables
from _transport_worker import QUEUE, make_app

N_TASKS = 500
REPEATS = 5
LATENCY_SAMPLES = 50
TWO_WORKER_REPEATS = 2
TAGS = itertools.count()  # tags are unique across candidates (one listener serves all)
REDIS_URL = "redis://127.0.0.1:6379/15"
CANDIDATE_BUDGET = 150.0  # seconds; later phases are skipped (and noted) beyond it


# --------------------------------------------------------------------------- listening


class Listener:
    """Collects the workers' reports: 'done TAG PID' and 'start TAG PID' datagrams."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.cond = threading.Condition()
        self.done: dict[str, list[tuple[int, float]]] = defaultdict(list)
        self.started: dict[str, list[int]] = defaultdict(list)
        self.last_report = time.monotonic()
        self._stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._stop:
            try:
                data = self.sock.recv(512)
            except TimeoutError:
                continue
            except OSError:
                return
            now = time.perf_counter()
            kind, tag, pid = data.decode().split()
            with self.cond:
                self.last_report = time.monotonic()
                if kind == "done":
                    self.done[tag].append((int(pid), now))
                else:
                    self.started[tag].append(int(pid))
                self.cond.notify_all()

    def wait(
        self, predicate: Callable[[], bool], deadline: float, stall: float | None = None
    ) -> bool:
        """Until `predicate()`; False at `deadline` or after `stall` s without any report."""
        with self.cond:
            while not predicate():
                now = time.monotonic()
                if now >= deadline or (stall is not None and now - self.last_report > stall):
                    return False
                self.cond.wait(min(deadline - now, 0.2))
            return True

    def count_done(self, tags: Iterable[str]) -> int:
        return sum(1 for t in tags if t in self.done)

    def close(self) -> None:
        self._stop = True
        self.sock.close()
        self.thread.join(2)


# --------------------------------------------------------------------------- candidates


@dataclass
class Candidate:
    name: str
    url: str
    options: dict[str, Any]
    poll: float  # the worker's polling interval (virtual transports); spaces latency samples
    env: dict[str, str] = field(default_factory=dict)
    latency_samples: int = LATENCY_SAMPLES
    phases: tuple[str, ...] = ("burst", "latency", "two", "kill")
    kill_wait: float = 5.0  # how long to wait for redelivery after kill -9
    notes: list[str] = field(default_factory=list)


def filesystem_options(folder: Path) -> dict[str, Any]:
    for sub in ("queue", "processed", "control"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    return {  # exactly worker.app.broker_options, plus control_folder (see README)
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "processed_folder": str(folder / "processed"),
        "store_processed": False,
        "polling_interval": 0.05,
        "control_folder": str(folder / "control"),
    }


def candidates(tmp: Path, other_fs_tmp: Path | None) -> list[Candidate]:
    found = [
        Candidate(
            "filesystem (poll 0.05 s)",
            "filesystem://localhost/",
            filesystem_options(tmp / "fs"),
            0.05,
        )
    ]
    found.append(
        Candidate(
            "filesystem + atomic publish (ours)",
            "fsatomic://localhost/",
            filesystem_options(tmp / "fsa"),
            0.05,
            notes=["worker.fstransport.Transport: write, then rename into place"],
        )
    )
    if other_fs_tmp is not None:
        # store_processed=False moves each message file to tempfile.gettempdir() before reading
        # it: with TMPDIR on another filesystem that move is copy + delete, not a rename.
        found.append(
            Candidate(
                "filesystem, TMPDIR on tmpfs",
                "filesystem://localhost/",
                filesystem_options(tmp / "fs2"),
                0.05,
                env={"TMPDIR": str(other_fs_tmp)},
                phases=("two",),
            )
        )
    found += [
        Candidate(
            "sqla+sqlite (default poll 1 s)",
            f"sqla+sqlite:///{tmp / 'sqla-default.sqlite'}",
            {},
            1.0,
            latency_samples=4,
            phases=("latency",),
            notes=["latency only (4 per repetition); throughput as the patched row"],
        ),
        Candidate(
            "sqla+sqlite (poll 0.05 s, patched)",
            f"sqla+sqlite:///{tmp / 'sqla.sqlite'}",
            {},
            0.05,
            env={"BENCH_POLLING_INTERVAL": "0.05"},
        ),
        # Short visibility timeout and restore sweep (the project: 3600 s and kombu's default
        # sweep of ~100 s) so that the kill -9 phase can see a redelivery at all.
        Candidate(
            "redis (reference)",
            REDIS_URL,
            {"visibility_timeout": 5, "unacked_restore_interval": 1, "unacked_restore_throttle": 1},
            0.05,
            kill_wait=15.0,
        ),
    ]
    return found


# --------------------------------------------------------------------------- workers


class Workers:
    """Worker subprocesses of one candidate, each logging to its own file."""

    def __init__(self, cand: Candidate, tmp: Path, listener: Listener) -> None:
        self.cand, self.tmp, self.listener = cand, tmp, listener
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, Path] = {}

    def start(self, name: str) -> None:
        env = dict(os.environ)
        env.update(self.cand.env)
        env["BENCH_BROKER_URL"] = self.cand.url
        env["BENCH_TRANSPORT_OPTIONS"] = json.dumps(self.cand.options)
        env["BENCH_SOCKET"] = self.listener.path
        log = self.tmp / f"{self.cand.name.split()[0]}-{name}-{next(TAGS)}.log"
        self.logs[name] = log
        with log.open("ab") as handle:
            self.procs[name] = subprocess.Popen(
                [sys.executable, str(HERE / "_transport_worker.py"), name],
                stdout=handle,
                stderr=subprocess.STDOUT,
                cwd=self.tmp,
                env=env,
            )

    def stop(self, name: str, kill: bool = False) -> None:
        proc = self.procs.pop(name)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)

    def dead(self) -> list[str]:
        return [name for name, proc in self.procs.items() if proc.poll() is not None]

    def live_pids(self) -> set[int]:
        return {p.pid for p in self.procs.values() if p.poll() is None}

    def why(self, name: str) -> str:
        """The worker's last CRITICAL/ERROR line, or the tail of its log."""
        lines = self.logs[name].read_text(errors="replace").strip().splitlines()
        for line in reversed(lines):
            if "CRITICAL" in line or "ERROR" in line:
                return line.split("]", 1)[-1].strip()[:200]
        return " / ".join(t.strip()[:120] for t in lines[-2:]) or "(empty log)"

    def error_lines(self) -> int:
        words = ("Traceback", "ERROR", "CRITICAL", "locked")
        count = 0
        for log in self.logs.values():
            if log.exists():
                text = log.read_text(errors="replace")
                count += sum(1 for ln in text.splitlines() if any(w in ln for w in words))
        return count


# --------------------------------------------------------------------------- phases


@dataclass
class Result:
    name: str
    throughput: list[float] = field(default_factory=list)
    publish_rate: list[float] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)  # one median per repetition
    latency_n: int = 0
    crashes: list[str] = field(default_factory=list)  # "phase: why"
    lost: int = 0
    two_throughput: list[float] = field(default_factory=list)
    two_summary: str = "—"
    kill_summary: str = "—"
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    phases: tuple[str, ...] = ()


class Run:
    """All phases of one candidate."""

    def __init__(self, cand: Candidate, tmp: Path, listener: Listener) -> None:
        self.cand, self.listener = cand, listener
        self.workers = Workers(cand, tmp, listener)
        self.app = make_app(cand.url, cand.options)
        self.result = Result(cand.name, notes=list(cand.notes), phases=cand.phases)
        self.started = time.monotonic()

    def over_budget(self) -> bool:
        return time.monotonic() - self.started > CANDIDATE_BUDGET

    def send(self, tag: str, sleep: float = 0.0) -> None:
        self.app.send_task("bench.noop", args=(tag, sleep), queue=QUEUE)

    def tag(self, prefix: str) -> str:
        return f"{prefix}-{next(TAGS)}"

    def purge(self) -> None:
        with self.app.connection_for_write() as conn:
            conn.default_channel.queue_purge(QUEUE)

    def warm_up(self, pids_wanted: int, timeout: float = 40.0) -> None:
        """Publish until `pids_wanted` distinct live workers have run a task."""
        deadline = time.monotonic() + timeout
        seen: set[int] = set()
        while time.monotonic() < deadline:
            tags = [self.tag("warm") for _ in range(4)]
            for t in tags:
                self.send(t)
            self.listener.wait(
                lambda ts=tags: self.listener.count_done(ts) == len(ts),
                min(deadline, time.monotonic() + 2.0),
            )
            for t in tags:
                seen.update(pid for pid, _ in self.listener.done.get(t, []))
            if len(seen & self.workers.live_pids()) >= pids_wanted:
                return
            for name in self.workers.dead():  # died while warming up: note, restart
                self.result.crashes.append(f"warm-up: {self.workers.why(name)}")
                self.workers.stop(name)
                self.workers.start(name)
        raise RuntimeError(f"workers did not run tasks within {timeout:.0f} s")

    def revive(self, phase: str) -> bool:
        """Note and restart workers that died; True if any had."""
        dead = self.workers.dead()
        for name in dead:
            self.result.crashes.append(f"{phase}: {self.workers.why(name)}")
            self.workers.stop(name)
        if dead:
            self.purge()
            for name in dead:
                self.workers.start(name)
            self.warm_up(len(self.workers.procs))
        return bool(dead)

    def burst(self, prefix: str) -> tuple[float | None, float, list[str]]:
        """Publish N tasks: (seconds to the last completion or None, seconds to publish, tags).

        Waits at most 60 s, and gives up after 4 s without any completion (a dead worker)."""
        tags = [self.tag(prefix) for _ in range(N_TASKS)]
        t0 = time.perf_counter()
        for t in tags:
            self.send(t)
        published = time.perf_counter() - t0
        ok = self.listener.wait(
            lambda: self.listener.count_done(tags) == len(tags), time.monotonic() + 60, stall=4
        )
        last = max((v[0][1] for t in tags if (v := self.listener.done.get(t))), default=t0)
        return (last - t0 if ok else None), published, tags

    def single(self) -> float | None:
        tag = self.tag("lat")
        t0 = time.perf_counter()
        self.send(tag)
        timeout = max(3.0, 4 * self.cand.poll)
        if not self.listener.wait(lambda: tag in self.listener.done, time.monotonic() + timeout):
            return None
        return (self.listener.done[tag][0][1] - t0) * 1000

    def one_burst(self, rep: int) -> None:
        elapsed, published, tags = self.burst("thr")
        if elapsed is None:
            self.result.lost += N_TASKS - self.listener.count_done(tags)
            if not self.revive(f"1 worker, burst {rep + 1}"):
                self.result.notes.append(f"burst {rep + 1}: stalled, worker alive")
            return
        self.result.throughput.append(N_TASKS / elapsed)
        self.result.publish_rate.append(N_TASKS / published)

    def latencies(self, rep: int) -> None:
        samples: list[float] = []
        for _ in range(self.cand.latency_samples):
            # A tick arrives at a random moment of the worker's polling cycle.
            time.sleep(random.uniform(0, self.cand.poll))
            ms = self.single()
            if ms is not None:
                samples.append(ms)
                continue
            self.result.lost += 1
            if not self.revive(f"1 worker, latency {rep + 1}"):
                self.result.notes.append("a single task did not complete in time")
                break
        if samples:
            self.result.latency_ms.append(statistics.median(samples))
            self.result.latency_n += len(samples)

    def speed(self) -> None:
        """Bursts and single-task latencies, alternating, REPEATS times, one worker."""
        self.workers.start("w1")
        self.warm_up(1)
        for rep in range(REPEATS):
            if self.over_budget():
                self.result.notes.append(f"time budget: stopped after {rep} repetitions")
                break
            if "burst" in self.cand.phases:
                self.one_burst(rep)
            if "latency" in self.cand.phases:
                self.latencies(rep)
        self.workers.stop_all()

    def two_workers(self) -> None:
        errors_before = self.workers.error_lines()
        crashes_before = len(self.result.crashes)
        self.workers.start("w2a")
        self.workers.start("w2b")
        self.warm_up(2)
        lost = dup = 0
        for _ in range(TWO_WORKER_REPEATS):
            if self.over_budget():
                self.result.notes.append("time budget: two-worker phase cut short")
                break
            elapsed, _, tags = self.burst("two")
            time.sleep(0.5)  # let late duplicates arrive
            lost += N_TASKS - self.listener.count_done(tags)
            dup += sum(len(self.listener.done[t]) - 1 for t in tags if t in self.listener.done)
            if elapsed is not None:
                self.result.two_throughput.append(N_TASKS / elapsed)
            self.revive("2 workers")
        self.workers.stop_all()
        self.result.lost += lost
        self.result.two_summary = (
            f"lost {lost}, ran twice {dup}, worker deaths "
            f"{len(self.result.crashes) - crashes_before}, "
            f"error lines {self.workers.error_lines() - errors_before}"
        )

    def kill_nine(self) -> None:
        self.workers.start("wk")
        self.warm_up(1)
        tags = [self.tag("kill") for _ in range(4)]
        for t in tags:
            self.send(t, sleep=1.5)
        running = self.listener.wait(
            lambda: sum(1 for t in tags if t in self.listener.started) >= 2,
            time.monotonic() + 10,
        )
        in_flight = [t for t in tags if t in self.listener.started and t not in self.listener.done]
        self.workers.stop("wk", kill=True)
        if not running:
            self.result.kill_summary = "2 tasks never started"
            return
        self.workers.start("wk2")
        self.listener.wait(
            lambda: self.listener.count_done(tags) == len(tags),
            time.monotonic() + self.cand.kill_wait,
        )
        self.workers.stop_all()
        redone = sum(1 for t in in_flight if t in self.listener.done)
        self.result.kill_summary = (
            f"{self.listener.count_done(tags)}/4 ran; the {len(in_flight)} in flight: "
            f"{redone} redelivered within {self.cand.kill_wait:.0f} s"
        )

    def execute(self) -> Result:
        try:
            if {"burst", "latency"} & set(self.cand.phases):
                self.speed()
            if "two" in self.cand.phases and not self.over_budget():
                self.two_workers()
            if "kill" in self.cand.phases and not self.over_budget():
                self.kill_nine()
        except Exception as exc:  # a failing transport is a result
            self.result.notes.append(f"FAILED: {type(exc).__name__}: {exc}"[:400])
        finally:
            self.workers.stop_all()
            self.app.close()
            self.result.seconds = time.monotonic() - self.started
        return self.result


# --------------------------------------------------------------------------- main


def flush_redis() -> str | None:
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).flushdb()
        return None
    except Exception as exc:
        return f"redis unreachable: {exc}"


def probe_sqla_polling_option(tmp: Path) -> str:
    """Does kombu's SQLAlchemy transport accept polling_interval as a transport option?"""
    code = (
        "from kombu import Connection\n"
        f"c = Connection('sqla+sqlite:///{tmp / 'probe.sqlite'}',"
        " transport_options={'polling_interval': 0.05})\n"
        "q = c.SimpleQueue('q'); q.put(1); print(q.get(timeout=2).payload)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp
    )
    if proc.returncode == 0:
        return "sqla transport accepts polling_interval in transport options"
    last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "?"
    return f"sqla + transport option polling_interval=0.05 fails: {last}"


# --------------------------------------------------------------------------- race stress

RACE_MESSAGES = 4000


def _race_publish(url: str, options: dict[str, Any], n: int) -> None:
    import _transport_worker  # noqa: F401  (registers fsatomic:// in a spawned process)
    from kombu import Connection

    with Connection(url, transport_options=options) as conn:
        queue = conn.SimpleQueue("race")
        for i in range(n):
            queue.put(i)


def _race_consume(url: str, options: dict[str, Any], done: Any, out: Any) -> None:
    import _transport_worker  # noqa: F401
    from kombu import Connection

    seen: list[int] = []
    errors = 0
    idle_since = None
    with Connection(url, transport_options=options) as conn:
        queue = conn.SimpleQueue("race")
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            try:
                message = queue.get(block=False)
            except queue.Empty:
                idle_since = idle_since or time.monotonic()
                if done.is_set() and time.monotonic() - idle_since > 1.0:
                    break
                time.sleep(0.002)
                continue
            except ValueError:  # JSONDecodeError: an empty (still being written) message file
                errors += 1
                continue
            idle_since = None
            message.ack()
            seen.append(int(message.payload))
    out.put((seen, errors))


def race_stress(url: str, options: dict[str, Any]) -> dict[str, int]:
    """One publisher and two consumer processes on one queue, kombu only (no Celery)."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    done, out = ctx.Event(), ctx.Queue()
    consumers = [ctx.Process(target=_race_consume, args=(url, options, done, out)) for _ in "ab"]
    for proc in consumers:
        proc.start()
    publisher = ctx.Process(target=_race_publish, args=(url, options, RACE_MESSAGES))
    publisher.start()
    publisher.join(60)
    done.set()
    seen: list[int] = []
    errors = 0
    for _ in consumers:
        got, errs = out.get(timeout=60)
        seen += got
        errors += errs
    for proc in consumers:
        proc.join(10)
    return {
        "consumed": len(seen),
        "decode errors": errors,
        "lost": RACE_MESSAGES - len(set(seen)),
        "twice": len(seen) - len(set(seen)),
    }


def race_table(tmp: Path) -> str:
    rows = []
    for name, url, folder in (
        ("filesystem (kombu)", "filesystem://localhost/", "race-fs"),
        ("filesystem + atomic publish (ours)", "fsatomic://localhost/", "race-fsa"),
    ):
        print(f"  race stress: {name} …", file=sys.stderr, flush=True)
        try:
            r = race_stress(url, filesystem_options(tmp / folder))
        except Exception as exc:
            rows.append([name, str(RACE_MESSAGES), f"FAILED: {exc}"[:80], "", "", ""])
            continue
        rows.append(
            [name, f"{RACE_MESSAGES}"]
            + [str(r[k]) for k in ("consumed", "decode errors", "lost", "twice")]
        )
    return (
        "### Filesystem publish/consume race: kombu only, 1 publisher + 2 consumer processes\n\n"
        + table(
            [
                "transport",
                "published",
                "consumed",
                "decode errors (each kills a Celery worker)",
                "lost",
                "run twice",
            ],
            rows,
        )
        + "\n"
    )


def other_filesystem_tmp(tmp: Path) -> Path | None:
    """A scratch folder on a different filesystem than `tmp` (tmpfs /dev/shm), if any."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and shm.stat().st_dev != tmp.stat().st_dev:
        return Path(tempfile.mkdtemp(prefix="bt-", dir=shm))
    return None


def after_run(cand: Candidate, result: Result) -> None:
    """Leftovers the transport keeps: consumed rows (sqla), stray files in TMPDIR."""
    if cand.url.startswith("sqla+sqlite:///"):
        path = cand.url.removeprefix("sqla+sqlite:///")
        with contextlib.closing(sqlite3.connect(path)) as db:
            kept = db.execute("SELECT count(*) FROM kombu_message WHERE NOT visible").fetchone()
        result.notes.append(f"{kept[0]} consumed messages still in kombu_message")
    if "TMPDIR" in cand.env:
        stray = len(os.listdir(cand.env["TMPDIR"]))
        if stray:
            result.notes.append(f"stray message copies left in TMPDIR: {stray}")


def measure(only: str = "") -> tuple[list[Result], list[str], str]:
    tmp = Path(tempfile.mkdtemp(prefix="bt-", dir="/tmp"))
    other = other_filesystem_tmp(tmp)
    listener = Listener(tmp / "s")
    results: list[Result] = []
    extra = [probe_sqla_polling_option(tmp)]
    try:
        for cand in candidates(tmp, other):
            if only not in cand.name:
                continue
            print(f"  transport: {cand.name} …", file=sys.stderr, flush=True)
            if cand.url.startswith("redis") and (problem := flush_redis()):
                results.append(Result(cand.name, notes=[problem]))
                continue
            if cand.url.startswith("filesystem") and "TMPDIR" not in cand.env:
                (tmp / "t").mkdir(exist_ok=True)  # same filesystem; keeps /tmp clean
                cand.env["TMPDIR"] = str(tmp / "t")
            results.append(Run(cand, tmp, listener).execute())
            after_run(cand, results[-1])
            print(f"    {results[-1].seconds:.0f} s", file=sys.stderr, flush=True)
        race = race_table(tmp) if only in "filesystem race" else ""
    finally:
        listener.close()
        if os.environ.get("BENCH_KEEP"):
            print(f"  kept {tmp} {other or ''}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
            if other is not None:
                shutil.rmtree(other, ignore_errors=True)
    return results, extra, race


def samples(r: Result) -> str:
    parts = []
    if "burst" in r.phases:
        parts.append(f"{len(r.throughput)}/{REPEATS} bursts ok")
    if "latency" in r.phases:
        parts.append(f"{r.latency_n} latencies")
    return ", ".join(parts) or "not run (robustness row)"


def render(results: list[Result], extra: list[str]) -> str:
    best = max((m for r in results if (m := median(r.throughput))), default=None)
    best_lat = min((m for r in results if (m := median(r.latency_ms))), default=None)
    rows = []
    for r in results:
        thr, lat = median(r.throughput), median(r.latency_ms)
        rows.append(
            [
                r.name,
                fmt(thr),
                ratio(thr, best),
                fmt(median(r.publish_rate), 0),
                fmt(lat),
                ratio(lat, best_lat),
                samples(r),
                str(len(r.crashes)),
                str(r.lost),
                "; ".join(r.notes) or "—",
            ]
        )
    speed = table(
        [
            "transport",
            "throughput (tasks/s)",
            "vs fastest",
            "publish (msg/s)",
            "latency (ms)",
            "vs fastest",
            "samples",
            "worker deaths (all phases)",
            "tasks lost (all phases)",
            "notes",
        ],
        rows,
    )
    robust = table(
        ["transport", "2 workers: tasks/s", "2 workers: all bursts", "kill -9 with 2 in flight"],
        [[r.name, fmt(median(r.two_throughput)), r.two_summary, r.kill_summary] for r in results],
    )
    deaths = []
    for r in results:
        for why, n in Counter(c.split(": ", 1)[1] for c in r.crashes).items():
            deaths.append(f"- {r.name}: worker died {n}× — {why}")
    timing = ", ".join(f"{r.name} {r.seconds:.0f} s" for r in results)
    return (
        f"### Transports: one worker process (threads, concurrency 2), bursts of {N_TASKS}, "
        f"medians of {REPEATS} repetitions\n\n{speed}\n\n"
        "### Transports: robustness (two worker processes on one queue; a worker killed)\n\n"
        f"{robust}\n\n"
        + "\n".join(deaths + [f"- {e}" for e in extra] + [f"- wall time: {timing}"])
        + "\n"
    )


def main(only: str = "") -> str:
    """`only`: run just the candidates whose name contains it (e.g. `transports.py redis`)."""
    results, extra, race = measure(only)
    text = render(results, extra) + ("\n" + race if race else "")
    print(text, flush=True)
    return text


if __name__ == "__main__":
    write_tables(lambda: main(sys.argv[1] if len(sys.argv) > 1 else ""))
