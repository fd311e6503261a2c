"""A whole year for profiles/exempel.yaml through the real processes.

`samverkan` runs as a subprocess; a real Celery worker process consumes from Redis; messages
go over TCP to a real SMTP server. Every message `plan` promises must arrive exactly once,
with the right recipient and date, and every invite must parse with the meeting at 13:00.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import icalendar
import pytest

from scheduler.calendar import STOCKHOLM
from tests.e2e.processes import SAMVERKAN, running, service_env
from tests.fixtures.smtp import SmtpRecorder
from tests.profiles import EXAMPLE

pytestmark = pytest.mark.e2e

LOADED_AT = "2026-11-22T10:00"


@pytest.fixture
def env(
    tmp_path: Path, database_url: str, redis_url: str, smtp_server: SmtpRecorder
) -> dict[str, str]:
    return service_env(tmp_path, database_url, redis_url, smtp_server, "WARNING")


def samverkan(env: dict[str, str], *args: str, timeout: float = 300) -> str:
    done = subprocess.run(
        [SAMVERKAN, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"samverkan {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture
def worker(env: dict[str, str]) -> Iterator[None]:
    samverkan(env, "migrate")  # before the worker starts, so the two don't race to create tables
    with running(["worker", "--concurrency", "2"], env):
        yield


def expected_messages(env: dict[str, str]) -> Counter[tuple[str, str, str]]:
    """(recipient, subject, local date) for every message `plan --year 2027` promises.

    `plan` also lists the year's cancelled messages (with their state): not promised."""
    items = json.loads(samverkan(env, "plan", "--year", "2027", "--format", "json"))
    return Counter(
        (delivery["recipient"], item["subject"], item["date"])
        for item in items
        if item["kind"] == "message"
        for delivery in item["deliveries"]
        if delivery["state"] != "cancelled"
    )


def test_a_simulated_year_delivers_every_planned_message_exactly_once(
    env: dict[str, str], worker: None, smtp_server: SmtpRecorder
) -> None:
    samverkan(env, "load", str(EXAMPLE), "--now", LOADED_AT)
    samverkan(env, "book", "samverkansmote-host", "2027-10-12", "13:00", "--now", LOADED_AT)
    out = samverkan(
        env,
        "simulate",
        "--from",
        "2027-01-01",
        "--to",
        "2027-12-31",
        "--worker",
        "external",
        "--no-progress",
    )
    expected = expected_messages(env)
    received = smtp_server.received
    arrived: Counter[tuple[str, str, str]] = Counter()
    invites = 0
    for mail in received:
        message = mail.message
        (recipient,) = mail.rcpt_tos
        assert [a.addr_spec for a in message["To"].addresses] == [recipient]
        assert message["Cc"] is None and message["Bcc"] is None
        sent_on = message["Date"].datetime.astimezone(STOCKHOLM).date().isoformat()
        arrived[(recipient, str(message["Subject"]), sent_on)] += 1
        invites += check_invite(message, recipient)

    assert sum(expected.values()) > 80
    assert arrived == expected
    assert max(arrived.values()) == 1
    assert invites == sum(1 for (_, subject, _) in expected if subject.startswith("Kallelse"))
    assert invites >= 2 * 10  # the April and October meetings, to every participant
    assert f"messages sent: {len(received)}" in out

    again = samverkan(
        env,
        "simulate",
        "--from",
        "2027-01-01",
        "--to",
        "2027-12-31",
        "--worker",
        "external",
        "--no-progress",
    )
    assert "messages sent: 0" in again
    assert len(smtp_server.received) == len(received)


def check_invite(message: object, recipient: str) -> int:
    parts = [p for p in message.walk() if p.get_content_type() == "text/calendar"]  # type: ignore[attr-defined]
    if not parts:
        return 0
    calendar = icalendar.Calendar.from_ical(parts[0].get_content())
    (event,) = calendar.walk("VEVENT")
    start = event.decoded("DTSTART")
    assert str(event["DTSTART"].params["TZID"]) == "Europe/Stockholm"
    if str(event["SUMMARY"]).startswith("Samverkansmöte"):
        assert (start.hour, start.minute) == (13, 0)
        assert start.astimezone(dt.UTC).hour == 11  # April and 12 October 2027: summer time
    else:  # the steering group meets at 09:00 by its recurrence rule
        assert (start.hour, start.minute) == (9, 0)
    if str(event["ORGANIZER"]) == f"mailto:{recipient}":
        # The convener's own copy: published, without her as an attendee.
        assert parts[0].get_param("method") == "PUBLISH"
        assert event.get("ATTENDEE") is None
    else:
        assert parts[0].get_param("method") == "REQUEST"
        assert str(event.get("ATTENDEE")) == f"mailto:{recipient}"
    assert calendar.walk("VTIMEZONE")
    return 1
