"""A report of concern and a cooperation case through the real processes.

`samverkan` runs as a subprocess for every step, with `--now` moving the clock; a real Celery
worker process consumes from Redis; `simulate --worker external` delivers what fell due, over
TCP to a real SMTP server. Every message that must arrive does, exactly once, and none that
must not (guardians of an abuse report, cancelled reminders). A child's name and personal
identity number are typed into every free-text input the commands accept: neither appears in
any message, header, invite, or any line the commands and the worker printed or logged.
"""

from __future__ import annotations

import os
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import icalendar
import pytest

from scheduler.calendar import STOCKHOLM
from tests.e2e.processes import SAMVERKAN, running, service_env
from tests.fixtures.services import DATABASE_URL_ENV, PostgresSchema, create_schema
from tests.fixtures.smtp import SmtpRecorder

pytestmark = pytest.mark.e2e

PROFILE = Path(__file__).parent.parent / "data" / "cases.yaml"
CHILD = "Lisa Exempelsson"
PIN = "150312-1234"
SECRET = f"{CHILD} {PIN}"
GUARDIANS = ("vh1@hem.se", "vh2@hem.se")
PUPIL = "elev@hem.se"
ABUSE_GUARDIAN = "vh-abuse@hem.se"
MONA = "mona@fallby.se"


@pytest.fixture
def one_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """PostgreSQL when the suite has one (as in CI), else SQLite: this slow test runs once.

    The service functions behind every command run on both databases in
    tests/integration/test_case_work.py.
    """
    if os.environ.get(DATABASE_URL_ENV):
        schema: PostgresSchema = request.getfixturevalue("postgres_schema")
        url = schema.url
    else:
        url = f"sqlite:///{tmp_path / 'samverkan.db'}"
    create_schema(url)
    return url


@pytest.fixture
def env(
    tmp_path: Path, one_database_url: str, redis_url: str, smtp_server: SmtpRecorder
) -> dict[str, str]:
    # INFO: every log line there is, so the privacy check sees them all.
    return service_env(tmp_path, one_database_url, redis_url, smtp_server, "INFO")


class Cli:
    """Runs `samverkan` and keeps everything it printed."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.printed: list[str] = []

    def __call__(self, *args: str, fails: bool = False) -> str:
        done = subprocess.run(
            [SAMVERKAN, *args], env=self.env, capture_output=True, text=True, timeout=300
        )
        self.printed += [done.stdout, done.stderr]
        if fails:
            assert done.returncode == 2, f"{args} should fail:\n{done.stdout}\n{done.stderr}"
            return done.stderr
        assert done.returncode == 0, f"samverkan {' '.join(args)} failed:\n{done.stderr}"
        return done.stdout


@pytest.fixture
def worker(env: dict[str, str], tmp_path: Path) -> Iterator[Path]:
    Cli(env)("migrate")
    log = tmp_path / "worker.log"
    with log.open("wb") as out, running(["worker", "--concurrency", "2"], env, out):
        yield log


def simulate(cli: Cli, first: str, last: str) -> str:
    return cli("simulate", "--from", first, "--to", last, "--worker", "external", "--no-progress")


def test_a_report_and_a_case_deliver_what_they_must_and_nothing_about_the_child(
    env: dict[str, str], worker: Path, smtp_server: SmtpRecorder
) -> None:
    cli = Cli(env)
    cli("load", str(PROFILE), "--now", "2027-03-01T07:00")

    # A report of concern: acute, feedback wanted, the guardians are told a report is made.
    out = cli(
        "report", "register", "--unit", "ekskolan", "--reporter", "rut", "--district", "norr",
        "--acute", "--wants-feedback", "--guardian", "vh@hem.se", "--now", "2027-03-01T10:00",
    )  # fmt: skip
    assert "Anmälan 2027-0001 registrerad" in out and "ring Mottagningsenheten Norr" in out
    cli("report", "note", "2027-0001", SECRET, "--by", "rut", "--now", "2027-03-01T10:01")
    # Suspected abuse: a message to a guardian is refused outright, and nothing is registered.
    refused = cli(
        "report", "register", "--unit", "ekskolan", "--reporter", "rut", "--district", "norr",
        "--suspected-abuse", "--guardian", ABUSE_GUARDIAN, "--now", "2027-03-01T10:02",
        fails=True,
    )  # fmt: skip
    assert "suspected violence or sexual abuse" in refused
    cli(
        "report", "register", "--unit", "ekskolan", "--reporter", "rut", "--district", "norr",
        "--suspected-abuse", "--now", "2027-03-01T10:03",
    )  # fmt: skip
    cli("report", "receive", "2027-0001", "--by", "mona", "--now", "2027-03-01T11:00")

    # A cooperation case and SIP, known 2 March: this municipality gives a SIP's first meeting
    # three weeks, so it is due by Tuesday 23 March.
    out = cli(
        "case", "open", "--owner", "rut", "--by", "rut", "--school", "ekskolan",
        "--family-worker", "fia", "--guardian", GUARDIANS[0], "--guardian", GUARDIANS[1],
        "--pupil", PUPIL, "--sip", "--now", "2027-03-02T09:00",
    )  # fmt: skip
    assert "Ärende 2027-0003" in out and "2027-03-23" in out
    cli("case", "note", "2027-0003", SECRET, "--by", "fia", "--now", "2027-03-02T09:05")
    cli(
        "case", "consent", "2027-0003", "--by", "rut", "--given-by", SECRET, "--scope", SECRET,
        "--now", "2027-03-03T09:00",
    )  # fmt: skip
    refused = cli(
        "case", "book", "2027-0003", "2027-03-10", "13:00", "--by", "rut",
        "--place", f"Rum 3 ({SECRET})", "--now", "2027-03-03T10:00", fails=True,
    )  # fmt: skip
    assert "--place" in refused and "Rum 3" not in refused
    cli(
        "case", "book", "2027-0003", "2027-03-10", "13:00", "--by", "rut",
        "--place", "ekskolan-rum-12", "--now", "2027-03-03T10:00",
    )  # fmt: skip
    simulate(cli, "2027-03-01", "2027-03-09")

    cli("case", "hold", "2027-0003", "--by", "rut", "--now", "2027-03-10T16:00")
    cli(
        "case", "minutes", "2027-0003", "--by", "rut", "--follow-up", "2027-04-20",
        "--now", "2027-03-10T16:05",
    )  # fmt: skip
    cli(
        "case", "sip-add", "2027-0003", "--by", "rut", "--goal", SECRET, "--action", SECRET,
        "--responsible", "familjebehandlare@ifo", "--due", "2027-05-03",
        "--now", "2027-03-10T16:07",
    )  # fmt: skip
    # No second meeting is booked: reminders before 24 March, then the overdue notices.
    simulate(cli, "2027-03-10", "2027-03-31")
    out = cli("case", "close", "2027-0003", "--by", "rut", "--now", "2027-04-01T09:00")
    assert "avslutat av Rut Rektor" in out
    simulate(cli, "2027-04-01", "2027-06-30")

    arrived = Counter[tuple[str, str, str]]()
    for mail in smtp_server.received:
        message = mail.message
        (recipient,) = mail.rcpt_tos
        assert [a.addr_spec for a in message["To"].addresses] == [recipient]
        assert message["Cc"] is None and message["Bcc"] is None
        day = message["Date"].datetime.astimezone(STOCKHOLM).date().isoformat()
        arrived[(day, recipient, subject_key(str(message["Subject"])))] += 1
        check_invite(message, recipient)
        raw = mail.data.decode("utf-8", "replace") + str(message["Subject"]) + text_of(message)
        assert CHILD not in raw and "150312" not in raw, f"child data in {message['Subject']}"

    assert arrived == Counter(
        {
            # report 2027-0001
            ("2027-03-01", "rut@fallby.se", "Anmälan 2027-0001 är registrerad"): 1,
            ("2027-03-01", MONA, "Brådskande: ny anmälan 2027-0001 från Ekskolan F–6"): 1,
            ("2027-03-01", "vh@hem.se", "Information från Ekskolan F–6 om en anmälan till so…"): 1,
            ("2027-03-01", "rut@fallby.se", "Anmälan 2027-0001 är mottagen av Mona Mottagning"): 1,
            ("2027-03-15", "rut@fallby.se", "Återkoppling om anmälan 2027-0001"): 1,
            # report 2027-0002, suspected abuse: staff only
            ("2027-03-01", "rut@fallby.se", "Anmälan 2027-0002 är registrerad"): 1,
            ("2027-03-01", MONA, "Brådskande: ny anmälan 2027-0002 från Ekskolan F–6"): 1,
            # case 2027-0003
            ("2027-03-02", "rut@fallby.se", "Ärende 2027-0003 öppnat"): 1,
            **{("2027-03-03", who, "Kallelse"): 1
               for who in ("rut@fallby.se", "fia@fallby.se", *GUARDIANS, PUPIL)},
            ("2027-03-10", "rut@fallby.se", "Mall för minnesanteckningar"): 1,
            ("2027-03-17", "rut@fallby.se", "Påminnelse"): 1,  # a week before 24 March
            ("2027-03-22", "rut@fallby.se", "Påminnelse"): 1,  # two working days before
            ("2027-03-25", "rut@fallby.se", "Försenat"): 1,
            ("2027-03-25", "vera@fallby.se", "Försenat"): 1,  # the owner's manager
            ("2027-04-01", "rut@fallby.se", "Ärende 2027-0003 är avslutat"): 1,
        }
    )  # fmt: skip
    # Closing cancelled the follow-up and SIP reminders of April and May: none arrived.
    assert ABUSE_GUARDIAN not in {r for (_, r, _) in arrived}

    logs = "\n".join(cli.printed) + worker.read_text(errors="replace")
    assert "deliver" in logs or "sent" in logs  # the worker did log
    assert CHILD not in logs and "150312" not in logs
    # Kept for signed-in staff, and only shown when asked for.
    assert CHILD in cli("case", "show", "2027-0003", "--notes")


def subject_key(subject: str) -> str:
    """The subject up to its first colon (the rest holds dates), whole when urgent; at most 60."""
    key = subject if subject.startswith("Brådskande") else subject.split(":")[0]
    return key if len(key) <= 52 else key[:51] + "…"


def text_of(message: object) -> str:
    body = message.get_body(("plain",))  # type: ignore[attr-defined]
    return str(body.get_content())


def check_invite(message: object, recipient: str) -> None:
    parts = [p for p in message.walk() if p.get_content_type() == "text/calendar"]  # type: ignore[attr-defined]
    if not parts:
        return
    calendar = icalendar.Calendar.from_ical(parts[0].get_content())
    (event,) = calendar.walk("VEVENT")
    attendees = event.get("ATTENDEE")
    if str(event["ORGANIZER"]) == f"mailto:{recipient}":
        # The convener's own copy: published, and she is not her own attendee.
        assert parts[0].get_param("method") == "PUBLISH" and attendees is None
    else:
        assert str(attendees) == f"mailto:{recipient}", "an invite lists its own recipient only"
    assert str(event["ORGANIZER"]) == "mailto:rut@fallby.se"
    assert str(event["SUMMARY"]) == "Samverkansmöte i ärende 2027-0003"
    assert (event.decoded("DTSTART").hour, event.decoded("DTSTART").minute) == (13, 0)
    others = {*GUARDIANS, PUPIL} - {recipient}
    assert not any(o in message.as_string() for o in others)  # type: ignore[attr-defined]
