"""Services for the mailout, tick-scale and re-plan benches: each bench starts its own.

- `smtp_sink()`: Postfix's `smtp-sink` (C, accepts and discards) on a free port of 127.0.0.1.
  `make bench` installs Debian's `postfix` for it when missing; see `ensure_smtp_sink`.
- `RedisServer`: a private `redis-server` on a free port (no persistence), so nothing of the
  shared Redis is touched and a million RedBeat keys vanish with the process.
- `database()`: a PostgreSQL database of the bench's own (created when missing) on the local
  server, user `postgres`, trust auth.
- `peak_rss_mb()`: VmHWM of a process and each of its children (a prefork pool).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

PG_HOST = os.environ.get("BENCH_PG_HOST", "127.0.0.1")
SMTP_SINK_PATHS = ("/usr/sbin/smtp-sink", "/usr/lib/postfix/sbin/smtp-sink")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")
        time.sleep(0.05)


def stop(process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """SIGTERM to the process group, SIGKILL after `timeout`."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def find_smtp_sink() -> str | None:
    for path in (shutil.which("smtp-sink"), *SMTP_SINK_PATHS):
        if path and Path(path).is_file():
            return path
    return None


@contextlib.contextmanager
def smtp_sink(log: Path) -> Iterator[int]:
    """smtp-sink on a free port; yields the port. Runs as `nobody` when started by root."""
    binary = find_smtp_sink()
    if binary is None:
        raise RuntimeError("smtp-sink not found: run `make bench` (installs Debian's postfix)")
    port = free_port()
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    # Backlog 256; without -d or -D nothing is written anywhere.
    out = log.open("wb")
    process = subprocess.Popen(
        [binary, *user, f"127.0.0.1:{port}", "256"],
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    out.close()
    try:
        wait_for_port(port)
        yield port
    finally:
        stop(process)


class RedisServer:
    """A private redis-server on a free port, without persistence."""

    def __init__(self, directory: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server not found")
        self.port = free_port()
        out = (directory / f"redis-{self.port}.log").open("wb")
        self.process = subprocess.Popen(
            [
                binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(directory),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        out.close()
        wait_for_port(self.port)

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def stop(self) -> None:
        stop(self.process)


def database(name: str) -> str:
    """The URL of the PostgreSQL database `name`, created when missing."""
    import psycopg

    with psycopg.connect(f"host={PG_HOST} user=postgres dbname=postgres", autocommit=True) as c:
        if not c.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            c.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://postgres@{PG_HOST}:5432/{name}"


def drop_database(name: str) -> None:
    import psycopg

    with psycopg.connect(f"host={PG_HOST} user=postgres dbname=postgres", autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            text = (task / "children").read_text().split()
            found += [int(x) for x in text]
    return found


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM (peak resident set) of `pid` in MB, or None when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None
