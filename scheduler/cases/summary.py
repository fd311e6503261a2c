"""What the non-responders summary (`scheduler/answers.py`) needs to know of case meetings.

The summary goes to the case owner (the organizer of the invitations) a few working days before
a booked meeting of an active case. It must not identify the child: guardians and pupils (and
anyone else who is not the municipality's staff) are never named or addressed in it, only
counted; staff are listed by name and role. The case is named by its neutral reference only.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

import models
from scheduler.cases.subjects import domain_of, rules_of
from scheduler.cases.views import CASE, CaseState, MeetingState
from scheduler.identity import event_uid


@dataclass(frozen=True)
class CaseMeetingAhead:
    reference: str
    number: int
    uid: str
    sequence: int
    start: dt.datetime
    end: dt.datetime
    owner: models.Person

    @property
    def occurrence(self) -> str:
        """The summary row's occurrence: the meeting, by the case's neutral reference."""
        return f"{self.reference}-m{self.number}"


def meetings_ahead(
    session: Session, municipality: models.Municipality, now: dt.datetime
) -> list[CaseMeetingAhead]:
    """Booked meetings of active cases that start after `now`, with their owners."""
    found = []
    rows = session.execute(
        select(models.CaseMeeting, models.Case)
        .join(models.Case, models.Case.id == models.CaseMeeting.case_id)
        .where(
            models.Case.municipality_id == municipality.id,
            models.Case.state == CaseState.ACTIVE.value,
            models.CaseMeeting.state == MeetingState.BOOKED.value,
            models.CaseMeeting.starts_at > now,
        )
        .order_by(models.Case.id, models.CaseMeeting.number)
    )
    domain = domain_of(municipality)
    for meeting, case in rows:
        owner = session.get_one(models.Person, case.owner_id)
        if not owner.active:
            continue
        uid = event_uid(municipality.key, CASE, f"{case.reference}-m{meeting.number}", domain)
        found.append(
            CaseMeetingAhead(
                case.reference,
                meeting.number,
                uid,
                meeting.sequence,
                meeting.starts_at,
                meeting.ends_at,
                owner,
            )
        )
    return found


def named_in_summary(
    session: Session, municipality: models.Municipality, person_id: int | None, external: bool
) -> bool:
    """Whether a participant who has not answered may be named in the owner's summary: a
    person of the profile who holds none of the families' roles. Everyone else (guardians,
    pupils, any address outside the profile) is only counted."""
    if external or person_id is None:
        return False
    person = session.get(models.Person, person_id)
    if person is None:
        return False
    family = set(rules_of(municipality).family_roles)
    return not any(a.role in family for a in person.roles)
