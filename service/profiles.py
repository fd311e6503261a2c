"""Load a municipality profile: validate it whole, then write it in one transaction.

A bad profile changes nothing and the error names file, line and field. Loading the same
file twice changes nothing. A changed routine re-plans only messages that are still to come.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import mimetypes
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

import models
from core.errors import ProfileError
from scheduler.bookings import check_booking
from scheduler.occurrences import occurrences
from scheduler.planner import PlanResult, replan
from scheduler.privacy import contains_identity_number
from scheduler.spec import Problem, Profile, Routine, reference_problems
from service.attachments import AttachmentProblem, read_attachment
from service.yamlsource import Located, parse_bytes, read_profile_bytes

# How many years ahead a routine must occur at least once to be a routine at all.
OCCURS_WITHIN_YEARS = 10


@dataclass(frozen=True)
class Attachment:
    filename: str
    mime_type: str
    content: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


@dataclass
class ValidProfile:
    path: Path
    sha256: str
    profile: Profile
    attachments: dict[str, list[Attachment]]  # routine key → files


@dataclass
class LoadResult:
    municipality: str
    changed: bool
    plan: PlanResult
    counts: dict[str, int] = field(default_factory=dict)


def validate_profile(path: Path, today: dt.date) -> ValidProfile:
    """Read and check `path` completely; raise ProfileError listing every problem found."""
    raw = read_profile_bytes(path)
    located = parse_bytes(raw, path)
    if not isinstance(located.data, dict):
        raise ProfileError(
            f"{path}:1: a profile is a mapping of sections (municipality, units, ...)"
        )
    try:
        profile = Profile.model_validate(located.data)
    except ValidationError as exc:
        problems: list[Problem] = [
            (tuple(error["loc"]), _pydantic_message(error)) for error in exc.errors()
        ]
        raise ProfileError(_describe(path, located, problems)) from None
    problems = reference_problems(profile)
    problems += identity_number_problems(located.data)
    problems += _never_occurring(profile, today)
    problems += _booking_problems(profile)
    attachments, attachment_problems = _read_attachments(path.parent, profile)
    problems += attachment_problems
    if problems:
        raise ProfileError(_describe(path, located, problems))
    sha = hashlib.sha256(raw).hexdigest()
    return ValidProfile(path=path, sha256=sha, profile=profile, attachments=attachments)


def _pydantic_message(error: Any) -> str:
    message = str(error["msg"])
    if error["type"] == "extra_forbidden":
        return "unknown field"
    if error["type"] == "missing":
        return "required field is missing"
    return message.removeprefix("Value error, ")


def _describe(path: Path, located: Located, problems: list[Problem]) -> str:
    lines = []
    for where, message in problems:
        if contains_identity_number(message):  # a message that quotes a key holding one
            message = "holds what reads as a personal identity number (its text goes out)"
        line = located.line_of(where)
        field_path = _format_path(where) or "(top level)"
        lines.append(f"{path}:{line or '?'}: {field_path}: {message}")
    count = len(lines)
    heading = (
        f"{path}: the profile has {count} problem{'s' if count > 1 else ''}; nothing was changed"
    )
    return "\n".join([heading, *lines])


def _format_path(where: tuple[object, ...]) -> str:
    text = ""
    for part in where:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def identity_number_problems(data: Any, where: tuple[str | int, ...] = ()) -> list[Problem]:
    """Every string of the profile (keys included) that holds a personal identity number.

    Anything in a profile may reach a message (names, addresses, places, prose), so the
    guard reads all of it; the problem names the field, never the value.
    """
    if isinstance(data, str):
        if contains_identity_number(data):
            return [(where, "holds what reads as a personal identity number (its text goes out)")]
        return []
    problems: list[Problem] = []
    if isinstance(data, dict):
        for key, value in data.items():
            problems += identity_number_problems(str(key), (*where, str(key)))
            problems += identity_number_problems(value, (*where, str(key)))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            problems += identity_number_problems(value, (*where, index))
    return problems


def _never_occurring(profile: Profile, today: dt.date) -> list[Problem]:
    years = range(today.year - 1, today.year + OCCURS_WITHIN_YEARS)
    problems: list[Problem] = []
    for i, routine in enumerate(profile.routines):
        if not occurrences(routine, profile.school_years, years):
            problems.append(
                (
                    ("routines", i, "when"),
                    f"the routine never occurs in {years[0]}-{years[-1]} "
                    "(check its date and its active years)",
                )
            )
    return problems


def _booking_problems(profile: Profile) -> list[Problem]:
    """The `bookings:` of every meeting, checked by the same rules as `samverkan book`.

    Without `now`: a booking of a meeting already held stays as a record (no invitation is
    sent for it, see scheduler/occurrences.py), so last year's bookings need not be removed.
    """
    problems: list[Problem] = []
    for i, routine in enumerate(profile.routines):
        for year, booking in routine.bookings.items():
            check = check_booking(routine, booking.date, booking.time, occurrence_year=year)
            for problem in check.problems:
                problems.append((("routines", i, "bookings", year, problem.field), problem.message))
    return problems


def _read_attachments(
    base: Path, profile: Profile
) -> tuple[dict[str, list[Attachment]], list[Problem]]:
    found: dict[str, list[Attachment]] = {}
    problems: list[Problem] = []
    for i, routine in enumerate(profile.routines):
        files: list[Attachment] = []
        for j, name in enumerate(routine.attachments):
            where = ("routines", i, "attachments", j)
            try:
                filename, content = read_attachment(base, name)
            except AttachmentProblem as exc:
                problems.append((where, str(exc)))
                continue
            mime = mimetypes.guess_type(filename)[0] or "application/octet-stream"
            files.append(Attachment(filename, mime, content))
        found[routine.key] = files
    return found, problems


def load_profile(
    session: Session, valid: ValidProfile, now: dt.datetime, horizon_days: int
) -> LoadResult:
    """Write `valid` into the database within the caller's transaction, then re-plan."""
    profile = valid.profile
    municipality, changed = _sync_municipality(session, valid, now)
    sync = _Sync(session, municipality, now)
    changed |= sync.districts_and_units(profile)
    changed |= sync.people(profile)
    changed |= sync.routines(profile, valid.attachments)
    changed |= sync.profile_bookings(profile)
    session.flush()
    plan = replan(session, municipality.id, now, horizon_days)
    counts = {
        "units": len(profile.units),
        "people": len(profile.people),
        "routines": len(profile.routines),
    }
    return LoadResult(profile.municipality.key, changed, plan, counts)


def _sync_municipality(
    session: Session, valid: ValidProfile, now: dt.datetime
) -> tuple[models.Municipality, bool]:
    spec = valid.profile.municipality
    calendar = {
        "send_time": spec.send_time.isoformat(),
        "intake_phone": spec.intake_phone,
        "staff_domains": list(spec.staff_domains) or [str(spec.sender.email).rsplit("@", 1)[1]],
        "school_years": valid.profile.school_years.model_dump(mode="json"),
        "roles": valid.profile.role_names(),
        "cases": valid.profile.cases.model_dump(mode="json"),
        # unit key → its school stages (parent-meeting reminders name only these)
        "unit_stages": {u.key: u.school_stages() for u in valid.profile.units if u.school_stages()},
        # Meeting places by key: a booking stores the key, messages are built from these.
        "places": {p.key: p.model_dump(mode="json", exclude={"key"}) for p in valid.profile.places},
    }
    row = session.scalar(select(models.Municipality).where(models.Municipality.key == spec.key))
    values: dict[str, Any] = {
        "name": spec.name,
        "sender_name": spec.sender.name,
        "sender_email": str(spec.sender.email),
        "calendar": calendar,
        "profile_path": str(valid.path),
        "profile_sha256": valid.sha256,
    }
    if row is None:
        row = models.Municipality(key=spec.key, loaded_at=now, **values)
        session.add(row)
        session.flush()
        return row, True
    return row, _assign(row, values, stamp=("loaded_at", now))


def _assign(row: Any, values: dict[str, Any], stamp: tuple[str, Any] | None = None) -> bool:
    """Set only what differs, so an unchanged profile writes nothing at all."""
    changed = False
    for key, value in values.items():
        if getattr(row, key) != value:
            setattr(row, key, value)
            changed = True
    if changed and stamp is not None:
        setattr(row, stamp[0], stamp[1])
    return changed


class _Sync:
    def __init__(self, session: Session, municipality: models.Municipality, now: dt.datetime):
        self.session = session
        self.municipality = municipality
        self.now = now
        self.units: dict[str, models.Unit] = {}

    def _existing(self, model: Any) -> dict[str, Any]:
        rows = self.session.scalars(
            select(model).where(model.municipality_id == self.municipality.id)
        )
        return {row.key: row for row in rows}

    def districts_and_units(self, profile: Profile) -> bool:
        changed = False
        districts = self._existing(models.District)
        for spec in profile.districts:
            row = districts.get(spec.key)
            if row is None:
                row = models.District(
                    municipality_id=self.municipality.id, key=spec.key, name=spec.name
                )
                self.session.add(row)
                districts[spec.key] = row
                changed = True
            else:
                changed |= _assign(row, {"name": spec.name})
        self.session.flush()
        units = self._existing(models.Unit)
        for unit_spec in profile.units:
            values = {
                "name": unit_spec.name,
                "kind": unit_spec.kind.value,
                "district_id": districts[unit_spec.district].id if unit_spec.district else None,
                "phone": unit_spec.phone,
            }
            unit = units.get(unit_spec.key)
            if unit is None:
                unit = models.Unit(
                    municipality_id=self.municipality.id, key=unit_spec.key, **values
                )
                self.session.add(unit)
                units[unit_spec.key] = unit
                changed = True
            else:
                changed |= _assign(unit, values)
        self.session.flush()
        self.units = units
        return changed

    def people(self, profile: Profile) -> bool:
        changed = False
        people = self._existing(models.Person)
        for spec in profile.people:
            values = {"name": spec.name, "email": str(spec.email), "active": True}
            person = people.pop(spec.key, None)
            if person is None:
                person = models.Person(municipality_id=self.municipality.id, key=spec.key, **values)
                self.session.add(person)
                changed = True
            else:
                changed |= _assign(person, values)
            wanted = sorted(
                (a.role, a.unit or "", a.valid_from or dt.date.min, a.valid_to or dt.date.max)
                for a in spec.roles
            )
            have = sorted(
                (
                    r.role,
                    self._unit_key(r.unit_id),
                    r.valid_from or dt.date.min,
                    r.valid_to or dt.date.max,
                )
                for r in person.roles
            )
            if wanted != have:
                person.roles = [
                    models.RoleAssignment(
                        role=a.role,
                        unit_id=self.units[a.unit].id if a.unit else None,
                        valid_from=a.valid_from,
                        valid_to=a.valid_to,
                    )
                    for a in spec.roles
                ]
                changed = True
        for gone in people.values():  # removed from the profile: kept for history, holds nothing
            if gone.active or gone.roles:
                gone.active = False
                gone.roles = []
                changed = True
        return changed

    def _unit_key(self, unit_id: int | None) -> str:
        if unit_id is None:
            return ""
        return next(key for key, unit in self.units.items() if unit.id == unit_id)

    def routines(self, profile: Profile, attachments: dict[str, list[Attachment]]) -> bool:
        changed = False
        existing = self._existing(models.Routine)
        for spec in profile.routines:
            files = attachments.get(spec.key, [])
            changed |= self._materials(files)
            data = spec.model_dump(mode="json", by_alias=True)
            data["attachment_files"] = [
                {"sha256": f.sha256, "filename": f.filename, "mime_type": f.mime_type}
                for f in files
            ]
            sha = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
            values = {
                "name": spec.name,
                "kind": spec.kind.value,
                "spec": data,
                "spec_sha256": sha,
                "active": True,
            }
            row = existing.pop(spec.key, None)
            if row is None:
                self.session.add(
                    models.Routine(municipality_id=self.municipality.id, key=spec.key, **values)
                )
                changed = True
            else:
                changed |= _assign(row, values)
        for gone in existing.values():
            changed |= _assign(gone, {"active": False})
        self.session.flush()
        return changed

    def _materials(self, files: list[Attachment]) -> bool:
        changed = False
        for file in files:
            found = self.session.scalar(
                select(models.Material.id).where(
                    models.Material.municipality_id == self.municipality.id,
                    models.Material.sha256 == file.sha256,
                )
            )
            if found is None:
                self.session.add(
                    models.Material(
                        municipality_id=self.municipality.id,
                        sha256=file.sha256,
                        filename=file.filename,
                        mime_type=file.mime_type,
                        content=file.content,
                    )
                )
                changed = True
        return changed

    def profile_bookings(self, profile: Profile) -> bool:
        changed = False
        routines = self._existing(models.Routine)
        for spec in profile.routines:
            for year, booking in spec.bookings.items():
                changed |= self._profile_booking(routines[spec.key], spec, str(year), booking)
        return changed

    def _profile_booking(
        self, routine: models.Routine, spec: Routine, occurrence: str, booking: Any
    ) -> bool:
        assert spec.meeting is not None
        # validate_profile checked it with the same rules, so it has a start and an end.
        check = check_booking(spec, booking.date, booking.time, occurrence_year=int(occurrence))
        assert check.start is not None and check.end is not None
        values = {
            "starts_at": check.start,
            "ends_at": check.end,
            "location": booking.place or spec.meeting.place,  # a place key
        }
        return upsert_booking(self.session, routine, occurrence, values, self.now, source="profile")


def upsert_booking(
    session: Session,
    routine: models.Routine,
    occurrence: str,
    values: dict[str, Any],
    now: dt.datetime,
    source: str,
) -> bool:
    """Record a booking. A booking made by command wins over the profile's.

    A change gets a higher SEQUENCE (its invitations are then an update, sent at once) only
    when calendars may hold the current one: before any invitation of it went out, the change
    simply updates the invitations still to come (same key, same due time).
    """
    row = session.scalar(
        select(models.Booking).where(
            models.Booking.routine_id == routine.id, models.Booking.occurrence == occurrence
        )
    )
    if row is None:
        session.add(
            models.Booking(
                routine_id=routine.id,
                occurrence=occurrence,
                sequence=0,
                booked_at=now,
                source=source,
                **values,
            )
        )
        return True
    if source == "profile" and row.source == "command":
        return False
    if _assign(row, values):
        if _invitation_out(session, routine, occurrence, row.sequence, now):
            row.sequence += 1
        row.booked_at = now
        row.source = source
        return True
    return False


# Rows in these states may already be in someone's calendar (or are on their way there).
_OUT = (models.Status.QUEUED, models.Status.SENDING, models.Status.SENT)


def _invitation_out(
    session: Session, routine: models.Routine, occurrence: str, sequence: int, now: dt.datetime
) -> bool:
    """Whether a message carrying this meeting's invitation at `sequence` may have gone out.

    Every message of a booked occurrence carries the invitation. Counted as out: sent, on its
    way, tried once already, or overdue (the next tick sends it as it stands: re-planning
    leaves rows due before now alone). A row due at this very moment is still updated.
    """
    rows = session.execute(
        select(
            models.Notification.status,
            models.Notification.attempts,
            models.Notification.due_at,
            models.Notification.context,
        ).where(
            models.Notification.municipality_id == routine.municipality_id,
            models.Notification.routine_key == routine.key,
            models.Notification.occurrence == occurrence,
            models.Notification.status != models.Status.CANCELLED,
        )
    )
    for status, attempts, due_at, context in rows:
        meeting = (context or {}).get("meeting")
        if not meeting or int(meeting.get("sequence", 0)) != sequence:
            continue
        if status in _OUT or attempts > 0 or due_at < now:
            return True
    return False
