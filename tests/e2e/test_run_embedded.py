"""`samverkan run` on the embedded default: beat inside the worker ticks, the worker sends.

No server at all: SQLite, the filesystem broker transport and .eml files, as on a fresh machine.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import select, update

import models
from models.db import make_engine, make_sessionmaker
from tests.e2e.processes import SAMVERKAN, clean_env
from tests.profiles import MINIMAL

pytestmark = pytest.mark.e2e


def test_run_with_embedded_beat_sends_what_becomes_due_into_eml_files(tmp_path: Path) -> None:
    database = tmp_path / "samverkan.db"
    env = clean_env(
        SAMVERKAN_DATABASE_URL=f"sqlite:///{database}",
        SAMVERKAN_VAR_DIR=str(tmp_path / "var"),
        SAMVERKAN_OUTBOX_DIR=str(tmp_path / "outbox"),
        SAMVERKAN_TICK_SECONDS="1",
        SAMVERKAN_LOG_LEVEL="WARNING",
    )
    loaded = subprocess.run(
        [SAMVERKAN, "load", str(MINIMAL), "--now", "2026-11-22T10:00"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert loaded.returncode == 0, loaded.stderr
    engine = make_engine(f"sqlite:///{database}")
    sessions = make_sessionmaker(engine)
    with sessions() as session, session.begin():
        first = session.scalars(
            select(models.Notification).order_by(models.Notification.due_at)
        ).first()
        assert first is not None
        # It becomes due now.
        session.execute(
            update(models.Notification)
            .where(models.Notification.id == first.id)
            .values(due_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5))
        )
        row_id, message_id = first.id, first.message_id

    process = subprocess.Popen(
        [SAMVERKAN, "run", "--concurrency", "1"],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        status = None
        while time.monotonic() < deadline:
            with sessions() as session:
                status = session.get_one(models.Notification, row_id).status
            if status == models.Status.SENT:
                break
            time.sleep(0.5)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
        engine.dispose()
    assert status == models.Status.SENT, stderr.decode()[-2000:]
    files = list((tmp_path / "outbox").rglob("*.eml"))
    assert len(files) == 1
    assert message_id.strip("<>").split("@")[0] in files[0].name
