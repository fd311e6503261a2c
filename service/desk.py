"""The desk: where every interface does case work (the CLI now, the web forms and JSON API next).

One object carries what every service function needs: the session (the caller's transaction),
the municipality, the person acting and `now`. It resolves who acts (refusing, with a clear
error, a key that names nobody), asks the permission rules (service/permissions.py) through one
call, `require`, and writes the one audit trail, `audit`. Service functions take a desk and the
request, and return typed results:

    desk = Desk.open(session, municipality_id, by="rut", now=now)
    cases.record_consent(desk, "2027-0002", ConsentRequest(given_by=..., scope=...))
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

import models
from core.errors import CaseInputError as CaseInputError  # re-exported
from core.errors import PermissionRefused as PermissionRefused  # re-exported
from scheduler.calendar import local_date
from scheduler.cases.outbox import SyncResult
from scheduler.cases.subjects import LABELS, Subject, rules_of
from scheduler.cases.views import CASE, REPORT
from scheduler.spec import CaseRules
from service.permissions import Action, Actor, Matter, may, refusal

log = logging.getLogger("samverkan.cases")


@dataclass(frozen=True)
class Desk:
    session: Session
    municipality: models.Municipality
    actor: models.Person | None  # None: the console, for reading only (service/permissions.py)
    now: dt.datetime

    @classmethod
    def open(
        cls,
        session: Session,
        municipality_id: int,
        by: str | None,
        now: dt.datetime,
        *,
        option: str = "--by",
    ) -> Desk:
        """A desk for `by` (a person key; refused when it names no active person)."""
        municipality = session.get_one(models.Municipality, municipality_id)
        actor = find_person(session, municipality_id, by, option) if by is not None else None
        return cls(session, municipality, actor, now)

    @property
    def municipality_id(self) -> int:
        return self.municipality.id

    @property
    def today(self) -> dt.date:
        return local_date(self.now)

    @cached_property
    def rules(self) -> CaseRules:
        return rules_of(self.municipality)

    @property
    def person_acting(self) -> models.Person:
        """The person acting; every change needs one."""
        if self.actor is None:
            raise PermissionRefused("--by: who is acting must be a person of the profile")
        return self.actor

    # --- lookups --------------------------------------------------------------------------------

    def person(self, key: str, option: str) -> models.Person:
        return find_person(self.session, self.municipality_id, key, option)

    def unit(self, key: str, option: str) -> models.Unit:
        unit = self.session.scalar(
            select(models.Unit).where(
                models.Unit.municipality_id == self.municipality_id, models.Unit.key == key
            )
        )
        if unit is None:
            raise CaseInputError(f"{option}: no unit with that key in this municipality")
        return unit

    def holds(self, person: models.Person, role: str, unit_id: int | None = None) -> bool:
        """Whether `person` holds `role` today (at `unit_id`, when given)."""
        return _actor(person, self.today).holds(role, unit_id)

    # --- permissions ----------------------------------------------------------------------------

    def may(self, action: Action, matter: models.Report | models.Case | None = None) -> bool:
        actor = None if self.actor is None else _actor(self.actor, self.today)
        return may(action, actor, self._matter(matter))

    def require(
        self, action: Action, matter: models.Report | models.Case | None = None
    ) -> models.Person | None:
        """The person acting, if they may do `action` on `matter`; PermissionRefused if not."""
        if not self.may(action, matter):
            raise PermissionRefused(refusal(action, self._matter(matter)))
        return self.actor

    def _matter(self, matter: models.Report | models.Case | None) -> Matter | None:
        if matter is None:
            return None
        if isinstance(matter, models.Report):
            return self._report_matter(matter)
        return self._case_matter(matter)

    def _report_matter(self, report: models.Report) -> Matter:
        intake = self.session.get_one(models.Unit, report.intake_unit_id)
        return Matter(
            label=f"{LABELS[REPORT]} {report.reference}",
            reference=report.reference,
            reporter=self.session.get_one(models.Person, report.reporter_id).key,
            intake_unit_id=intake.id,
            intake_name=intake.name,
            intake_role=self.rules.intake_role,
        )

    def _case_matter(self, case: models.Case) -> Matter:
        worker = (
            self.session.get_one(models.Person, case.family_worker_id).key
            if case.family_worker_id
            else None
        )
        participants = {*case.staff, worker} - {None}
        return Matter(
            label=f"{LABELS[CASE]} {case.reference}",
            reference=case.reference,
            owner=self.session.get_one(models.Person, case.owner_id).key,
            participants=frozenset(k for k in participants if k is not None),
            school_unit_id=case.school_unit_id,
        )

    # --- audit ----------------------------------------------------------------------------------

    def audit(self, action: str, subject: Subject, **details: Any) -> None:
        """One row of the audit trail (`case_audit`) and its log line: who, when, what; never
        free text or anything about the child (callers pass counts, keys and dates)."""
        self.session.add(
            models.CaseAudit(
                municipality_id=self.municipality_id,
                series=subject.series,
                reference=subject.reference,
                at=self.now,
                actor_id=self.actor.id if self.actor else None,
                actor=self.actor.key if self.actor else "system",
                action=action,
                detail=details,
            )
        )
        log.info(
            "%s %s: %s",
            subject.series,
            subject.reference,
            action,
            extra={"action": f"{subject.series}.{action}", "reference": subject.reference},
        )

    def audit_cancelled(self, subject: Subject, result: SyncResult, reason: str) -> None:
        """The reminders a change cancelled, by purpose, when there were any."""
        if result.cancelled:
            self.audit(
                "reminders_cancelled",
                subject,
                count=len(result.cancelled),
                purposes=sorted(set(result.cancelled)),
                reason=reason,
            )


def find_person(session: Session, municipality_id: int, key: str, option: str) -> models.Person:
    person = session.scalar(
        select(models.Person).where(
            models.Person.municipality_id == municipality_id, models.Person.key == key
        )
    )
    if person is None or not person.active:
        raise CaseInputError(f"{option}: no active person with that key in this municipality")
    return person


def _roles_on(person: models.Person, on: dt.date) -> set[tuple[str, int | None]]:
    return {
        (a.role, a.unit_id)
        for a in person.roles
        if (a.valid_from is None or a.valid_from <= on) and (a.valid_to is None or on <= a.valid_to)
    }


def _actor(person: models.Person, on: dt.date) -> Actor:
    return Actor(person.key, frozenset(_roles_on(person, on)))
