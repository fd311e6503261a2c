"""Edits of what a plan reads, made straight in the database: what the planner did not make,
so a plan stamp (scheduler/planstamp.py) does not know of them. Each kind changes a different
table or column of `scheduler.planner.PlanningRows`."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

import models
from scheduler.identity import event_uid, sender_domain


def _people(session: Session) -> dict[str, models.Person]:
    return {p.key: p for p in session.scalars(select(models.Person))}


def _routine(session: Session, key: str) -> models.Routine | None:
    return session.scalars(select(models.Routine).where(models.Routine.key == key)).first()


def _assignments(session: Session, person: str) -> list[models.RoleAssignment]:
    person_id = _people(session)[person].id
    return list(
        session.scalars(
            select(models.RoleAssignment).where(models.RoleAssignment.person_id == person_id)
        )
    )


def _email(session: Session, today: dt.date) -> None:
    _people(session)["bo"].email = "bo.rektor@liten.se"


def _role_ends(session: Session, today: dt.date) -> None:
    for a in _assignments(session, "bo"):
        a.valid_from, a.valid_to = None, today + dt.timedelta(days=3)


def _substitute(session: Session, today: dt.date) -> None:
    for a in _assignments(session, "cecilia"):
        a.valid_from, a.valid_to = today + dt.timedelta(days=5), None


def _spec(session: Session, today: dt.date) -> None:
    routine = _routine(session, "utvardering")
    if routine is not None:
        spec = copy.deepcopy(routine.spec)
        spec["messages"][0]["before"] = {"days": 17}
        routine.spec = spec


def _retired(session: Session, today: dt.date) -> None:
    routine = _routine(session, "utvardering")
    if routine is not None:
        routine.active = False


def _send_time(session: Session, today: dt.date) -> None:
    municipality = session.scalars(select(models.Municipality)).one()
    municipality.calendar = {**municipality.calendar, "send_time": "07:15"}


def _booking(session: Session, today: dt.date) -> None:
    for booking in session.scalars(select(models.Booking)):
        booking.starts_at += dt.timedelta(minutes=30)
        booking.ends_at += dt.timedelta(minutes=30)
        booking.sequence += 1


def _left(session: Session, today: dt.date) -> None:
    _people(session)["cecilia"].active = False


def _invitation(session: Session, today: dt.date) -> None:
    """The record of invitations sent changes (as a retried invitation's send makes it, at a
    moment no plan has): Bo's invitation to the spring meeting, made or taken back."""
    record = session.scalars(select(models.InviteRecord)).first()
    if record is not None:
        record.status = "CANCELLED" if record.status == "CONFIRMED" else "CONFIRMED"
        return
    municipality = session.scalars(select(models.Municipality)).one()
    notification = session.scalars(select(models.Notification)).first()
    if notification is None:
        return
    bo = _people(session)["bo"]
    session.add(
        models.InviteRecord(
            municipality_id=municipality.id,
            routine_key="samverkansmote-var",
            occurrence="2027",
            uid=event_uid(
                municipality.key,
                "samverkansmote-var",
                "2027",
                sender_domain(municipality.sender_email),
            ),
            recipient_email=bo.email,
            recipient_name=bo.name,
            person_id=bo.id,
            sequence=0,
            method="REQUEST",
            status="CONFIRMED",
            notification_id=notification.id,
            sent_at=dt.datetime.combine(today, dt.time(6), tzinfo=dt.UTC),
        )
    )


EDITS: dict[str, Callable[[Session, dt.date], None]] = {
    "email": _email,
    "role-ends": _role_ends,
    "substitute": _substitute,
    "spec": _spec,
    "retired": _retired,
    "send-time": _send_time,
    "booking": _booking,
    "left": _left,
    "invitation": _invitation,
}
