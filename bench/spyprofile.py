"""py-spy on a running `samverkan worker` and its pool: where the wall time of a message goes.

`Recording(pid, out)` runs `py-spy record --subprocesses --idle --function --format raw` on the
worker master while the `with` block runs (py-spy samples, it does not slow the code it
watches by much; `--nonblocking` keeps it from pausing the processes). `report()` keeps the
samples of the pool processes, counts for every function the samples whose stack contains it
(inclusive wall time, idle included), and divides by the messages sent: wall ms per message in
one pool process. The project's own functions and a few library ones are listed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from types import TracebackType

from _common import table

RATE = 100  # samples per second and process (more falls behind on a busy 2-core machine)
# BENCH_PROFILE_CPU=1: samples only while a process is on the CPU (py-spy without --idle), so
# the figures are CPU ms per message instead of wall ms.
ON_CPU = os.environ.get("BENCH_PROFILE_CPU") == "1"
KIND = "CPU time (idle left out)" if ON_CPU else "wall time (idle included)"
PROJECT = ("worker/", "scheduler/", "models/", "samverkan/")  # as py-spy shows the files
# The worker's start-up frames, under which everything runs.
STARTUP = ("samverkan/cli.py", "samverkan/clierrors.py", "samverkan/cli/")
# Library functions worth a line of their own: (function name, file fragment, label).
LIBRARY = (
    ("sendmail", "smtplib", "smtplib sendmail (the SMTP transaction)"),
    ("as_bytes", "email/message", "email as_bytes (serialising the MIME)"),
    ("flatten", "email/generator", "email generator flatten (all MIME writing)"),
    ("execute", "sqlalchemy/orm/session", "SQLAlchemy Session.execute (all)"),
    ("commit", "sqlalchemy/orm/session", "SQLAlchemy Session.commit"),
    ("trace_task", "celery/app/trace", "Celery trace_task (the task and its bookkeeping)"),
    ("execute", "sqlalchemy/engine/base", "SQLAlchemy Connection.execute (every statement)"),
    ("wait", "psycopg/connection", "psycopg waiting for PostgreSQL (round trips, commits)"),
)
# The delivery task: one row a task before batches, a batch since (worker/tasks.py).
TASKS = (("deliver", "worker/tasks.py"), ("deliver_many", "worker/tasks.py"))


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise RuntimeError("py-spy not installed: make bench installs the bench extra")
    return found


class Recording:
    def __init__(self, pid: int, output: Path) -> None:
        self.pid = pid
        self.output = output
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Recording:
        log = self.output.with_suffix(".log").open("wb")
        self.process = subprocess.Popen(
            [
                py_spy(), "record", "--pid", str(self.pid), "--subprocesses",
                *([] if ON_CPU else ["--idle"]),
                "--function", "--nonblocking", "--rate", str(RATE), "--format", "raw",
                "--output", str(self.output),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        time.sleep(2)  # py-spy attaches
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _parse(path: Path, pids: set[int]) -> tuple[Counter[str], int]:
    """Inclusive samples per frame label among the pool processes' stacks, and all samples."""
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = stack.split(";")
        # With --subprocesses a stack starts with its process and its parents: `process PID:…`.
        owner = None
        while frames and frames[0].startswith("process "):
            owner = frames.pop(0).split()[1].split(":")[0]
        if owner is None or not owner.isdigit() or int(owner) not in pids:
            continue
        count = int(count_text)
        total += count
        for frame in set(frames):
            inclusive[frame] += count
    return inclusive, total


def _label(frame: str) -> tuple[str, str]:
    """(function, file) of a py-spy frame `function (file)` or `function (file:line)`."""
    name, _, rest = frame.partition(" (")
    return name, rest.rstrip(")").rsplit(":", 1)[0]


def report(path: Path, pids: list[int], messages: int, title: str, seconds: float) -> str:
    if not path.exists():
        return f"\n(py-spy wrote nothing for {title}; see {path.with_suffix('.log')})\n"
    inclusive, total = _parse(path, set(pids))
    if not total:
        return f"\n(no samples of the pool processes {pids} for {title})\n"
    per = 1000.0 / RATE / messages  # ms per message for one sample
    task = sum(c for f, c in inclusive.items() if _label(f) in TASKS)
    rows = []
    for frame, count in inclusive.most_common():
        name, file = _label(frame)
        if file.startswith(PROJECT) and not file.startswith(STARTUP):
            rows.append([f"{name} ({file})", f"{count * per:.2f}", _share(count, task)])
    rows = rows[:18]
    for name, fragment, label in LIBRARY:
        count = sum(
            c
            for f, c in inclusive.items()
            if _label(f)[0].rsplit(".", 1)[-1] == name and fragment in _label(f)[1]
        )
        if count:
            rows.append([label, f"{count * per:.2f}", _share(count, task)])
    head = (
        f"\n### Profile: {title}\n\n"
        f"py-spy {RATE} Hz on the {len(pids)} pool processes, {KIND}, "
        f"{total:,} samples over the recording ({seconds:.1f} s from the first claim to the last "
        f"record, plus the seconds before the tick); the deliver task: {task * per:.2f} ms per "
        f"message, the pool processes in all: {total * per:.2f} ms.\n\n"
    )
    headers = ["function (inclusive)", "ms / message", "share of the deliver task"]
    return head + table(headers, rows) + "\n"


def _share(count: int, task: int) -> str:
    return f"{100 * count / task:.0f} %" if task else "—"


if __name__ == "__main__":
    # Re-read a kept recording: spyprofile.py FILE MESSAGES PID [PID...]
    file, count, *pid_args = sys.argv[1:]
    with contextlib.suppress(BrokenPipeError):
        print(report(Path(file), [int(p) for p in pid_args], int(count), file, 0.0))
