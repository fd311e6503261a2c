"""Occurrences → outbox rows. `compute_plan` is pure; `replan` applies it to the database.

Safe to run any number of times: a row is identified by its idempotency key, and the
database's unique constraint refuses a second copy. Only messages still to come are touched.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from sqlalchemy import ColumnElement, Executable, and_, func, select
from sqlalchemy.orm import Session

import models
from scheduler import lifecycle, outbox, planstamp
from scheduler.calendar import STOCKHOLM
from scheduler.cases.outbox import resync_handovers
from scheduler.directory import Assignment, Holder, RoleDirectory, assignment_rows
from scheduler.identity import event_uid, idempotency_key, message_id_for, sender_domain
from scheduler.municipality import MunicipalitySettings
from scheduler.occurrences import (
    BookingInfo,
    MessageTiming,
    Occurrence,
    message_timings,
    occurrences,
)
from scheduler.places import place_fields
from scheduler.spec import RESERVED_ROUTINE_KEYS, Routine, SchoolYears


@dataclass(frozen=True)
class Municipal:
    """What the planner needs to know of the municipality itself."""

    id: int
    key: str
    name: str
    sender_name: str
    sender_email: str
    send_time: dt.time
    school_years: SchoolYears
    role_names: dict[str, str]
    unit_stages: dict[str, list[str]] = field(default_factory=dict)
    places: dict[str, Any] = field(default_factory=dict)

    @property
    def domain(self) -> str:
        return sender_domain(self.sender_email)


@dataclass(frozen=True)
class PlanningInput:
    municipality: Municipal
    routines: list[tuple[Routine, list[dict[str, str]]]]  # spec, attachment files
    bookings: dict[tuple[str, str], BookingInfo]
    directory: RoleDirectory
    # Who was sent which invitation, by meeting UID (the lifecycle's CANCELs read it).
    invites: dict[str, list[lifecycle.Sent]] = field(default_factory=dict)
    # Routines removed from the profile: only the CANCELs of their called-off meetings.
    retired: list[tuple[Routine, list[dict[str, str]]]] = field(default_factory=list)


@dataclass(frozen=True)
class PlannedRow:
    key: str
    routine: str
    occurrence: str
    purpose: str
    template: str
    context: dict[str, Any]
    recipient: Holder
    due_at: dt.datetime
    message_id: str


@dataclass
class PlanResult:
    created: int = 0
    updated: int = 0
    revived: int = 0  # cancelled rows planned again: pending once more, same key
    cancelled: int = 0
    unchanged: int = 0
    routines: dict[str, Counter[str]] = field(default_factory=dict)
    # Stood on the last full re-plan (scheduler/planstamp.py): nothing compared, nothing
    # written; `unchanged` is then what that re-plan found.
    reused: bool = False

    def of(self, routine_key: str) -> Counter[str]:
        """What the re-plan did to one routine's rows (created, updated, revived, cancelled)."""
        return self.routines.get(routine_key, Counter())


@dataclass
class Plan:
    occurrences: list[Occurrence] = field(default_factory=list)
    rows: list[PlannedRow] = field(default_factory=list)
    timings: list[tuple[MessageTiming, list[Holder]]] = field(default_factory=list)


def compute_plan(data: PlanningInput, start: dt.datetime, end: dt.datetime) -> Plan:
    """Every occurrence and message whose due moment lies in [start, end)."""
    plan = Plan()
    first_year = start.astimezone(STOCKHOLM).year - 1
    last_year = end.astimezone(STOCKHOLM).year
    retired = {routine.key for routine, _ in data.retired}
    for routine, files in [*data.routines, *data.retired]:
        bookings = {occ: b for (key, occ), b in data.bookings.items() if key == routine.key}
        for occurrence in occurrences(
            routine, data.municipality.school_years, range(first_year, last_year + 1), bookings
        ):
            booking = occurrence.booking
            if booking is not None and booking.cancelled_at is not None:
                _plan_called_off(plan, data, routine, files, occurrence, start, end)
            elif routine.key not in retired:
                _plan_occurrence(plan, data, routine, files, occurrence, start, end)
    plan.rows.sort(key=lambda r: (r.due_at, r.key))
    return plan


def _plan_occurrence(
    plan: Plan,
    data: PlanningInput,
    routine: Routine,
    files: list[dict[str, str]],
    occurrence: Occurrence,
    start: dt.datetime,
    end: dt.datetime,
) -> None:
    occurrence_moment = dt.datetime.combine(occurrence.date, dt.time(12), tzinfo=STOCKHOLM)
    if start <= occurrence_moment < end:
        plan.occurrences.append(occurrence)
    for timing in message_timings(routine, occurrence, data.municipality.send_time):
        if not start <= timing.due_at < end:
            continue
        holders = data.directory.resolve(timing.message.to, timing.due_date)
        plan.timings.append((timing, holders))
        base = _occurrence_context(data, routine, files, occurrence, timing)
        for holder in holders:
            plan.rows.append(_row(data.municipality, routine, timing, holder, base))
    _plan_handed_over(plan, data, routine, files, occurrence, start, end)


def _invitations(
    routine: Routine, occurrence: Occurrence, send_time: dt.time
) -> list[MessageTiming]:
    """The timings of the messages that invite (`on: booking`) to a booked occurrence."""
    return [t for t in message_timings(routine, occurrence, send_time) if t.message.on == "booking"]


def _meeting_ahead(occurrence: Occurrence, start: dt.datetime) -> bool:
    return occurrence.booking is not None and occurrence.booking.start > start


def _plan_handed_over(
    plan: Plan,
    data: PlanningInput,
    routine: Routine,
    files: list[dict[str, str]],
    occurrence: Occurrence,
    start: dt.datetime,
    end: dt.datetime,
) -> None:
    """Invitations already out whose roles changed hands: CANCEL to who left, REQUEST to who
    arrived, due now (scheduler/lifecycle.py)."""
    if routine.meeting is None or not _meeting_ahead(occurrence, start) or start >= end:
        return
    m = data.municipality
    uid = event_uid(m.key, routine.key, occurrence.key, m.domain)
    record = data.invites.get(uid)
    if not record:
        return
    today = start.astimezone(STOCKHOLM).date()
    due = [
        (t, data.directory.resolve(t.message.to, today))
        for t in _invitations(routine, occurrence, m.send_time)
        if t.due_at < start
    ]
    assert occurrence.booking is not None
    changes = lifecycle.handed_over(due, record, occurrence.booking.sequence)
    _plan_changes(plan, data, routine, files, occurrence, changes, start)


def _plan_called_off(
    plan: Plan,
    data: PlanningInput,
    routine: Routine,
    files: list[dict[str, str]],
    occurrence: Occurrence,
    start: dt.datetime,
    end: dt.datetime,
) -> None:
    """A called-off meeting: a CANCEL to everyone whose calendar holds it, nothing else."""
    booking = occurrence.booking
    assert booking is not None and booking.cancelled_at is not None
    if routine.meeting is None or not _meeting_ahead(occurrence, start):
        return
    if not start <= lifecycle.due(booking.cancelled_at, start) < end:
        return
    m = data.municipality
    record = data.invites.get(event_uid(m.key, routine.key, occurrence.key, m.domain), [])
    invitations = _invitations(routine, occurrence, m.send_time)
    if not record or not invitations:
        return
    changes = lifecycle.called_off(invitations[0], record, booking.sequence)
    due_at = lifecycle.due(booking.cancelled_at, start)
    _plan_changes(plan, data, routine, files, occurrence, changes, due_at)


def _plan_changes(
    plan: Plan,
    data: PlanningInput,
    routine: Routine,
    files: list[dict[str, str]],
    occurrence: Occurrence,
    changes: list[lifecycle.Change],
    due_at: dt.datetime,
) -> None:
    for change in changes:
        base = _occurrence_context(data, routine, files, occurrence, change.timing)
        meeting = dict(base["meeting"])
        meeting["sequence"] = change.sequence
        if change.method == "CANCEL":
            meeting["method"] = "CANCEL"
        base["meeting"] = meeting
        base["attachments"], base["attachment_files"] = [], []
        row = _row(data.municipality, routine, change.timing, change.recipient, base)
        template = row.template
        if change.kind == "called-off":
            template = lifecycle.CALLED_OFF_TEMPLATE
        elif change.kind == "leaves":
            template = lifecycle.REMOVED_TEMPLATE
        key = idempotency_key(
            data.municipality.key,
            routine.key,
            occurrence.key,
            change.purpose,
            change.recipient.person_key,
        )
        plan.rows.append(
            PlannedRow(
                key=key,
                routine=routine.key,
                occurrence=occurrence.key,
                purpose=change.purpose,
                template=template,
                context=row.context,
                recipient=change.recipient,
                due_at=due_at,
                message_id=message_id_for(key, data.municipality.domain),
            )
        )


def _purpose(timing: MessageTiming) -> str:
    if "round" in timing.extra:
        # Each round of a repeated reminder is its own message, named by its day.
        return f"{timing.message.purpose}-{timing.extra['round']}"
    sequence = timing.extra.get("sequence")
    # A rebooked meeting's invites are new messages (same UID, higher SEQUENCE).
    return (
        f"{timing.message.purpose}-v{sequence}"
        if sequence not in (None, "0")
        else timing.message.purpose
    )


def _row(
    municipality: Municipal,
    routine: Routine,
    timing: MessageTiming,
    holder: Holder,
    base: dict[str, Any],
) -> PlannedRow:
    purpose = _purpose(timing)
    key = idempotency_key(
        municipality.key, routine.key, timing.occurrence.key, purpose, holder.person_key
    )
    context = dict(base)
    context["recipient"] = recipient_context(holder, municipality.unit_stages)
    return PlannedRow(
        key=key,
        routine=routine.key,
        occurrence=timing.occurrence.key,
        purpose=purpose,
        template=timing.message.template,
        context=context,
        recipient=holder,
        due_at=timing.due_at,
        message_id=message_id_for(key, municipality.domain),
    )


def recipient_context(
    holder: Holder, unit_stages: dict[str, list[str]] | None = None
) -> dict[str, Any]:
    """The `recipient` a template sees: name, roles, units (with their school stages when
    `unit_stages` is given: parent-meeting reminders name only those)."""
    units: list[dict[str, Any]]
    if unit_stages is None:
        units = [{"name": name, "kind": kind} for name, kind in holder.units]
    else:
        units = [
            {"name": name, "kind": kind, "stages": unit_stages.get(key, [])}
            for (name, kind), key in zip(holder.units, _keys(holder), strict=True)
        ]
    return {"name": holder.name, "roles": list(holder.role_names), "units": units}


def _keys(holder: Holder) -> tuple[str, ...]:
    return (
        holder.unit_keys
        if len(holder.unit_keys) == len(holder.units)
        else ("",) * len(holder.units)
    )


def _occurrence_context(
    data: PlanningInput,
    routine: Routine,
    files: list[dict[str, str]],
    occurrence: Occurrence,
    timing: MessageTiming,
) -> dict[str, Any]:
    m = data.municipality
    owners = data.directory.resolve(routine.owners, timing.due_date)
    reply_to = None
    if timing.message.reply_to:
        found = data.directory.resolve([timing.message.reply_to], timing.due_date)
        if found:
            reply_to = {
                "name": found[0].name,
                "email": found[0].email,
                "role": found[0].role_names[0],
            }
    return {
        "municipality": m.name,
        "sender": {"name": m.sender_name, "email": m.sender_email},
        "routine": {
            "key": routine.key,
            "name": routine.name,
            "kind": routine.kind.value,
            "description": routine.description,
        },
        "purpose": timing.message.purpose,
        "occurrence": {
            "key": occurrence.key,
            "date": occurrence.date.isoformat(),
            "window_end": occurrence.window_end.isoformat() if occurrence.window_end else None,
            "month": routine.when.month,
            "school_year": occurrence.key if routine.when.school_year else None,
        },
        "due": {
            "date": timing.due_date.isoformat(),
            "days_left": (occurrence.date - timing.due_date).days,
        },
        "meeting": _meeting_context(data, routine, occurrence, owners),
        "owners": [{"name": o.name, "role": o.role_names[0]} for o in owners],
        "reply_to": reply_to,
        "attachments": [f["filename"] for f in files] if timing.message.on == "occurrence" else [],
        "attachment_files": [f["sha256"] for f in files]
        if timing.message.on == "occurrence"
        else [],
    }


def _meeting_context(
    data: PlanningInput, routine: Routine, occurrence: Occurrence, owners: list[Holder]
) -> dict[str, Any] | None:
    booking = occurrence.booking
    if booking is None or routine.meeting is None:
        return None
    m = data.municipality
    return {
        "start": booking.start.astimezone(STOCKHOLM).isoformat(),
        "end": booking.end.astimezone(STOCKHOLM).isoformat(),
        **place_fields(m.places, booking.location),  # booking.location holds a place key
        "agenda": list(routine.meeting.agenda),
        "sequence": booking.sequence,
        "uid": event_uid(m.key, routine.key, occurrence.key, m.domain),
        # The first convener organizes: calendar replies (accept/decline) go to them.
        "organizer": {"name": owners[0].name, "email": owners[0].email} if owners else None,
    }


# --- the database side -------------------------------------------------------------------


@dataclass(frozen=True)
class PlanningRows:
    """Everything a plan reads of the database, as plain values in a stable order: what
    `planning_input` builds on, and what a plan stamp's digest covers (scheduler/planstamp.py).
    """

    municipality: models.Municipality
    # The municipality's own columns a plan reads (its settings are `calendar`).
    own: tuple[Any, ...]
    routines: list[tuple[Any, ...]]  # id, key, spec, active
    bookings: list[tuple[Any, ...]]  # routine id, occurrence, then BookingInfo's fields
    assignments: list[Assignment]
    people: list[tuple[Any, ...]]  # every person's id and key (the invitations name them)
    invites: list[tuple[Any, ...]]  # every recipient's last invitation


def read_planning_rows(session: Session, municipality_id: int) -> PlanningRows:
    m = session.get_one(models.Municipality, municipality_id)
    r, b, i, p = models.Routine, models.Booking, models.InviteRecord, models.Person
    routines = _tuples(
        session,
        select(r.id, r.key, r.spec, r.active)
        .where(r.municipality_id == municipality_id)
        .order_by(r.key),
    )
    # In BookingInfo's order after the first two.
    booking = (b.starts_at, b.ends_at, b.location, b.sequence, b.booked_at, b.cancelled_at)
    bookings = _tuples(
        session,
        select(b.routine_id, b.occurrence, *booking)
        .where(b.routine_id.in_([id_ for id_, *_ in routines]))
        .order_by(b.id),
    )
    people = _tuples(
        session, select(p.id, p.key).where(p.municipality_id == municipality_id).order_by(p.id)
    )
    invites = _tuples(
        session,
        select(
            i.uid,
            i.recipient_email,
            i.recipient_name,
            i.person_id,
            i.sequence,
            i.method,
            i.status,
            i.notification_id,
        )
        .where(i.municipality_id == municipality_id)
        .order_by(i.id),
    )
    return PlanningRows(
        municipality=m,
        own=(m.id, m.key, m.name, m.sender_name, m.sender_email, m.calendar),
        routines=routines,
        bookings=bookings,
        assignments=assignment_rows(session, municipality_id),
        people=people,
        invites=invites,
    )


def _tuples(session: Session, query: Executable) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in session.execute(query)]


def planning_input(session: Session, municipality_id: int) -> PlanningInput:
    return build_input(read_planning_rows(session, municipality_id))


def build_input(rows: PlanningRows) -> PlanningInput:
    settings = MunicipalitySettings.of(rows.municipality)
    id_, key, name, sender_name, sender_email, _ = rows.own
    municipal = Municipal(
        id=id_,
        key=key,
        name=name,
        sender_name=sender_name,
        sender_email=sender_email,
        send_time=settings.send_time,
        school_years=settings.school_years,
        role_names=dict(settings.role_names),
        unit_stages=dict(settings.unit_stages),
        places=dict(settings.places),
    )
    routines: list[tuple[Routine, list[dict[str, str]]]] = []
    retired: list[tuple[Routine, list[dict[str, str]]]] = []
    routine_keys: dict[int, str] = {}
    for routine_id, routine_key, stored, active in rows.routines:
        routine_keys[routine_id] = routine_key
        spec = dict(stored)
        files = spec.pop("attachment_files", [])
        (routines if active else retired).append((Routine.model_validate(spec), files))
    bookings = {
        (routine_keys[routine_id], occurrence): BookingInfo(*booking)
        for routine_id, occurrence, *booking in rows.bookings
    }
    person_keys = dict(rows.people)
    invites: dict[str, list[lifecycle.Sent]] = {}
    for uid, email, recipient, person_id, sequence, method, status, notification_id in rows.invites:
        invites.setdefault(uid, []).append(
            lifecycle.Sent(
                email=email,
                person_key=person_keys.get(person_id or 0, email),
                name=recipient,
                person_id=person_id,
                sequence=sequence,
                method=method,
                status=status,
                notification_id=notification_id,
            )
        )
    return PlanningInput(
        municipal,
        routines,
        bookings,
        RoleDirectory(rows.assignments, municipal.role_names),
        invites=invites,
        # Only those with a called-off booking matter (their CANCELs).
        retired=[
            (routine, files)
            for routine, files in retired
            if any(k == routine.key and b.cancelled_at for (k, _), b in bookings.items())
        ],
    )


def replan(
    session: Session,
    municipality_id: int,
    now: dt.datetime,
    horizon_days: int,
    *,
    reuse: bool = False,
) -> PlanResult:
    """Bring the outbox in line with the routines for every message still to come.

    The range runs from `now` to the horizon or to the latest row still pending, whichever
    is later: a re-plan with a shorter horizon (or from an earlier moment) checks the far rows
    again instead of cancelling them for being far. Sent rows, rows in flight and retries are
    the sender's; case work and the digest plan their own rows (reserved routine keys).

    With `reuse` (the nightly re-plan), the plan and its comparison are skipped while the last
    full re-plan's stamp holds: the same input, before the moment its plan could change
    (scheduler/planstamp.py). Every re-plan stores its stamp.
    """
    rows = read_planning_rows(session, municipality_id)
    digest = planstamp.input_digest(rows, horizon_days)
    pending = partial(_pending, session, municipality_id, now)
    stamp = planstamp.reusable(session, municipality_id, digest, now, pending) if reuse else None
    if stamp is not None:
        result = PlanResult(unchanged=stamp.rows, reused=True)
    else:
        result = _replan_in_full(session, rows, digest, now, horizon_days)
    # A retry carrying an older SEQUENCE than the booking's must not overtake the update.
    outbox.supersede_pending(session, municipality_id, now)
    # Case meetings whose participants changed hands after the invitation went out (their
    # rows are case work's: re-synced through its own outbox side, its privacy rules).
    resync_handovers(session, municipality_id, now)
    return result


def _replan_in_full(
    session: Session, rows: PlanningRows, digest: str, now: dt.datetime, horizon_days: int
) -> PlanResult:
    municipality_id = rows.municipality.id
    data = build_input(rows)
    scope = _routine_scope(municipality_id, now)
    end = now + dt.timedelta(days=horizon_days)
    latest = session.scalar(
        select(func.max(models.Notification.due_at)).where(
            scope, models.Notification.status == models.Status.PENDING, outbox.not_in_retry()
        )
    )
    if latest is not None:
        latest = latest if latest.tzinfo else latest.replace(tzinfo=dt.UTC)
        end = max(end, latest + dt.timedelta(microseconds=1))
    # Beyond the range too, for the stamp: the first row the range would reach next. Its rows
    # before `end` are the range's, unless the longer range looks at another year's
    # occurrences (compute_plan's years end with the range's).
    far = end + planstamp.LOOKAHEAD
    plan = compute_plan(data, now, far)
    inside = [row for row in plan.rows if row.due_at < end]
    if far.astimezone(STOCKHOLM).year != end.astimezone(STOCKHOLM).year:
        inside = compute_plan(data, now, end).rows
    wanted = [as_wanted(municipality_id, row) for row in inside]
    synced = outbox.sync(session, wanted, scope, now, NOT_PLANNED)
    until = planstamp.valid_until(data, plan, now, end, horizon_days)
    planned = synced.created + synced.updated + synced.revived + synced.unchanged
    pending = _pending(session, municipality_id, now)
    planstamp.record(session, municipality_id, digest, now, until, planned, pending)
    return PlanResult(
        created=synced.created,
        updated=synced.updated,
        revived=synced.revived,
        cancelled=len(synced.cancelled),
        unchanged=synced.unchanged,
        routines=synced.routines,
    )


def _pending(session: Session, municipality_id: int, now: dt.datetime) -> int:
    """The rows of the routine scope still to be sent (retries are the sender's)."""
    return (
        session.scalar(
            select(func.count()).where(
                _routine_scope(municipality_id, now),
                models.Notification.status == models.Status.PENDING,
                outbox.not_in_retry(),
            )
        )
        or 0
    )


NOT_PLANNED = "no longer in the plan (routine, roles or booking changed)"


def _routine_scope(municipality_id: int, now: dt.datetime) -> ColumnElement[bool]:
    """The rows a routine re-plan owns: this municipality's, due from now, not case work or
    the digest (they plan their own rows, so re-planning routines never cancels them)."""
    n = models.Notification
    return and_(
        n.municipality_id == municipality_id,
        n.routine_key.not_in(sorted(RESERVED_ROUTINE_KEYS)),
        n.due_at >= now,
    )


def as_wanted(municipality_id: int, row: PlannedRow) -> outbox.Wanted:
    return outbox.Wanted(
        key=row.key,
        municipality_id=municipality_id,
        routine_key=row.routine,
        occurrence=row.occurrence,
        purpose=row.purpose,
        message_id=row.message_id,
        template=row.template,
        context=row.context,
        person_id=row.recipient.person_id,
        roles=tuple(row.recipient.roles),
        recipient_email=row.recipient.email,
        recipient_name=row.recipient.name,
        due_at=row.due_at,
    )
