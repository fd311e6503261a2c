"""`samverkan plan`, run as a command: the table has a state column, the JSON each message's
state per recipient, next to what the plan computes."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import models
from models.db import transaction
from scheduler import outbox
from tests.e2e.processes import SAMVERKAN, clean_env
from tests.profiles import MINIMAL, load

NOW = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC)
SENT_AT = dt.datetime(2027, 2, 18, 7, 0, 5, tzinfo=dt.UTC)


def plan(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [SAMVERKAN, "plan", "--year", "2027", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_plan_shows_the_state_of_each_message(
    database_url: str, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    load(session_factory, MINIMAL, NOW)
    with transaction(session_factory) as session:
        rows = {
            r.purpose: r
            for r in session.scalars(select(models.Notification))
            if r.occurrence == "2027"
        }
        outbox.mark_sent(rows["boka-6v"], SENT_AT, "250 ok")
        outbox.cancel(rows["paminnelse-30"], NOW, "stopped by hand")
    env = clean_env(
        SAMVERKAN_DATABASE_URL=database_url,
        SAMVERKAN_VAR_DIR=str(tmp_path / "var"),
        SAMVERKAN_OUTBOX_DIR=str(tmp_path / "outbox"),
        COLUMNS="250",
    )
    table = plan(env)
    assert "state" in table
    assert "sent (2027-02-18 08:00)" in table
    assert "cancelled (stopped by hand)" in table
    items = {i["purpose"]: i for i in json.loads(plan(env, "--format", "json")) if "purpose" in i}
    assert items["boka-6v"]["deliveries"] == [
        {"recipient": "anna@liten.se", "state": "sent", "sent_at": SENT_AT.isoformat()}
    ]
    assert items["paminnelse-30"]["state"] == "cancelled"
    assert items["underlag"]["state"] == "planned"
