"""Personal calendar feeds: `/feeds/<token>.ics` with a person's meetings and the deadlines
they own, and nothing about any child (a case is named by its neutral reference only).

A token is 32 random bytes (43 characters), shown once when made and stored as its SHA-256
digest, so the database cannot give it back. Clients poll often; the feed's version is a few
cheap aggregates of what it is built from (the profile's load, the municipality's bookings,
the last case audit row, the day), so an unchanged poll is answered 304 without building it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from icalendar import Calendar, Event
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

import models
from scheduler.calendar import STOCKHOLM, local_date
from scheduler.cases import deadlines
from scheduler.cases.subjects import case_view, rules_of
from scheduler.planner import compute_plan, planning_input

FEED_VERSION = "1"  # raise when the feed's content changes shape, so every ETag changes
BEFORE = dt.timedelta(days=30)
AHEAD = dt.timedelta(days=400)
TOKEN_BYTES = 32


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(session: Session, person_id: int, now: dt.datetime) -> str:
    """A new feed token for the person; returned once, stored only as its digest."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    session.add(models.FeedToken(person_id=person_id, digest=digest(token), created_at=now))
    return token


def revoke_tokens(session: Session, person_id: int, now: dt.datetime) -> int:
    """Revoke every live token of the person; returns how many."""
    found = list(
        session.scalars(
            select(models.FeedToken).where(
                models.FeedToken.person_id == person_id, models.FeedToken.revoked_at.is_(None)
            )
        )
    )
    for token in found:
        token.revoked_at = now
    return len(found)


def person_for(session: Session, token: str) -> models.Person | None:
    """The active person a live token belongs to, or None."""
    if not token or len(token) > 200:
        return None
    row = session.scalar(select(models.FeedToken).where(models.FeedToken.digest == digest(token)))
    if row is None or row.revoked_at is not None:
        return None
    person = session.get(models.Person, row.person_id)
    return person if person is not None and person.active else None


@dataclass(frozen=True)
class Version:
    etag: str
    last_modified: dt.datetime


def version(session: Session, person: models.Person, now: dt.datetime) -> Version:
    """What the feed is built from, in a few aggregates: equal versions, equal feeds."""
    m = person.municipality_id
    loaded = session.scalar(
        select(models.Municipality.loaded_at).where(models.Municipality.id == m)
    )
    b, r = models.Booking, models.Routine
    bookings = session.execute(
        select(func.count(b.id), func.max(b.booked_at), func.sum(b.sequence))
        .join(r, b.routine_id == r.id)
        .where(r.municipality_id == m)
    ).one()
    a = models.CaseAudit
    audit = session.execute(
        select(func.max(a.id), func.max(a.at)).where(a.municipality_id == m)
    ).one()
    moments = [t for t in (loaded, bookings[1], audit[1]) if t is not None]
    parts = (FEED_VERSION, person.id, loaded, *bookings, audit[0], local_date(now))
    tag = hashlib.sha256(repr(parts).encode()).hexdigest()[:32]
    last = max(moments) if moments else now
    return Version(f'"{tag}"', last.replace(microsecond=0))


@dataclass(frozen=True)
class FeedEvent:
    uid: str
    summary: str
    start: dt.datetime | dt.date
    end: dt.datetime | dt.date


def events(session: Session, person: models.Person, now: dt.datetime) -> list[FeedEvent]:
    """The person's routine meetings and owned deadlines, case meetings and case deadlines."""
    return _routine_events(session, person, now) + _case_events(session, person, now)


def _routine_events(session: Session, person: models.Person, now: dt.datetime) -> list[FeedEvent]:
    data = planning_input(session, person.municipality_id)
    plan = compute_plan(data, now - BEFORE, now + AHEAD)
    receives = {
        (row.routine, row.occurrence) for row in plan.rows if row.recipient.person_id == person.id
    }
    specs = {routine.key: routine for routine, _ in data.routines}
    key = data.municipality.key
    found = []
    for occurrence in plan.occurrences:
        routine = specs[occurrence.routine]
        owns = any(
            h.person_id == person.id
            for h in data.directory.resolve(routine.owners, occurrence.date)
        )
        uid = f"{key}-{occurrence.routine}-{occurrence.key}@samverkan"
        if occurrence.kind.value == "meeting" and occurrence.booking is not None:
            if owns or (occurrence.routine, occurrence.key) in receives:
                found.append(
                    FeedEvent(uid, routine.name, occurrence.booking.start, occurrence.booking.end)
                )
        elif owns:
            day = occurrence.date
            found.append(FeedEvent(uid, f"Senast: {routine.name}", day, day + dt.timedelta(days=1)))
    return found


def _case_events(session: Session, person: models.Person, now: dt.datetime) -> list[FeedEvent]:
    c = models.Case
    query = select(c).where(
        c.municipality_id == person.municipality_id,
        c.state != "closed",
        or_(c.owner_id == person.id, c.family_worker_id == person.id),
    )
    cases = list(session.scalars(query))
    cases += [
        case
        for case in session.scalars(
            select(c).where(c.municipality_id == person.municipality_id, c.state != "closed")
        )
        if person.key in case.staff and case not in cases
    ]
    municipality = session.get_one(models.Municipality, person.municipality_id)
    rules = rules_of(municipality)
    key = municipality.key
    earliest = now - BEFORE
    found = []
    for case in sorted(cases, key=lambda x: x.reference):
        for meeting in case.meetings:
            if meeting.state != "cancelled" and meeting.ends_at >= earliest:
                found.append(
                    FeedEvent(
                        f"{key}-arende-{case.reference}-mote-{meeting.number}@samverkan",
                        f"Samverkansmöte {meeting.number}, ärende {case.reference}",
                        meeting.starts_at,
                        meeting.ends_at,
                    )
                )
        if case.owner_id != person.id:
            continue
        for deadline in deadlines(case_view(session, case), rules):
            if not deadline.met:
                day = deadline.last_day
                found.append(
                    FeedEvent(
                        f"{key}-arende-{case.reference}-senast-{deadline.meeting}@samverkan",
                        f"Senast möte {deadline.meeting}, ärende {case.reference}",
                        day,
                        day + dt.timedelta(days=1),
                    )
                )
    return found


def ics(feed: list[FeedEvent], stamp: dt.datetime, name: str) -> bytes:
    """The feed as iCalendar; DTSTAMP is the version's moment, so equal versions are equal bytes."""
    calendar = Calendar()
    calendar.add("prodid", "-//samverkan//feed//SV")
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", name)
    calendar.add("x-wr-timezone", str(STOCKHOLM))
    for item in sorted(feed, key=lambda e: (str(e.start), e.uid)):
        event = Event()
        event.add("uid", item.uid)
        event.add("dtstamp", stamp)
        event.add("summary", item.summary)
        event.add("dtstart", item.start)
        event.add("dtend", item.end)
        event.add("transp", "OPAQUE" if isinstance(item.start, dt.datetime) else "TRANSPARENT")
        calendar.add_component(event)
    return bytes(calendar.to_ical())
