"""Loading a profile: validated whole, one transaction, idempotent; bad input changes nothing."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

import models
from core.errors import ProfileError
from tests.profiles import MINIMAL, load, refusal, snapshot, write_variant

NOW = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC)

# (what is wrong, text to replace, replacement, expected "line: field: message" fragment)
BAD = [
    ("yaml syntax", "  key: liten\n", "  key: [liten\n", "minimal.yaml:4: YAML syntax"),
    (
        "unknown role",
        "      - role: elevhalsochef\n",
        "      - role: elevhalsochief\n",
        ":29: people[0].roles[0].role: unknown role 'elevhalsochief'",
    ),
    (
        "unknown unit",
        "        unit: ekskolan\n        to:",
        "        unit: almskolan\n        to:",
        ":35: people[1].roles[0].unit: unknown unit 'almskolan'",
    ),
    ("invalid e-mail", "email: anna@liten.se", "email: anna(at)liten.se", ":27: people[0].email:"),
    (
        "31 April",
        "date: {month: 6, day: 30}",
        "date: {month: 4, day: 31}",
        ":49: routines[0].when.date: 31 April does not exist",
    ),
    (
        "unknown key",
        "    kind: deadline\n",
        "    kind: deadline\n    colour: blue\n",
        ":48: routines[0].colour: unknown field",
    ),
    (
        "never occurs",
        "    kind: deadline\n",
        "    kind: deadline\n    active: {first: 2001, last: 2002}\n",
        "routines[0].when: the routine never occurs",
    ),
    (
        "duplicate key",
        "  name: Lilla kommunen\n",
        "  name: Lilla kommunen\n  name: Andra\n",
        ":5: municipality.name: duplicate key 'name'",
    ),
    (
        "unknown role in a routine",
        "        to: [rektor]\n",
        "        to: [rector]\n",
        ":57: routines[0].messages[1].to[0]: unknown role 'rector'",
    ),
    (
        "unknown unit kind in a scope",
        "        to: [rektor]\n",
        "        to: [rektor@hogskola]\n",
        "routines[0].messages[1].to[0]: unknown unit or unit kind 'hogskola'",
    ),
    (
        "impossible booking time",
        "      duration_minutes: 120\n",
        '      duration_minutes: 120\n      time: "25:00"\n',
        "routines[1].meeting.time",
    ),
    (
        "header injection in a name",
        "    name: Bo Rektor\n",
        '    name: "Bo\\r\\nBcc: x@evil.example"\n',
        ":31: people[1].name: must not contain line breaks",
    ),
]


@pytest.mark.parametrize(("case", "old", "new", "expected"), BAD, ids=[b[0] for b in BAD])
def test_bad_profile_is_refused_naming_file_line_and_field_and_changes_nothing(
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
    assert str(bad) in message
    assert expected in message
    assert "nothing was changed" in message or "YAML" in message or "duplicate" in message


def test_non_utf8_profile_is_refused(
    tmp_path: Path, session_factory: sessionmaker[Session]
) -> None:
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(
        MINIMAL.read_text(encoding="utf-8")
        .replace("Utvärdering", "Utv\udce4rdering", 1)
        .encode("utf-8", "surrogateescape")
    )
    with pytest.raises(ProfileError, match=r"latin1.yaml:\d+: the file is not UTF-8"):
        load(session_factory, bad, NOW)


def test_missing_attachment_is_refused(
    tmp_path: Path, session_factory: sessionmaker[Session]
) -> None:
    bad = write_variant(
        tmp_path, "    kind: deadline\n", "    kind: deadline\n    attachments: [saknas.pdf]\n"
    )
    with pytest.raises(
        ProfileError,
        match=re.escape("routines[0].attachments[0]: attachment 'saknas.pdf' does not exist"),
    ):
        load(session_factory, bad, NOW)


def test_loading_the_same_file_twice_changes_nothing(
    engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    first = load(session_factory, MINIMAL, NOW)
    assert first.changed and first.plan.created > 0
    before = snapshot(engine)
    second = load(session_factory, MINIMAL, NOW + dt.timedelta(hours=1))
    assert not second.changed
    assert second.plan.created == second.plan.updated == second.plan.cancelled == 0
    assert snapshot(engine) == before


def test_changed_routine_replans_only_future_messages(
    tmp_path: Path, session_factory: sessionmaker[Session]
) -> None:
    load(session_factory, MINIMAL, NOW)
    with session_factory() as session, session.begin():
        # Pretend the 2027 reminder 30 days before already went out.
        sent = session.scalars(
            select(models.Notification).where(models.Notification.purpose == "paminnelse-30")
        ).one()
        sent.status = models.Status.SENT
        sent_key = sent.idempotency_key
    changed = write_variant(tmp_path, "before: {days: 30}", "before: {days: 20}")
    result = load(session_factory, changed, NOW)
    assert result.changed
    with session_factory() as session:
        rows = {r.idempotency_key: r for r in session.scalars(select(models.Notification))}
    assert rows[sent_key].status == models.Status.SENT  # the past is not rewritten
    assert rows[sent_key].due_at.date() == dt.date(2027, 5, 31)


def test_moved_future_reminder_is_updated_in_place(
    tmp_path: Path, session_factory: sessionmaker[Session]
) -> None:
    load(session_factory, MINIMAL, NOW)
    changed = write_variant(tmp_path, "before: {days: 30}", "before: {days: 20}")
    result = load(session_factory, changed, NOW)
    assert result.plan.updated == 1
    with session_factory() as session:
        row = session.scalars(
            select(models.Notification).where(models.Notification.purpose == "paminnelse-30")
        ).one()
    assert row.due_at.date() == dt.date(2027, 6, 10)  # 30 June 2027 − 20 days, a Thursday


def test_removed_message_cancels_its_pending_rows(
    tmp_path: Path, session_factory: sessionmaker[Session]
) -> None:
    load(session_factory, MINIMAL, NOW)
    text = MINIMAL.read_text(encoding="utf-8")
    start = text.index("      - purpose: underlag")
    end = text.index("  - key: samverkansmote-var")
    trimmed = tmp_path / "trimmed.yaml"
    trimmed.write_text(text[:start] + text[end:], encoding="utf-8")
    result = load(session_factory, trimmed, NOW)
    assert result.plan.cancelled >= 1
    with session_factory() as session:
        statuses = set(
            session.scalars(
                select(models.Notification.status).where(models.Notification.purpose == "underlag")
            )
        )
    assert statuses == {models.Status.CANCELLED}
