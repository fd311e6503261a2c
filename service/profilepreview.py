"""What loading a profile would change, found by loading it and rolling the load back.

`preview_profile` validates the profile exactly as `samverkan load` does, then runs the very
same load and re-plan (`service.profilesync.load_profile`) inside a savepoint that is always
rolled back, and compares what it read before and after: the outbox's planned rows (messages
added, cancelled, moved, their recipients, the invitations that would go out), the people and
their roles, the bookings. The preview therefore cannot disagree with what applying does, and
the database is left as it was.

The web app's two steps (`preview_upload`, `apply_upload`) add what an upload needs: the
profile must be the viewer's own municipality's, and what is applied is exactly the text that
was previewed (its SHA-256) on the database as it was previewed (`ProfileChanges.state`, a
digest of what the preview read): anything else is refused with `StalePreview`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

import models
from core.errors import ProfileError
from scheduler.calendar import STOCKHOLM
from scheduler.spec import RESERVED_ROUTINE_KEYS
from service.profilecheck import ValidProfile, validate_profile
from service.profilesync import LoadResult, load_profile
from service.viewer import Viewer
from service.yamlsource import MAX_BYTES, parse_bytes

DEFAULT_HORIZON_DAYS = 400
AUDIT_ACTION = "profile.apply"


@dataclass(frozen=True)
class Upload:
    """A profile's bytes that are not (or not yet) a file: read as if they were `path`
    (its name in errors, its folder for the attachments)."""

    raw: bytes
    path: Path


# --- what is compared ---------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One planned (pending) outbox row, as far as a preview compares it."""

    key: str
    routine: str
    occurrence: str
    purpose: str
    recipient: str  # the person's name (or the address of an external recipient)
    due_at: dt.datetime
    method: str | None  # the invitation's iTIP method, None for a message without one
    content: str  # a digest of what the row renders (template and context)

    @property
    def message(self) -> tuple[str, str, str]:
        return (self.routine, self.occurrence, self.purpose)


@dataclass(frozen=True)
class State:
    rows: dict[str, Row]
    people: dict[str, tuple[str, bool, tuple[str, ...]]]  # key -> name, active, roles
    bookings: dict[tuple[str, str], tuple[str, ...]]  # (routine, occurrence) -> fields
    routine_names: dict[str, str]
    digest: str


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _local(moment: dt.datetime) -> str:
    return _utc(moment).astimezone(STOCKHOLM).strftime("%Y-%m-%d %H:%M")


def read_state(session: Session, municipality_id: int | None) -> State:
    """What a load may change for one municipality (nothing when it is not loaded yet)."""
    if municipality_id is None:
        return State({}, {}, {}, {}, hashlib.sha256(b"none").hexdigest())
    n = models.Notification
    rows: dict[str, Row] = {}
    digest = hashlib.sha256()
    found = session.scalars(
        select(n)
        .where(n.municipality_id == municipality_id, n.status == models.Status.PENDING)
        .where(n.routine_key.not_in(sorted(RESERVED_ROUTINE_KEYS)))
        .order_by(n.idempotency_key)
    )
    for row in found:
        meeting = row.context.get("meeting") if isinstance(row.context, dict) else None
        content = json.dumps([row.template, row.context], sort_keys=True, default=str)
        rows[row.idempotency_key] = Row(
            key=row.idempotency_key,
            routine=row.routine_key,
            occurrence=row.occurrence,
            purpose=row.purpose,
            recipient=row.recipient_name or row.recipient_email,
            due_at=_utc(row.due_at),
            method=str(meeting.get("method", "REQUEST")) if isinstance(meeting, dict) else None,
            content=hashlib.sha256(content.encode()).hexdigest(),
        )
        digest.update(
            repr(
                (row.idempotency_key, row.recipient_email, _utc(row.due_at), row.attempts)
            ).encode()
        )
        digest.update(content.encode())
    people: dict[str, tuple[str, bool, tuple[str, ...]]] = {}
    units = {
        u.id: u.key
        for u in session.scalars(
            select(models.Unit).where(models.Unit.municipality_id == municipality_id)
        )
    }
    for person in session.scalars(
        select(models.Person).where(models.Person.municipality_id == municipality_id)
    ):
        roles = tuple(
            sorted(
                f"{r.role}@{units.get(r.unit_id, '') if r.unit_id else ''}"
                f"[{r.valid_from or ''}..{r.valid_to or ''}]"
                for r in person.roles
            )
        )
        people[person.key] = (person.name, person.active, roles)
    routines = {
        r.id: r
        for r in session.scalars(
            select(models.Routine).where(models.Routine.municipality_id == municipality_id)
        )
    }
    bookings: dict[tuple[str, str], tuple[str, ...]] = {}
    if routines:
        for b in session.scalars(
            select(models.Booking).where(models.Booking.routine_id.in_(sorted(routines)))
        ):
            bookings[(routines[b.routine_id].key, b.occurrence)] = (
                _local(b.starts_at),
                _local(b.ends_at)[-5:],
                b.location or "",
                "inställt" if b.cancelled_at else "",
                str(b.sequence),
            )
    municipality = session.get_one(models.Municipality, municipality_id)
    digest.update(
        repr(
            (
                municipality.profile_sha256,
                _utc(municipality.loaded_at).isoformat(),
                sorted(people.items()),
                sorted(bookings.items()),
                sorted((r.key, r.spec_sha256, r.active) for r in routines.values()),
            )
        ).encode()
    )
    names = {r.key: r.name for r in routines.values()}
    return State(rows, people, bookings, names, digest.hexdigest())


# --- the changes --------------------------------------------------------------------------


@dataclass(frozen=True)
class MessageChange:
    """One message (a routine's occurrence and purpose) that the load changes."""

    routine: str
    routine_name: str
    occurrence: str
    purpose: str
    due: str  # local time (Europe/Stockholm), the earliest of its rows
    old_due: str = ""  # for a moved message: before
    recipients: tuple[str, ...] = ()
    added: tuple[str, ...] = ()  # recipients added
    removed: tuple[str, ...] = ()  # recipients removed


@dataclass(frozen=True)
class InvitationChange:
    """A meeting's invitations (REQUEST) or call-offs (CANCEL) the load would send."""

    routine: str
    routine_name: str
    occurrence: str
    method: str
    recipients: tuple[str, ...]


@dataclass(frozen=True)
class PersonChange:
    key: str
    name: str
    change: str  # "ny", "borttagen", "ändrade roller", "nytt namn"


@dataclass(frozen=True)
class BookingChange:
    routine: str
    routine_name: str
    occurrence: str
    old: str
    new: str


@dataclass
class ProfileChanges:
    municipality: str
    profile_sha256: str
    state: str  # digest of what the preview read before loading: see `apply_upload`
    added: list[MessageChange] = field(default_factory=list)
    cancelled: list[MessageChange] = field(default_factory=list)
    moved: list[MessageChange] = field(default_factory=list)
    recipients: list[MessageChange] = field(default_factory=list)
    reworded: list[MessageChange] = field(default_factory=list)  # same rows, new content
    invitations: list[InvitationChange] = field(default_factory=list)
    people: list[PersonChange] = field(default_factory=list)
    bookings: list[BookingChange] = field(default_factory=list)
    # Row level, by idempotency key: what the outbox's planned rows become.
    rows_added: frozenset[str] = frozenset()
    rows_cancelled: frozenset[str] = frozenset()
    rows_changed: frozenset[str] = frozenset()  # same key, new due time or content

    @property
    def counts(self) -> dict[str, int]:
        return {
            "nya": len(self.added),
            "flyttade": len(self.moved),
            "inställda": len(self.cancelled),
            "ändrade mottagare": len(self.recipients),
            "ändrat innehåll": len(self.reworded),
            "kallelser": len(self.invitations),
            "personer": len(self.people),
            "bokningar": len(self.bookings),
        }

    @property
    def empty(self) -> bool:
        return not (self.rows_added or self.rows_cancelled or self.rows_changed) and not (
            self.people or self.bookings
        )


def compare(before: State, after: State, municipality: str, sha: str) -> ProfileChanges:
    """The changes from `before` to `after` (both read by `read_state`)."""
    old, new = before.rows, after.rows
    changes = ProfileChanges(municipality, sha, before.digest)
    changes.rows_added = frozenset(new.keys() - old.keys())
    changes.rows_cancelled = frozenset(old.keys() - new.keys())
    changes.rows_changed = frozenset(
        k
        for k in old.keys() & new.keys()
        if (old[k].due_at, old[k].content) != (new[k].due_at, new[k].content)
    )
    names = before.routine_names | after.routine_names
    old_messages = _by_message(old.values())
    new_messages = _by_message(new.values())
    for message in sorted(old_messages.keys() | new_messages.keys(), key=_order(old, new)):
        was, will = old_messages.get(message, []), new_messages.get(message, [])

        def change(rows: list[Row], **extra: Any) -> MessageChange:
            return _message_change(message, names, rows, **extra)  # noqa: B023 (used at once)

        if not was:
            changes.added.append(change(will))
            continue
        if not will:
            changes.cancelled.append(change(was))
            continue
        before_due = min(r.due_at for r in was)
        after_due = min(r.due_at for r in will)
        if {r.due_at for r in was} != {r.due_at for r in will}:
            changes.moved.append(change(will, old_due=_local(before_due)))
        people_before = {r.recipient for r in was}
        people_after = {r.recipient for r in will}
        if people_before != people_after:
            changes.recipients.append(
                change(
                    will,
                    added=tuple(sorted(people_after - people_before)),
                    removed=tuple(sorted(people_before - people_after)),
                )
            )
        elif (
            any(r.key in changes.rows_changed and r.due_at == old[r.key].due_at for r in will)
            and after_due == before_due
        ):
            changes.reworded.append(change(will))
    changes.invitations = _invitations(old, new, names)
    changes.people = _people(before, after)
    changes.bookings = _bookings(before, after, names)
    return changes


def _message_change(
    message: tuple[str, str, str], names: dict[str, str], rows: list[Row], **extra: Any
) -> MessageChange:
    routine, occurrence, purpose = message
    return MessageChange(
        routine,
        names.get(routine, routine),
        occurrence,
        purpose,
        due=_local(min(r.due_at for r in rows)),
        recipients=tuple(sorted(r.recipient for r in rows)),
        **extra,
    )


def _by_message(rows: Any) -> dict[tuple[str, str, str], list[Row]]:
    grouped: dict[tuple[str, str, str], list[Row]] = defaultdict(list)
    for row in rows:
        grouped[row.message].append(row)
    return grouped


def _order(old: dict[str, Row], new: dict[str, Row]) -> Any:
    first: dict[tuple[str, str, str], dt.datetime] = {}
    for row in [*old.values(), *new.values()]:
        if row.message not in first or row.due_at < first[row.message]:
            first[row.message] = row.due_at
    return lambda message: (first[message], message)


def _invitations(
    old: dict[str, Row], new: dict[str, Row], names: dict[str, str]
) -> list[InvitationChange]:
    """Invitation rows that are new or say something new: each would go out as it stands."""
    going: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    first: dict[tuple[str, str, str], dt.datetime] = {}
    for key, row in new.items():
        if row.method is None:
            continue
        if key in old and old[key].content == row.content and old[key].due_at == row.due_at:
            continue
        which = (row.routine, row.occurrence, row.method)
        going[which].add(row.recipient)
        first[which] = min(first.get(which, row.due_at), row.due_at)
    return [
        InvitationChange(r, names.get(r, r), o, m, tuple(sorted(going[(r, o, m)])))
        for r, o, m in sorted(going, key=lambda w: (first[w], w))
    ]


def _people(before: State, after: State) -> list[PersonChange]:
    found = []
    for key in sorted(before.people.keys() | after.people.keys()):
        was, will = before.people.get(key), after.people.get(key)
        if was == will:
            continue
        if will is None:  # people are never deleted, only made inactive; kept for safety
            found.append(PersonChange(key, was[0] if was else key, "borttagen"))
        elif was is None or (will[1] and not was[1]):
            found.append(PersonChange(key, will[0], "ny"))
        elif was[1] and not will[1]:
            found.append(PersonChange(key, will[0], "borttagen"))
        elif was[2] != will[2]:
            found.append(PersonChange(key, will[0], "ändrade roller"))
        else:
            found.append(PersonChange(key, will[0], "ändrade uppgifter"))
    return found


def _bookings(before: State, after: State, names: dict[str, str]) -> list[BookingChange]:
    found = []
    for key in sorted(before.bookings.keys() | after.bookings.keys()):
        was, will = before.bookings.get(key), after.bookings.get(key)
        if was == will:
            continue
        found.append(
            BookingChange(
                key[0], names.get(key[0], key[0]), key[1], _booking_text(was), _booking_text(will)
            )
        )
    return found


def _booking_text(fields: tuple[str, ...] | None) -> str:
    if fields is None:
        return "–"
    start, end, place, cancelled, _sequence = fields
    text = f"{start}–{end}" + (f" {place}" if place else "")
    return f"{text} ({cancelled})" if cancelled else text


# --- preview and apply ---------------------------------------------------------------------


def validate(source: Path | Upload, today: dt.date) -> ValidProfile:
    """Validate a profile file or an upload by the very checks of `samverkan load`."""
    if isinstance(source, Upload):
        if len(source.raw) > MAX_BYTES:
            raise ProfileError(
                f"{source.path}: the file is larger than {MAX_BYTES} bytes; a profile may be "
                f"at most {MAX_BYTES}"
            )
        return validate_profile(source.path, today, raw=source.raw)
    return validate_profile(source, today)


def _municipality_id(session: Session, key: str) -> int | None:
    return session.scalar(select(models.Municipality.id).where(models.Municipality.key == key))


def preview_valid(
    session: Session, valid: ValidProfile, now: dt.datetime, horizon_days: int
) -> ProfileChanges:
    """Load `valid` in a savepoint that is always rolled back; what it changed."""
    key = valid.profile.municipality.key
    before = read_state(session, _municipality_id(session, key))
    savepoint = session.begin_nested()
    try:
        load_profile(session, valid, now, horizon_days)
        session.flush()
        after = read_state(session, _municipality_id(session, key))
    finally:
        savepoint.rollback()
    return compare(before, after, key, valid.sha256)


def preview_profile(
    session: Session,
    source: Path | Upload,
    now: dt.datetime,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
) -> ProfileChanges:
    """What loading `source` at `now` would change; nothing is written.

    Raises ProfileError (file:line: field: problem, as `samverkan load`) for a bad profile.
    """
    from scheduler.calendar import local_date

    valid = validate(source, local_date(now))
    return preview_valid(session, valid, now, horizon_days)


# --- the web's upload: preview, then apply what was previewed -------------------------------


class NotYours(Exception):
    """The profile is another municipality's, or the viewer is not a coordinator."""


class StalePreview(Exception):
    """What is applied is not what was previewed (other text, or the database changed)."""


def upload_path(session: Session, viewer: Viewer) -> Path:
    """An upload stands in for the municipality's profile file: its name, its folder."""
    municipality = session.get_one(models.Municipality, viewer.municipality_id)
    return Path(municipality.profile_path)


def _own(session: Session, viewer: Viewer, key: object) -> None:
    municipality = session.get_one(models.Municipality, viewer.municipality_id)
    if not viewer.is_coordinator or key != municipality.key:
        raise NotYours("the profile is not this coordinator's municipality's")


def _claimed_key(raw: bytes) -> object:
    """The municipality key an upload names, read before it is validated (so another
    municipality's profile is refused as such, whatever else is wrong with it)."""
    try:
        data = parse_bytes(raw, Path("upload")).data
    except ProfileError:
        return None
    section = data.get("municipality") if isinstance(data, dict) else None
    return section.get("key") if isinstance(section, dict) else None


def _valid_upload(session: Session, viewer: Viewer, raw: bytes, now: dt.datetime) -> ValidProfile:
    from scheduler.calendar import local_date

    claimed = _claimed_key(raw)
    if claimed is not None:
        _own(session, viewer, claimed)
    valid = validate(Upload(raw, upload_path(session, viewer)), local_date(now))
    _own(session, viewer, valid.profile.municipality.key)
    return valid


def preview_upload(
    session: Session, viewer: Viewer, raw: bytes, now: dt.datetime, horizon_days: int
) -> ProfileChanges:
    valid = _valid_upload(session, viewer, raw, now)
    return preview_valid(session, valid, now, horizon_days)


def apply_upload(
    session: Session,
    viewer: Viewer,
    raw: bytes,
    sha256: str,
    state: str,
    now: dt.datetime,
    horizon_days: int,
) -> LoadResult:
    """Load exactly the previewed text, on the database as it was previewed; audited."""
    if not hmac.compare_digest(hashlib.sha256(raw).hexdigest(), sha256):
        raise StalePreview("the text is not the one previewed")
    valid = _valid_upload(session, viewer, raw, now)
    current = read_state(session, viewer.municipality_id)
    if not hmac.compare_digest(current.digest, state):
        raise StalePreview("the database changed since the preview")
    result = load_profile(session, valid, now, horizon_days)
    plan = result.plan
    session.add(
        models.WebAudit(
            municipality_id=viewer.municipality_id,
            at=now,
            actor_id=viewer.person_id,
            action=AUDIT_ACTION,
            detail={
                "sha256": valid.sha256,
                "changed": result.changed,
                "created": plan.created,
                "updated": plan.updated,
                "revived": plan.revived,
                "cancelled": plan.cancelled,
            },
        )
    )
    return result
