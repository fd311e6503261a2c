"""What a new profile would change, shown before it is applied (service/profilepreview.py).

The property: for several edits of the example profile, the preview equals what applying
the edit actually does to the outbox's planned rows (compared row by row and message by
message, read from the database by this test), and the preview writes nothing at all, even
when its caller commits.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

import models
from core.errors import ProfileError
from models.db import transaction
from scheduler.spec import RESERVED_ROUTINE_KEYS
from service.profilepreview import ProfileChanges, Upload, preview_profile
from tests.e2e.processes import SAMVERKAN, clean_env
from tests.profiles import EXAMPLE, load, snapshot

LOADED = dt.datetime(2027, 1, 10, 9, 0, tzinfo=dt.UTC)
NOW = LOADED + dt.timedelta(days=1)
HORIZON = 400

HOST = "  - key: samverkansmote-host\n"
UTVARDERING_START = "  - key: utvardering\n"
UTVARDERING_END = "  - key: lasarsstart-material\n"
KARIN = (
    "  - key: karin-ek  # tillförordnad rektor på Centralskolan under Anders Holms ledighet\n"
    "    name: Karin Ek\n"
    "    email: karin.ek@exempelby.se\n"
    "    roles:\n"
    "      - {role: rektor, unit: centralskolan, from: 2027-02-01, to: 2027-06-30}\n"
)
SUBSTITUTE = (
    "  - key: vikarie-kyrkbacken\n"
    "    name: Vera Vikarie\n"
    "    email: vera.vikarie@exempelby.se\n"
    "    roles:\n"
    "      - {role: rektor, unit: kyrkbacksskolan, from: 2027-03-01, to: 2027-06-30}\n"
)


def _replace(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
    return text.replace(old, new)


def _without_utvardering(text: str) -> str:
    start, end = text.index(UTVARDERING_START), text.index(UTVARDERING_END)
    return text[:start] + text[end:]


# name -> (edit of the example profile, which kinds of change it must show at least)
EDITS: dict[str, tuple[Callable[[str], str], set[str]]] = {
    "move a routine's month": (
        lambda t: _replace(t, "    when: {month: 10}\n", "    when: {month: 11}\n"),
        {"moved"},
    ),
    "move a routine's day": (
        lambda t: _replace(
            t, "when: {date: {month: 6, day: 30}}", "when: {date: {month: 6, day: 12}}"
        ),
        {"moved"},
    ),
    "remove a routine": (_without_utvardering, {"cancelled"}),
    "remove a person": (lambda t: _replace(t, KARIN, ""), {"recipients"}),
    "add a substitute": (lambda t: _replace(t, KARIN, KARIN + SUBSTITUTE), {"recipients"}),
    "change a booking's time": (
        lambda t: _replace(
            t,
            '        date: 2027-04-13\n        time: "13:00"\n',
            '        date: 2027-04-13\n        time: "14:30"\n',
        ),
        {"invitations"},
    ),
}


def _folder(tmp_path: Path) -> Path:
    """A copy of the example profile's folder (its attachments with it)."""
    folder = tmp_path / "profil"
    folder.mkdir()
    shutil.copyfile(EXAMPLE, folder / EXAMPLE.name)
    shutil.copytree(EXAMPLE.parent / "material", folder / "material")
    return folder / EXAMPLE.name


def _planned(sessions: sessionmaker[Session]) -> dict[str, tuple[object, ...]]:
    """The pending routine rows, read here independently of the service."""
    n = models.Notification
    with sessions() as session:
        rows = session.scalars(
            select(n).where(
                n.status == models.Status.PENDING,
                n.routine_key.not_in(sorted(RESERVED_ROUTINE_KEYS)),
            )
        )
        return {
            r.idempotency_key: (
                (r.routine_key, r.occurrence, r.purpose),
                r.recipient_name,
                r.due_at.replace(tzinfo=None),
                repr(sorted(r.context.items())) + r.template,
            )
            for r in rows
        }


def _messages(rows: dict[str, tuple[object, ...]]) -> dict[object, list[tuple[object, ...]]]:
    grouped: dict[object, list[tuple[object, ...]]] = defaultdict(list)
    for row in rows.values():
        grouped[row[0]].append(row)
    return grouped


def _check_equal(changes: ProfileChanges, before: dict, after: dict) -> None:  # type: ignore[type-arg]
    assert changes.rows_added == after.keys() - before.keys()
    assert changes.rows_cancelled == before.keys() - after.keys()
    assert changes.rows_changed == {
        k for k in before.keys() & after.keys() if before[k][2:] != after[k][2:]
    }
    old, new = _messages(before), _messages(after)

    def keys(items: list) -> set:  # type: ignore[type-arg]
        return {(i.routine, i.occurrence, i.purpose) for i in items}

    assert keys(changes.added) == new.keys() - old.keys()
    assert keys(changes.cancelled) == old.keys() - new.keys()
    both = old.keys() & new.keys()
    assert keys(changes.moved) == {
        m for m in both if {r[2] for r in old[m]} != {r[2] for r in new[m]}
    }
    assert keys(changes.recipients) == {
        m for m in both if {r[1] for r in old[m]} != {r[1] for r in new[m]}
    }
    for item in changes.recipients:
        m = (item.routine, item.occurrence, item.purpose)
        assert set(item.added) == {r[1] for r in new[m]} - {r[1] for r in old[m]}
        assert set(item.removed) == {r[1] for r in old[m]} - {r[1] for r in new[m]}


@pytest.mark.parametrize("edit", list(EDITS))
def test_the_preview_is_what_applying_does_and_writes_nothing(
    engine: Engine, session_factory: sessionmaker[Session], tmp_path: Path, edit: str
) -> None:
    profile = _folder(tmp_path)
    load(session_factory, profile, LOADED, HORIZON)
    change, kinds = EDITS[edit]
    profile.write_text(change(profile.read_text(encoding="utf-8")), encoding="utf-8")
    before_rows = _planned(session_factory)
    before = snapshot(engine)
    with transaction(session_factory) as session:  # committed: the preview must leave nothing
        changes = preview_profile(session, profile, NOW, HORIZON)
    assert snapshot(engine) == before
    load(session_factory, profile, NOW, HORIZON)
    after_rows = _planned(session_factory)
    assert after_rows != before_rows
    _check_equal(changes, before_rows, after_rows)
    for kind in kinds:
        assert getattr(changes, kind), f"{edit}: no {kind} shown"


def test_the_same_profile_changes_nothing_and_an_upload_reads_like_its_file(
    engine: Engine, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    profile = _folder(tmp_path)
    load(session_factory, profile, LOADED, HORIZON)
    with session_factory() as session:
        same = preview_profile(session, profile, NOW, HORIZON)
        raw = _replace(profile.read_text(encoding="utf-8"), KARIN, "").encode()
        upload = preview_profile(session, Upload(raw, profile), NOW, HORIZON)
    assert same.empty and not same.added and not same.cancelled
    profile.write_bytes(raw)
    with session_factory() as session:
        from_file = preview_profile(session, profile, NOW, HORIZON)
    assert upload == from_file and upload.recipients


def test_the_preview_names_old_and_new_local_times_and_the_invitations(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    profile = _folder(tmp_path)
    load(session_factory, profile, LOADED, HORIZON)
    change, _kinds = EDITS["change a booking's time"]
    raw = change(profile.read_text(encoding="utf-8")).encode()
    with session_factory() as session:
        changes = preview_profile(session, Upload(raw, profile), NOW, HORIZON)
    (booking,) = changes.bookings
    assert booking.old.startswith("2027-04-13 13:00") and booking.new.startswith("2027-04-13 14:30")
    requests = [i for i in changes.invitations if i.method == "REQUEST"]
    assert requests and all(i.routine == "samverkansmote-var" for i in requests)
    moved_day = EDITS["move a routine's day"][0]
    raw = moved_day(profile.read_text(encoding="utf-8")).encode()
    with session_factory() as session:
        changes = preview_profile(session, Upload(raw, profile), NOW, HORIZON)
    underlag = next(m for m in changes.moved if m.purpose == "underlag")
    # Six weeks before 30 June, and before 12 June (a Saturday; 1 May a holiday), Stockholm time.
    assert (underlag.old_due, underlag.due) == ("2027-05-19 08:00", "2027-04-30 08:00")


BAD = [
    (
        "unknown role",
        "      - {role: rektor, unit: kyrkbacksskolan}\n",
        "      - {role: rektorn, unit: kyrkbacksskolan}\n",
        ":181: people[",
        "rektorn",
    ),
    (
        "personal number",
        "    name: Karin Ek\n",
        "    name: Karin 19121212-1212\n",
        ":173: people[",
        "19121212",
    ),
    (
        "yaml syntax",
        "    name: Karin Ek\n",
        "    name: [Karin Ek\n",
        "exempel.yaml:174: YAML syntax",
        None,
    ),
]


@pytest.mark.parametrize(("what", "old", "new", "where", "secret"), BAD, ids=[b[0] for b in BAD])
def test_a_bad_profile_is_refused_with_file_and_line_and_changes_nothing(
    engine: Engine,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
    what: str,
    old: str,
    new: str,
    where: str,
    secret: str | None,
) -> None:
    profile = _folder(tmp_path)
    load(session_factory, profile, LOADED, HORIZON)
    before = snapshot(engine)
    raw = _replace(profile.read_text(encoding="utf-8"), old, new).encode()
    with transaction(session_factory) as session, pytest.raises(ProfileError) as caught:
        preview_profile(session, Upload(raw, profile), NOW, HORIZON)
    message = str(caught.value)
    assert where in message
    if what == "personal number":
        assert "19121212" not in message
    assert snapshot(engine) == before


def test_the_dry_run_command_prints_the_changes_and_changes_nothing(
    database_url: str, engine: Engine, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    profile = _folder(tmp_path)
    load(session_factory, profile, LOADED, HORIZON)
    profile.write_text(_without_utvardering(profile.read_text(encoding="utf-8")), "utf-8")
    before = snapshot(engine)
    env = clean_env(
        SAMVERKAN_DATABASE_URL=database_url,
        SAMVERKAN_VAR_DIR=str(tmp_path / "var"),
        SAMVERKAN_OUTBOX_DIR=str(tmp_path / "outbox"),
        SAMVERKAN_HORIZON_DAYS=str(HORIZON),
        COLUMNS="250",
    )
    done = subprocess.run(
        [SAMVERKAN, "load", str(profile), "--dry-run", "--now", NOW.isoformat()],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "dry run, nothing was changed" in done.stdout
    assert "cancelled" in done.stdout and "Utvärdering av samverkan" in done.stdout
    assert snapshot(engine) == before
