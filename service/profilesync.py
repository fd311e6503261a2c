"""Write a validated profile into the database in one transaction, then re-plan.

Loading the same file twice changes nothing. A changed routine re-plans only messages that
are still to come.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

import models
from scheduler.bookings import check_booking
from scheduler.identity import sender_domain
from scheduler.municipality import MunicipalitySettings
from scheduler.planner import PlanResult, replan
from scheduler.spec import Profile, Routine
from service.profilecheck import Attachment, ValidProfile


@dataclass
class LoadResult:
    municipality: str
    changed: bool
    plan: PlanResult
    counts: dict[str, int] = field(default_factory=dict)


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
    sender_email = str(spec.sender.email)
    calendar = MunicipalitySettings(
        send_time=spec.send_time,
        school_years=valid.profile.school_years,
        role_names=valid.profile.role_names(),
        intake_phone=spec.intake_phone,
        staff_domains=tuple(spec.staff_domains) or (sender_domain(sender_email),),
        cases=valid.profile.cases,
        unit_stages={u.key: u.school_stages() for u in valid.profile.units if u.school_stages()},
        places={p.key: p.model_dump(mode="json", exclude={"key"}) for p in valid.profile.places},
    ).to_json()
    row = session.scalar(select(models.Municipality).where(models.Municipality.key == spec.key))
    values: dict[str, Any] = {
        "name": spec.name,
        "sender_name": spec.sender.name,
        "sender_email": sender_email,
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
            # Its meetings still to come are called off: their invitations are cancelled.
            for booking in self.session.scalars(
                select(models.Booking).where(models.Booking.routine_id == gone.id)
            ):
                changed |= call_off(booking, self.now)
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
            # A booking removed from the profile (not one made by command) is called off.
            listed = {str(year) for year in spec.bookings}
            for row in self.session.scalars(
                select(models.Booking).where(
                    models.Booking.routine_id == routines[spec.key].id,
                    models.Booking.source == "profile",
                )
            ):
                if row.occurrence not in listed:
                    changed |= call_off(row, self.now)
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
    if row.cancelled_at is not None:  # booked again after a call-off: a new invitation
        row.cancelled_at = None
        row.sequence += 1
        _assign(row, values)
        row.booked_at = now
        row.source = source
        return True
    if _assign(row, values):
        if _invitation_out(session, routine, occurrence, row.sequence, now):
            row.sequence += 1
        row.booked_at = now
        row.source = source
        return True
    return False


def call_off(booking: models.Booking, now: dt.datetime) -> bool:
    """Call off a meeting still to come: the re-plan then sends CANCEL, with a higher
    SEQUENCE, to everyone whose calendar holds it (scheduler/lifecycle.py). False when it has
    begun or was called off already."""
    if booking.cancelled_at is not None or booking.starts_at <= now:
        return False
    booking.cancelled_at = now
    booking.sequence += 1
    return True


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
