"""`outbox.sync` (scheduler/outbox/rows.py) against an oracle written from its rules.

Rows in every state (pending, in retry, queued, sending, sent, failed, cancelled), due either
side of `now` and of the scope's edge, each wanted again unchanged, changed, moved, too late,
or not at all; wanted keys with no row. After the sync every row holds what the module's
rules say, and the counts agree. sync decides on plain rows and loads as objects only the
rows it changes, so the oracle is also the check that no change is decided and then lost.
Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

import models
from models import Status
from models.db import transaction
from scheduler import outbox
from scheduler.outbox.rows import _CHANGEABLE, Wanted
from tests.faults.harness import write_profile
from tests.profiles import load

LOADED_AT = dt.datetime(2027, 8, 1, 10, 0, tzinfo=dt.UTC)
NOW = dt.datetime(2027, 9, 15, 6, 0, tzinfo=dt.UTC)
EDGE = NOW - dt.timedelta(days=1)  # the scope: this municipality's rows due from here
KEYS = [f"sync-{i}" for i in range(10)]
REASON = "not wanted any more"


def at(days: int) -> dt.datetime:
    return NOW + dt.timedelta(days=days)


@pytest.fixture
def municipality(session_factory: sessionmaker[Session], tmp_path: Path) -> int:
    load(session_factory, write_profile(tmp_path / "sync.yaml", 1), LOADED_AT)
    with transaction(session_factory) as session:
        session.execute(delete(models.DeliveryAttempt))
        session.execute(delete(models.Notification))
        return session.scalars(select(models.Municipality.id)).one()


rows_drawn = st.fixed_dictionaries(
    {
        "status": st.sampled_from(list(Status)),
        "in_retry": st.booleans(),
        "due": st.integers(-3, 3),
        "template": st.sampled_from(["a", "b"]),
        "name": st.sampled_from(["Anna", "Berit"]),
    }
)
wanted_drawn = st.fixed_dictionaries(
    {
        "due": st.integers(-3, 3),
        "template": st.sampled_from(["a", "b"]),
        "name": st.sampled_from(["Anna", "Berit"]),
        "late": st.booleans(),  # skip_if_late
    }
)


def wanted(municipality: int, key: str, w: dict[str, Any]) -> Wanted:
    return Wanted(
        key=key,
        municipality_id=municipality,
        routine_key="r",
        occurrence="2027",
        purpose=key,
        message_id=f"<{key}@example.se>",
        template=w["template"],
        context={"n": 1, "text": "Åsa"},
        person_id=None,
        roles=(),
        recipient_email="a@example.se",
        recipient_name=w["name"],
        due_at=at(w["due"]),
        skip_if_late=w["late"],
    )


def expected(
    row: dict[str, Any] | None, want: Wanted | None
) -> tuple[str, str, str, dt.datetime, str | None] | None:
    """(status, template, name, due_at, cancel reason) after the sync; None: no row."""
    too_late = want is not None and want.skip_if_late and want.due_at < NOW
    if row is None:
        if want is None or too_late:
            return None
        return (Status.PENDING, want.template, want.recipient_name, max(want.due_at, NOW), None)
    due = at(row["due"])
    before = (row["status"], row["template"], row["name"], due, None)
    open_ = row["status"] == Status.PENDING and not row["in_retry"]
    if want is None:
        return (Status.CANCELLED, *before[1:4], REASON) if open_ and due >= EDGE else before
    fields = (want.template, want.recipient_name, max(want.due_at, NOW))
    if row["status"] == Status.CANCELLED:
        return before if too_late else (Status.PENDING, *fields, None)
    if not open_:
        return before
    if too_late and due != want.due_at:
        return (Status.CANCELLED, *before[1:4], "its moment has passed")
    keep = due == want.due_at or (due <= NOW and want.due_at <= NOW)
    return (Status.PENDING, want.template, want.recipient_name, due if keep else fields[2], None)


def test_the_sync_reads_every_column_a_replan_may_change() -> None:
    fields = wanted(1, "k", {"template": "a", "name": "A", "due": 0, "late": False}).fields(NOW)
    assert set(_CHANGEABLE) == set(fields)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_sync_leaves_every_row_as_its_rules_say(
    session_factory: sessionmaker[Session], municipality: int, data: st.DataObject
) -> None:
    rows = {k: data.draw(st.none() | rows_drawn, label=k) for k in KEYS}
    wants = {k: data.draw(st.none() | wanted_drawn, label=f"want {k}") for k in KEYS}
    with transaction(session_factory) as session:
        session.execute(delete(models.Notification))
        for key, r in rows.items():
            if r is None:
                continue
            session.add(
                models.Notification(
                    idempotency_key=key,
                    municipality_id=municipality,
                    routine_key="r",
                    occurrence="2027",
                    purpose=key,
                    template=r["template"],
                    context={"n": 1, "text": "Åsa"},
                    person_id=None,
                    roles=[],
                    recipient_email="a@example.se",
                    recipient_name=r["name"],
                    due_at=at(r["due"]),
                    status=r["status"],
                    attempts=1 if r["in_retry"] else 0,
                    last_error="451 later" if r["in_retry"] else None,
                    message_id=f"<{key}@example.se>",
                    created_at=LOADED_AT,
                    updated_at=LOADED_AT,
                )
            )
    targets = {k: wanted(municipality, k, w) for k, w in wants.items() if w is not None}
    n = models.Notification
    scope = (n.municipality_id == municipality) & (n.due_at >= EDGE)
    with transaction(session_factory) as session:
        result = outbox.sync(session, targets.values(), scope, NOW, REASON)
    with session_factory() as session:
        after = {
            r.idempotency_key: (r.status, r.template, r.recipient_name, r.due_at, r.cancel_reason)
            for r in session.scalars(select(n))
        }
    want_after = {k: e for k in KEYS if (e := expected(rows[k], targets.get(k))) is not None}
    assert after == want_after
    created = [k for k in KEYS if rows[k] is None and k in want_after]
    revived = [
        k
        for k in KEYS
        if rows[k] is not None
        and rows[k]["status"] == Status.CANCELLED
        and want_after[k][0] == Status.PENDING
    ]
    cancelled = [
        k
        for k in KEYS
        if rows[k] is not None
        and rows[k]["status"] != Status.CANCELLED
        and want_after[k][0] == Status.CANCELLED
    ]
    changed = [
        k
        for k in KEYS
        if rows[k] is not None
        and rows[k]["status"] == Status.PENDING
        and want_after[k][0] == Status.PENDING
        and want_after[k][1:4] != (rows[k]["template"], rows[k]["name"], at(rows[k]["due"]))
    ]
    unchanged = [
        k
        for k in KEYS
        if rows[k] is not None
        and k in targets
        and rows[k]["status"] == Status.PENDING
        and not rows[k]["in_retry"]
        and k not in changed
        and k not in cancelled
    ]
    assert (result.created, result.revived, len(result.cancelled)) == (
        len(created),
        len(revived),
        len(cancelled),
    )
    assert (result.updated, result.unchanged) == (len(changed), len(unchanged))
