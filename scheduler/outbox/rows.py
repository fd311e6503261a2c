"""Planning rows into the outbox: the one insert, the one sync, the one cancel.

`sync` brings the rows of a scope in line with what is wanted for it, whoever plans them (the
routine re-plan, case work, the digest):

- a wanted key with no row is inserted (`insert`: ON CONFLICT DO NOTHING, counted by RETURNING);
- a pending row still wanted is updated in place;
- a cancelled row wanted again is revived: back to pending with the same key and Message-ID,
  its fields updated. Its attempt count and attempt log stay (they are history, and the log's
  numbering continues from the count); the error of an earlier try is cleared, since the row
  is now a fresh message. A cancelled row was never sent (only pending rows, or rows stopped
  at send time before the send, are cancelled), so reviving it cannot send a second copy;
- a pending row of the scope that is not wanted is cancelled with a reason;
- rows queued, sending, sent or failed are never touched, nor a row waiting for a retry
  (pending after a transient failure): that one belongs to the sender until it is done.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

import models
from models import Status

# The width of notification.cancel_reason: every reason is trimmed here, once.
CANCEL_REASON_CHARS = 200
# Bound parameters per statement (SQLite allows 32,766; PostgreSQL 65,535).
CHUNK = 500


@dataclass(frozen=True)
class Wanted:
    """One message as the outbox should hold it."""

    key: str
    municipality_id: int
    routine_key: str
    occurrence: str
    purpose: str
    message_id: str
    template: str
    context: dict[str, Any]
    person_id: int | None
    roles: tuple[str, ...]
    recipient_email: str
    recipient_name: str
    due_at: dt.datetime
    # A reminder whose moment has passed is dropped rather than sent late (case work).
    skip_if_late: bool = False

    def fields(self, now: dt.datetime) -> dict[str, Any]:
        """The columns a re-plan may change; nothing is ever due before `now`."""
        return {
            "template": self.template,
            "context": self.context,
            "person_id": self.person_id,
            "roles": list(self.roles),
            "recipient_email": self.recipient_email,
            "recipient_name": self.recipient_name,
            "due_at": max(self.due_at, now),
        }


# The columns a re-plan may change: the keys of Wanted.fields, read by the sync to compare
# (tests/integration/test_outbox_sync.py checks that the two name the same columns).
_CHANGEABLE = (
    "template",
    "context",
    "person_id",
    "roles",
    "recipient_email",
    "recipient_name",
    "due_at",
)


@dataclass
class SyncResult:
    created: int = 0
    updated: int = 0
    revived: int = 0
    unchanged: int = 0
    cancelled: list[str] = field(default_factory=list)  # purposes of the rows cancelled
    # Per routine key: how many rows were created, updated, revived and cancelled.
    routines: dict[str, Counter[str]] = field(default_factory=dict)

    def count(self, routine_key: str, what: str, n: int = 1) -> None:
        self.routines.setdefault(routine_key, Counter())[what] += n


def in_retry(row: models.Notification) -> bool:
    """Pending after a transient failure: the sender's until it is sent or fails for good."""
    return row.status == Status.PENDING and row.attempts > 0 and row.last_error is not None


def not_in_retry() -> ColumnElement[bool]:
    n = models.Notification
    return or_(n.attempts == 0, n.last_error.is_(None))


def insert(session: Session, rows: Sequence[Wanted], now: dt.datetime) -> list[Wanted]:
    """Insert `rows` as pending; a key that exists already is skipped. Returns those inserted."""
    if not rows:
        return []
    dialect = session.get_bind().dialect.name
    statement_for = postgresql.insert if dialect == "postgresql" else sqlite.insert
    by_key = {row.key: row for row in rows}
    inserted: list[Wanted] = []
    values = [_new_row(row, now) for row in by_key.values()]
    for start in range(0, len(values), CHUNK):
        statement = (
            statement_for(models.Notification)
            .values(values[start : start + CHUNK])
            .on_conflict_do_nothing(index_elements=["idempotency_key"])
            # Counted from RETURNING: psycopg reports rowcount -1 for a multi-row insert.
            .returning(models.Notification.idempotency_key)
        )
        inserted += [by_key[key] for key in session.scalars(statement)]
    return inserted


def _new_row(row: Wanted, now: dt.datetime) -> dict[str, Any]:
    return {
        "idempotency_key": row.key,
        "municipality_id": row.municipality_id,
        "routine_key": row.routine_key,
        "occurrence": row.occurrence,
        "purpose": row.purpose,
        "message_id": row.message_id,
        "status": Status.PENDING,
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
        **row.fields(now),
    }


def cancel(row: models.Notification, now: dt.datetime, reason: str) -> None:
    """Cancel one row (the caller has checked that it may be: pending, or claimed at send)."""
    row.status = Status.CANCELLED
    row.cancel_reason = reason[:CANCEL_REASON_CHARS]
    row.claimed_at = None
    row.updated_at = now


def sync(
    session: Session,
    wanted: Iterable[Wanted],
    scope: ColumnElement[bool],
    now: dt.datetime,
    reason: str,
    admit: Callable[[Wanted], None] | None = None,
) -> SyncResult:
    """Make the rows of `scope` (a condition on notification) and of the wanted keys match
    `wanted`; see the module's docstring for what happens to each row.

    `admit`, when given, is the caller's check of each row about to become pending (inserted
    or revived); it raises to refuse, and the caller's transaction is then rolled back.
    """
    result = SyncResult()
    by_key = {w.key: w for w in wanted}
    acts = _decide(session, by_key, scope, now, result)
    for obj in _objects(session, acts):
        target = acts[obj.id]
        if target is None:
            cancel(obj, now, reason)
            _cancelled(result, obj)
        elif obj.status == Status.CANCELLED:
            if admit is not None:
                admit(target)
            _revive(obj, target, now, result)
        else:
            _update(obj, target, now, result)
    fresh = [w for w in by_key.values() if not _too_late(w, now)]
    if admit is not None:
        for each in fresh:
            admit(each)
    for made in insert(session, fresh, now):
        result.created += 1
        result.count(made.routine_key, "created")
    return result


# What sync reads of a row to decide what to do with it.
_DECIDE = (
    models.Notification.id,
    models.Notification.idempotency_key,
    models.Notification.status,
    models.Notification.attempts,
    models.Notification.last_error,
    *(getattr(models.Notification, name) for name in _CHANGEABLE),
)


def _existing(session: Session, keys: list[str], scope: ColumnElement[bool]) -> list[Any]:
    """The rows of `scope` still pending and not in retry, and the rows of the wanted keys,
    as plain rows (the columns of _DECIDE), in id order."""
    n = models.Notification
    found: dict[int, Any] = {}
    open_in_scope = and_(scope, n.status == Status.PENDING, not_in_retry())
    seen: set[str] = set()
    for row in session.execute(select(*_DECIDE).where(open_in_scope)):
        found[row.id] = row
        seen.add(row.idempotency_key)
    # Then the wanted keys not found in the scope (sent, cancelled, in retry, out of scope);
    # an unchanged re-plan found them all already.
    rest = [key for key in keys if key not in seen]
    for start in range(0, len(rest), CHUNK):
        chunk = rest[start : start + CHUNK]
        for row in session.execute(select(*_DECIDE).where(n.idempotency_key.in_(chunk))):
            found[row.id] = row
    return [found[i] for i in sorted(found)]


def _decide(
    session: Session,
    by_key: dict[str, Wanted],
    scope: ColumnElement[bool],
    now: dt.datetime,
    result: SyncResult,
) -> dict[int, Wanted | None]:
    """Decide on plain rows what happens to each existing row; only the rows to change are
    loaded as objects afterwards (an unchanged re-plan loads none). Returns, by id, what each
    row to change should become (None: cancel it); pops from `by_key` every key that has a
    row, and counts the unchanged rows."""
    acts: dict[int, Wanted | None] = {}
    for row in _existing(session, list(by_key), scope):
        target = by_key.pop(row.idempotency_key, None)
        if target is None:
            if row.status == Status.PENDING and not in_retry(row):
                acts[row.id] = None
        elif row.status == Status.CANCELLED and not _too_late(target, now):
            acts[row.id] = target
        elif row.status == Status.PENDING and not in_retry(row):
            if _changes(row, target, now):
                acts[row.id] = target
            else:
                result.unchanged += 1
    return acts


def _objects(session: Session, ids: Iterable[int]) -> list[models.Notification]:
    """The rows `ids` as objects, in id order, read afresh (the decision was made on what the
    database holds; an object the session kept from earlier must not hide a difference)."""
    n = models.Notification
    wanted = sorted(ids)
    objects: list[models.Notification] = []
    for start in range(0, len(wanted), CHUNK):
        statement = (
            select(n)
            .where(n.id.in_(wanted[start : start + CHUNK]))
            .order_by(n.id)
            .execution_options(populate_existing=True)
        )
        objects += session.scalars(statement)
    return objects


def _too_late(wanted: Wanted, now: dt.datetime) -> bool:
    return wanted.skip_if_late and wanted.due_at < now


def _cancelled(result: SyncResult, row: models.Notification) -> None:
    result.cancelled.append(row.purpose)
    result.count(row.routine_key, "cancelled")


def _changes(row: Any, target: Wanted, now: dt.datetime) -> dict[str, Any]:
    """What an update of the pending `row` (an object or a plain row) to `target` changes:
    the columns and their new values; {"status": ...} when it is to be cancelled instead."""
    values = target.fields(now)
    if _too_late(target, now) and row.due_at != target.due_at:
        return {"status": Status.CANCELLED}
    if row.due_at == target.due_at or (row.due_at <= now and target.due_at <= now):
        values["due_at"] = row.due_at  # an overdue row keeps its place in the queue
    return {k: v for k, v in values.items() if getattr(row, k) != v}


def _update(row: models.Notification, target: Wanted, now: dt.datetime, result: SyncResult) -> None:
    changed = _changes(row, target, now)
    if "status" in changed:
        # Moved to a moment that has passed: dropped, as it would not have been inserted.
        cancel(row, now, "its moment has passed")
        _cancelled(result, row)
        return
    for k, v in changed.items():
        setattr(row, k, v)
    if changed:
        row.updated_at = now
        result.updated += 1
        result.count(row.routine_key, "updated")
    else:
        result.unchanged += 1


def _revive(row: models.Notification, target: Wanted, now: dt.datetime, result: SyncResult) -> None:
    for k, v in target.fields(now).items():
        setattr(row, k, v)
    row.status = Status.PENDING
    row.cancel_reason = None
    row.last_error = None
    row.smtp_reply = None
    row.claimed_at = None
    row.updated_at = now
    result.revived += 1
    result.count(row.routine_key, "revived")
