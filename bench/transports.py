"""Which Celery broker transport for the embedded (no server) mode? Run: python bench/transports.py

Each candidate gets real Celery workers, started as SUBPROCESSES (bench/_transport_worker.py:
a minimal app with one no-op task, threads pool, concurrency 2, the project's acks_late /
prefetch-1 settings). The bench process publishes; every task reports to an AF_UNIX datagram
socket the bench listens on, so completions are counted (and timed) in this process.

Per candidate:
  throughput   publish N=500 tasks, time from the first publish to the last completion;
  latency      one task at a time, publish → completion report (median of 50);
               both repeated 5 times with the same worker, medians over the repetitions;
  two workers  two worker processes on the same queue, 500 tasks, 3 times: every task must run
               exactly once; error lines in the workers' logs are counted;
  kill -9      a worker is killed while running 2 tasks (4 published): how many of the 4 ever
               complete once a fresh worker is started (acks_late promises all 4).
Every phase has a deadline, so the bench always finishes; a missed deadline is a note.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import fmt, median, ratio, table  # noqa: E402
from _transport_worker import QUEUE, make_app  # noqa: E402

N_TASKS = 500
REPEATS = 5
LATENCY_SAMPLES = 50
TWO_WORKER_REPEATS = 3
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
                if kind == "done":
                    self.done[tag].append((int(pid), now))
                else:
                    self.started[tag].append(int(pid))
                self.cond.notify_all()

    def wait(self, predicate: Callable[[], bool], deadline: float) -> bool:
        with self.cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(min(left, 0.5))
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
    env: dict[str, str] = field(default_factory=dict)
    latency_samples: int = LATENCY_SAMPLES
    robustness: bool = True  # run the two-worker and kill -9 phases
    kill_wait: float = 10.0  # how long to wait for redelivery after kill -9
    notes: list[str] = field(default_factory=list)


def candidates(tmp: Path) -> list[Candidate]:
    fs = tmp / "fs"
    for sub in ("queue", "processed", "control"):
        (fs / sub).mkdir(parents=True, exist_ok=True)
    fs_options = {  # exactly worker.app.broker_options, plus control_folder (see notes)
        "data_folder_in": str(fs / "queue"),
        "data_folder_out": str(fs / "queue"),
        "processed_folder": str(fs / "processed"),
        "store_processed": False,
        "polling_interval": 0.05,
        "control_folder": str(fs / "control"),
    }
    return [
        Candidate("filesystem (poll 0.05 s)", "filesystem://localhost/", fs_options),
        Candidate(
            "sqla+sqlite (default poll 1 s)",
            f"sqla+sqlite:///{tmp / 'sqla-default.sqlite'}",
            {},
            latency_samples=10,
            robustness=False,
            notes=["10 latency samples per repetition (1 s poll)"],
        ),
        Candidate(
            "sqla+sqlite (poll 0.05 s, patched)",
            f"sqla+sqlite:///{tmp / 'sqla.sqlite'}",
            {},
            env={"BENCH_POLLING_INTERVAL": "0.05"},
        ),
        # visibility_timeout 5 s (the project uses 3600) so the kill -9 phase can see redelivery.
        Candidate("redis (reference)", REDIS_URL, {"visibility_timeout": 5}, kill_wait=25.0),
    ]


# --------------------------------------------------------------------------- workers


class Workers:
    def __init__(self, cand: Candidate, tmp: Path, listener: Listener) -> None:
        self.cand, self.tmp, self.listener = cand, tmp, listener
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: list[Path] = []

    def start(self, name: str) -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        env.update(self.cand.env)
        env["BENCH_BROKER_URL"] = self.cand.url
        env["BENCH_TRANSPORT_OPTIONS"] = json.dumps(self.cand.options)
        env["BENCH_SOCKET"] = self.listener.path
        log = self.tmp / f"{name}.log"
        self.logs.append(log)
        with log.open("ab") as handle:
            proc = subprocess.Popen(
                [sys.executable, str(HERE / "_transport_worker.py"), name],
                stdout=handle,
                stderr=subprocess.STDOUT,
                cwd=self.tmp,
                env=env,
            )
        self.procs[name] = proc
        return proc

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

    def error_lines(self) -> int:
        words = ("Traceback", "ERROR", "CRITICAL", "locked", "Exception")
        count = 0
        for log in self.logs:
            if log.exists():
                text = log.read_text(errors="replace")
                count += sum(1 for ln in text.splitlines() if any(w in ln for w in words))
        return count

    def log_tail(self, lines: int = 3) -> str:
        for log in reversed(self.logs):
            if log.exists() and log.stat().st_size:
                tail = log.read_text(errors="replace").strip().splitlines()[-lines:]
                return " / ".join(t.strip()[:160] for t in tail)
        return "(empty log)"


# --------------------------------------------------------------------------- phases


@dataclass
class Result:
    name: str
    throughput: list[float] = field(default_factory=list)
    publish_rate: list[float] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)
    two_throughput: list[float] = field(default_factory=list)
    two_summary: str = "—"
    kill_summary: str = "—"
    notes: list[str] = field(default_factory=list)


class Run:
    def __init__(self, cand: Candidate, tmp: Path, listener: Listener) -> None:
        self.cand, self.listener = cand, listener
        self.workers = Workers(cand, tmp, listener)
        self.app = make_app(cand.url, cand.options)
        self.result = Result(cand.name, notes=list(cand.notes))
        self.started = time.monotonic()

    def over_budget(self) -> bool:
        return time.monotonic() - self.started > CANDIDATE_BUDGET

    def send(self, tag: str, sleep: float = 0.0) -> None:
        self.app.send_task("bench.noop", args=(tag, sleep), queue=QUEUE)

    def tag(self, prefix: str) -> str:
        return f"{prefix}-{next(TAGS)}"

    def warm_up(self, pids_wanted: int, timeout: float = 40.0) -> bool:
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
            live = {p.pid for p in self.workers.procs.values()}
            if len(seen & live) >= pids_wanted:
                return True
        return False

    def burst(self, prefix: str, timeout: float = 60.0) -> tuple[float, float, int, list[str]]:
        """Publish N tasks; (seconds to all done, seconds to publish, done count, tags)."""
        tags = [self.tag(prefix) for _ in range(N_TASKS)]
        t0 = time.perf_counter()
        for t in tags:
            self.send(t)
        published = time.perf_counter() - t0
        ok = self.listener.wait(
            lambda: self.listener.count_done(tags) == len(tags), time.monotonic() + timeout
        )
        last = max((v[0][1] for t in tags if (v := self.listener.done.get(t))), default=t0)
        elapsed = last - t0 if ok else float("inf")
        return elapsed, published, self.listener.count_done(tags), tags

    def single(self, timeout: float = 10.0) -> float | None:
        tag = self.tag("lat")
        t0 = time.perf_counter()
        self.send(tag)
        if not self.listener.wait(lambda: tag in self.listener.done, time.monotonic() + timeout):
            return None
        return (self.listener.done[tag][0][1] - t0) * 1000

    def speed(self) -> None:
        self.workers.start("w1")
        if not self.warm_up(1):
            raise RuntimeError(f"worker did not run a task within 40 s: {self.workers.log_tail()}")
        for rep in range(REPEATS):
            if self.over_budget():
                self.result.notes.append(f"budget: stopped after {rep} repetitions")
                break
            elapsed, published, done, _ = self.burst("thr")
            if done < N_TASKS:
                self.result.notes.append(f"rep {rep + 1}: only {done}/{N_TASKS} ran in 60 s")
                break
            self.result.throughput.append(N_TASKS / elapsed)
            self.result.publish_rate.append(N_TASKS / published)
            for _ in range(self.cand.latency_samples):
                ms = self.single()
                if ms is None:
                    self.result.notes.append("a single task did not complete within 10 s")
                    break
                self.result.latency_ms.append(ms)
        self.workers.stop_all()

    def two_workers(self) -> None:
        errors_before = self.workers.error_lines()
        self.workers.start("w2a")
        self.workers.start("w2b")
        if not self.warm_up(2):
            self.result.notes.append("two workers: both did not come up within 40 s")
        dup = lost = 0
        split: list[str] = []
        for _ in range(TWO_WORKER_REPEATS):
            if self.over_budget():
                self.result.notes.append("budget: two-worker phase cut short")
                break
            elapsed, _, done, tags = self.burst("two")
            time.sleep(0.5)  # late duplicates
            lost += N_TASKS - done
            dup += sum(len(self.listener.done[t]) - 1 for t in tags if t in self.listener.done)
            if done == N_TASKS:
                self.result.two_throughput.append(N_TASKS / elapsed)
            per_pid: dict[int, int] = defaultdict(int)
            for t in tags:
                for pid, _ in self.listener.done.get(t, []):
                    per_pid[pid] += 1
            split.append("/".join(str(v) for v in sorted(per_pid.values(), reverse=True)))
            if done < N_TASKS:
                break
        self.workers.stop_all()
        errors = self.workers.error_lines() - errors_before
        self.result.two_summary = (
            f"lost {lost}, dup {dup}, err lines {errors}, split {' '.join(split)}"
        )

    def kill_nine(self) -> None:
        self.workers.start("wk")
        if not self.warm_up(1):
            self.result.kill_summary = "worker did not start"
            return
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
            f"{self.listener.count_done(tags)}/4 ran; in-flight redelivered "
            f"{redone}/{len(in_flight)} (waited {self.cand.kill_wait:.0f} s)"
        )

    def execute(self) -> Result:
        try:
            self.speed()
            if self.cand.robustness and not self.over_budget():
                self.two_workers()
            if self.cand.robustness and not self.over_budget():
                self.kill_nine()
        except Exception as exc:  # a failing transport is a result
            self.result.notes.append(f"FAILED: {type(exc).__name__}: {exc}"[:400])
        finally:
            self.workers.stop_all()
            self.app.close()
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


def measure(only: str = "") -> tuple[list[Result], list[str]]:
    tmp = Path(tempfile.mkdtemp(prefix="bt-", dir="/tmp"))
    listener = Listener(tmp / "s")
    results: list[Result] = []
    extra = [probe_sqla_polling_option(tmp)]
    try:
        for cand in candidates(tmp):
            if only not in cand.name:
                continue
            print(f"  transport: {cand.name} …", file=sys.stderr, flush=True)
            if cand.url.startswith("redis") and (problem := flush_redis()):
                results.append(Result(cand.name, notes=[problem]))
                continue
            results.append(Run(cand, tmp, listener).execute())
    finally:
        listener.close()
        if os.environ.get("BENCH_KEEP"):
            print(f"  kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return results, extra


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
                f"{len(r.throughput)}×{N_TASKS}, {len(r.latency_ms)} lat",
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
            "notes",
        ],
        rows,
    )
    robust = table(
        ["transport", "2 workers: tasks/s", "2 workers: outcome (all reps)", "kill -9 mid-task"],
        [[r.name, fmt(median(r.two_throughput)), r.two_summary, r.kill_summary] for r in results],
    )
    return (
        f"### Transports: one worker process (threads, concurrency 2), N={N_TASKS}, "
        f"medians of {REPEATS} repetitions\n\n{speed}\n\n"
        f"### Transports: robustness (two worker processes on one queue; a worker killed)\n\n"
        f"{robust}\n\n" + "\n".join(f"- {e}" for e in extra) + "\n"
    )


def main(only: str = "") -> str:
    """`only`: run just the candidates whose name contains it (e.g. `transports.py redis`)."""
    results, extra = measure(only)
    text = render(results, extra)
    print(text, flush=True)
    return text


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "")
