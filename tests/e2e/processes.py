"""Environments for running `samverkan` as a subprocess in end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import redis

from tests.fixtures.smtp import SmtpRecorder

SAMVERKAN = str(Path(sys.executable).parent / "samverkan")


def clean_env(**settings: str) -> dict[str, str]:
    """This process's environment without any SAMVERKAN_* variable, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAMVERKAN_")}
    env.update(settings)
    return env


def service_env(
    tmp_path: Path, database_url: str, redis_url: str, smtp: SmtpRecorder, log_level: str
) -> dict[str, str]:
    """Settings for the real services: a database, Redis (emptied first) and the SMTP server."""
    redis.Redis.from_url(redis_url).flushdb()
    return clean_env(
        SAMVERKAN_DATABASE_URL=database_url,
        SAMVERKAN_BROKER_URL=redis_url,
        SAMVERKAN_SMTP_URL=f"smtp://{smtp.host}:{smtp.port}",
        SAMVERKAN_VAR_DIR=str(tmp_path / "var"),
        SAMVERKAN_OUTBOX_DIR=str(tmp_path / "outbox"),
        SAMVERKAN_LOG_LEVEL=log_level,
    )


@contextmanager
def running(
    args: list[str], env: dict[str, str], output: IO[bytes] | None = None
) -> Iterator[None]:
    """`samverkan ARGS` as a process group for the block; stopped (TERM, then KILL) after it."""
    process = subprocess.Popen(
        [SAMVERKAN, *args],
        env=env,
        stdout=output if output is not None else subprocess.DEVNULL,
        stderr=subprocess.STDOUT if output is not None else subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
