"""`samverkan meeting show`: the real CLI (in-process) on a database of its own, after the
invitations went out through the real path (`samverkan simulate`, .eml files)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from typer.testing import CliRunner

from models.db import make_engine, make_sessionmaker, transaction
from samverkan import cli
from scheduler.answers import record_answer
from scheduler.identity import event_uid
from tests.profiles import EXAMPLE
from worker.replies import Reply

pytestmark = pytest.mark.integration

UID = event_uid("exempel", "samverkansmote-var", "2027", "exempelby.se")


def run(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli.app, list(args), env=env)
    # Errors reach the user through samverkan.clierrors (main); here they are the exception.
    error = (
        "" if result.exception is None else f"{type(result.exception).__name__}: {result.exception}"
    )
    return result.exit_code, result.stdout + error


def test_meeting_show_lists_the_invited_and_their_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import worker.runtime

    monkeypatch.setattr(worker.runtime, "_settings", None)
    monkeypatch.setattr(worker.runtime, "_runtime", None)
    env = {
        "SAMVERKAN_VAR_DIR": str(tmp_path),
        "SAMVERKAN_REPLY_MAILBOX": "svar@exempelby.se",
        "COLUMNS": "200",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert run(env, "load", str(EXAMPLE), "--now", "2027-03-01T08:00")[0] == 0
    code, output = run(env, "simulate", "--from", "2027-03-01", "--to", "2027-03-24")
    assert code == 0, output

    code, output = run(env, "meeting", "show", "samverkansmote-var", "2027-04-13")
    assert code == 0, output
    assert "inget svar" in output and "kommer" not in output.replace("kommer inte", "")

    engine = make_engine(f"sqlite:///{tmp_path / 'samverkan.db'}")
    try:
        with transaction(make_sessionmaker(engine)) as session:
            from sqlalchemy import select

            import models

            row = session.scalars(
                select(models.Notification).where(
                    models.Notification.routine_key == "samverkansmote-var",
                    models.Notification.purpose == "kallelse",
                    models.Notification.status == "sent",
                )
            ).first()
            assert row is not None
            name, address = row.recipient_name, row.recipient_email
            stamp = dt.datetime(2027, 3, 24, 9, tzinfo=dt.UTC)
            reply = Reply(UID, address, "DECLINED", 0, stamp)
            assert record_answer(session, reply, stamp).recorded
    finally:
        engine.dispose()

    code, output = run(env, "meeting", "show", "samverkansmote-var", "2027-04-13")
    assert code == 0, output
    line = next(line for line in output.splitlines() if name in line)
    assert "kommer inte" in line
    assert "1 of" in output and "have answered" in output

    code, output = run(env, "meeting", "show", "samverkansmote-var", "2027-04-14")
    assert code != 0
    assert "MeetingNotFound: no 'samverkansmote-var' meeting is booked on 2027-04-14" in output
