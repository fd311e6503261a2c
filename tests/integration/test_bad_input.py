"""Bad input, beyond tests/integration/test_profile_loading.py: more malformed profiles, header
injection followed from the profile to the worker, and escaping in delivered messages.

Every malformed profile is refused with a message naming file, line and field (or what is
wrong with the file as a whole), and the database is left exactly as it was.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from pathlib import Path

import icalendar
import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session, sessionmaker

import models
from core.errors import ProfileError
from core.settings import ROOT
from models import Status
from models.db import transaction
from scheduler.outbox import claim_due
from service.yamlsource import MAX_BYTES, MAX_DEPTH, MAX_VALUES
from tests.profiles import MINIMAL, load, refusal, snapshot, write_variant
from worker.delivery import Delivery, Outcome, deliver_one
from worker.mailers import MemoryMailer
from worker.render import Renderer

NOW = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC)

# (what is wrong, text to replace, replacement, expected fragment of the message)
MALFORMED = [
    # types
    (
        "text where a number belongs",
        "      duration_minutes: 120\n",
        "      duration_minutes: two hours\n",
        ":69: routines[1].meeting.duration_minutes: Input should be a valid integer",
    ),
    (
        "a number where text belongs",
        "  name: Lilla kommunen\n",
        "  name: 42\n",
        ":4: municipality.name: Input should be a valid string",
    ),
    (
        "a mapping where a list belongs",
        "    owners: [elevhalsochef]\n    messages:\n      - purpose: paminnelse-30",
        "    owners: {role: elevhalsochef}\n    messages:\n      - purpose: paminnelse-30",
        ":50: routines[0].owners: Input should be a valid list",
    ),
    (
        "a list where a mapping belongs",
        "  sender:\n",
        "  sender: [Samverkan, samverkan@liten.se]\n  sender_was:\n",
        ":5: municipality.sender: Input should be a valid dictionary",
    ),
    (
        "a send time that is not a time",
        'send_time: "08:00"',
        'send_time: "8 o\'clock"',
        ":8: municipality.send_time: Input should be in a valid time format",
    ),
    (
        "an unknown unit kind",
        "    kind: grundskola\n",
        "    kind: universitet\n",
        ":15: units[0].kind: Input should be 'forskola'",
    ),
    # impossible dates
    (
        "30 February",
        "date: {month: 6, day: 30}",
        "date: {month: 2, day: 30}",
        ":49: routines[0].when.date: 30 February does not exist",
    ),
    (
        "month 13",
        "      month: 4\n",
        "      month: 13\n",
        ":65: routines[1].when.month: Input should be less than or equal to 12",
    ),
    (
        "a role that ends before it starts",
        "        from: 2027-02-01\n",
        "        from: 2027-02-01\n        to: 2027-01-15\n",
        ":41: people[2].roles[0]: 'to' is before 'from'",
    ),
    (
        "a day that does not exist in a role date",
        "        to: 2027-01-31\n",
        "        to: 2027-02-29\n",
        ":36: people[1].roles[0].to: Input should be a valid date",
    ),
    (
        "a school year rule on 31 June",
        "end: {month: 6, day: 11}",
        "end: {month: 6, day: 31}",
        ":23: school_years.rule.end: 31 June does not exist",
    ),
    (
        "a Python tag",
        "  name: Lilla kommunen\n",
        "  name: !!python/name:os.system ''\n",
        ":4: could not determine a constructor for the tag",
    ),
    (
        "a Python tag on a list",
        "    owners: [elevhalsochef]\n    messages:\n      - purpose: paminnelse-30",
        "    owners: !!python/tuple [elevhalsochef]\n    messages:\n      - purpose: paminnelse-30",
        ":50: routines[0].owners: unknown tag",
    ),
    # unknown references
    (
        "an unknown district",
        "    district: norr\n",
        "    district: soder\n",
        ":16: units[0].district: unknown district 'soder'",
    ),
    (
        "an unknown owner",
        "    owners: [elevhalsochef]\n    participants:",
        "    owners: [elevhalsochefen]\n    participants:",
        ":66: routines[1].owners[0]: unknown role 'elevhalsochefen'",
    ),
    (
        "an unknown reply_to",
        "        reply_to: elevhalsochef\n",
        "        reply_to: chef\n",
        ":60: routines[0].messages[1].reply_to: unknown role 'chef'",
    ),
    # duplicate keys
    (
        "two people with the same key",
        "  - key: bo\n",
        "  - key: anna\n",
        ":30: people[1].key: duplicate key 'anna'",
    ),
    (
        "a key given twice in one mapping, deep down",
        "        template: utvardering-paminnelse\n",
        "        template: utvardering-paminnelse\n        template: utvardering-underlag\n",
        ":55: routines[0].messages[0].template: duplicate key 'template'",
    ),
    # header injection at load time: names, addresses
    (
        "a line separator in a person's name",
        "    name: Anna Chef\n",
        '    name: "Anna\\u2028Bcc: x@evil.example"\n',
        ":26: people[0].name: must not contain line breaks",
    ),
    (
        "NEL in the sender's name",
        "    name: Samverkan Lilla kommunen\n",
        '    name: "Samverkan\\x85Bcc: x@evil.example"\n',
        ":6: municipality.sender.name: must not contain line breaks",
    ),
    (
        "CR/LF in an address",
        "email: anna@liten.se",
        'email: "anna@liten.se\\r\\nBcc: x@evil.example"',
        ":27: people[0].email: value is not a valid email address",
    ),
    (
        "CR/LF in a routine's name (the subject)",
        "    name: Utvärdering av samverkan\n",
        '    name: "Utvärdering\\r\\nBcc: x@evil.example"\n',
        ":46: routines[0].name: must not contain line breaks",
    ),
    (
        "an address without a domain",
        "email: bo@liten.se",
        "email: bo@",
        ":32: people[1].email: value is not a valid email address",
    ),
]


@pytest.mark.parametrize(
    ("case", "old", "new", "expected"), MALFORMED, ids=[m[0] for m in MALFORMED]
)
def test_malformed_profile_is_refused_precisely_and_changes_nothing(
    case: str,
    old: str,
    new: str,
    expected: str,
    tmp_path: Path,
    engine: Engine,
    session_factory: sessionmaker[Session],
) -> None:
    bad = write_variant(tmp_path, old, new)
    message = refusal(session_factory, engine, bad, NOW)
    assert f"{bad}{expected}" in message, message


def whole_file_problems(tmp_path: Path) -> list[tuple[str, bytes, str]]:
    text = MINIMAL.read_text(encoding="utf-8")
    aliases = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]'] + [
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 7)
    ]
    return [
        ("empty", b"", "empty.yaml: the file is empty"),
        ("only a comment", b"# nothing\n", "the file is empty"),
        ("a list, not a mapping", b"- municipality\n- units\n", ":1: a profile is a mapping"),
        ("a NUL byte", text.replace("Lilla", "Li\x00la", 1).encode(), "a NUL byte.yaml: YAML"),
        (
            "UTF-16",
            text.encode("utf-16"),
            ":1: the file is not UTF-8 (byte 0)",
        ),
        (
            "Latin-1 in a comment",
            ("# Å" + text).encode("latin-1", "replace"),
            ":1: the file is not UTF-8",
        ),
        (
            "enormous",
            (text + ("#" + "x" * 1023 + "\n") * (MAX_BYTES // 1024 + 1)).encode(),
            f"a profile may be at most {MAX_BYTES}",
        ),
        (
            "an alias bomb (small file, millions of values)",
            ("\n".join(aliases) + "\n").encode(),
            f"the file expands to more than {MAX_VALUES} values",
        ),
        (
            "nested a thousand deep",
            ("a: " + "[" * 1000 + "]" * 1000 + "\n").encode(),
            "the file is nested too deeply",
        ),
        (
            "nested fifty deep",
            ("a: " + "[" * 50 + "]" * 50 + "\n").encode(),
            f"nested deeper than {MAX_DEPTH} levels",
        ),
        ("a tab for indentation", text.replace("  name: Lilla", "\tname: Lilla").encode(), "YAML"),
    ]


def test_malformed_files_are_refused_and_change_nothing(
    tmp_path: Path, engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    load(session_factory, MINIMAL, NOW)
    before = snapshot(engine)
    for case, content, expected in whole_file_problems(tmp_path):
        bad = tmp_path / f"{case}.yaml"
        bad.write_bytes(content)
        with pytest.raises(ProfileError) as caught:
            load(session_factory, bad, NOW)
        assert expected in str(caught.value), (case, str(caught.value))
        assert str(bad) in str(caught.value), case
    assert snapshot(engine) == before


def test_every_problem_of_a_profile_is_listed_at_once(
    tmp_path: Path, session_factory: sessionmaker[Session]
) -> None:
    text = MINIMAL.read_text(encoding="utf-8")
    text = text.replace("      - role: elevhalsochef\n", "      - role: chef\n")
    text = text.replace(
        "        unit: ekskolan\n        to:", "        unit: almskolan\n        to:"
    )
    bad = tmp_path / "two.yaml"
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(ProfileError) as caught:
        load(session_factory, bad, NOW)
    message = str(caught.value)
    assert "the profile has 2 problems; nothing was changed" in message
    assert ":29: people[0].roles[0].role: unknown role 'chef'" in message
    assert ":35: people[1].roles[0].unit: unknown unit 'almskolan'" in message


# --------------------------------------------------------------------------- header injection


@pytest.fixture
def loaded(session_factory: sessionmaker[Session]) -> sessionmaker[Session]:
    load(session_factory, MINIMAL, NOW)
    return session_factory


def _reminder(sessions: sessionmaker[Session]) -> models.Notification:
    with sessions() as session:
        row = session.scalars(
            select(models.Notification).where(models.Notification.purpose == "paminnelse-30")
        ).one()
        session.expunge(row)
        return row


@pytest.mark.parametrize(
    ("column", "value", "field"),
    [
        ("recipient_name", "Anna\r\nBcc: x@evil.example", "to.name"),
        ("recipient_name", "Anna\u2028Bcc: x@evil.example", "to.name"),
        ("recipient_email", "anna@liten.se\r\nBcc: x@evil.example", "to.email"),
        ("recipient_email", "anna@liten.se, x@evil.example", "to.email"),
    ],
)
def test_a_row_that_would_inject_headers_fails_without_sending(
    loaded: sessionmaker[Session], column: str, value: str, field: str
) -> None:
    """A row written around the profile checks (by hand, by an old version) still never sends."""
    reminder = _reminder(loaded)
    with transaction(loaded) as session:
        session.execute(
            update(models.Notification)
            .where(models.Notification.id == reminder.id)
            .values({column: value})
        )
        claim_due(session, reminder.due_at, 100)
    mailer = MemoryMailer()
    delivery = Delivery(loaded, mailer, Renderer(ROOT / "templates"))
    assert deliver_one(delivery, reminder.id, reminder.due_at) is Outcome.FAILED
    assert mailer.messages == []
    with loaded() as session:
        row = session.get_one(models.Notification, reminder.id)
        assert row.status == Status.FAILED
        assert field in (row.last_error or "")


def test_a_subject_that_renders_to_two_lines_fails_without_sending(
    loaded: sessionmaker[Session],
) -> None:
    reminder = _reminder(loaded)
    context = dict(reminder.context)
    context["routine"] = {**context["routine"], "name": "Utvärdering\nBcc: x@evil.example"}
    with transaction(loaded) as session:
        session.execute(
            update(models.Notification)
            .where(models.Notification.id == reminder.id)
            .values(context=context, template="styrning-paminnelse")
        )
        claim_due(session, reminder.due_at, 100)
    mailer = MemoryMailer()
    delivery = Delivery(loaded, mailer, Renderer(ROOT / "templates"))
    assert deliver_one(delivery, reminder.id, reminder.due_at) is Outcome.FAILED
    assert mailer.messages == []


# --------------------------------------------------------------------------- escaping, end to end


def test_html_and_icalendar_escaping_in_a_delivered_invite(
    tmp_path: Path, session_factory: sessionmaker[Session]
) -> None:
    from service.booking import book_meeting

    variant = write_variant(
        tmp_path,
        "    name: Samverkansmöte våren\n",
        '    name: "Möte <b>våren</b> & co; del 1, 2"\n',
    )
    text = variant.read_text(encoding="utf-8").replace(
        "    name: Stadshuset\n", '    name: "Stadshuset; sal 3, <plan 2>"\n'
    )
    variant.write_text(text, encoding="utf-8")
    load(session_factory, variant, NOW)
    with transaction(session_factory) as session:
        municipality_id = session.scalars(select(models.Municipality.id)).one()
        book_meeting(
            session, municipality_id, "samverkansmote-var", "2027-04-13", "13:00", None, NOW, 400
        )
    with session_factory() as session:
        invite = session.scalars(
            select(models.Notification).where(models.Notification.purpose == "kallelse")
        ).first()
        assert invite is not None
        session.expunge(invite)
    with transaction(session_factory) as session:
        claim_due(session, invite.due_at, 100)
    mailer = MemoryMailer()
    delivery = Delivery(session_factory, mailer, Renderer(ROOT / "templates"))
    assert deliver_one(delivery, invite.id, invite.due_at) is Outcome.SENT
    (sent,) = mailer.messages
    parsed = email.message_from_bytes(
        sent.as_bytes(policy=email.policy.SMTP), policy=email.policy.default
    )
    html = next(p for p in parsed.walk() if p.get_content_type() == "text/html").get_content()
    assert "<b>" not in html and "<plan 2>" not in html
    assert "&lt;plan 2&gt;" in html
    plain = next(p for p in parsed.walk() if p.get_content_type() == "text/plain").get_content()
    assert "Stadshuset; sal 3, <plan 2>" in plain  # plain text is not HTML-escaped
    calendar_part = next(p for p in parsed.walk() if p.get_content_type() == "text/calendar")
    raw = calendar_part.get_content()
    unfolded = raw.replace("\r\n ", "")
    assert "LOCATION:Stadshuset\\; sal 3\\, <plan 2>" in unfolded
    assert "\\; del 1\\, 2" in unfolded
    (event,) = icalendar.Calendar.from_ical(raw).walk("VEVENT")
    assert str(event["LOCATION"]) == "Stadshuset; sal 3, <plan 2>"
    assert str(event["SUMMARY"]).startswith("Möte <b>våren</b> & co; del 1, 2")
    assert str(parsed["Subject"]).count("\n") == 0
