"""Cooperation cases (samverkansmöte, seed 004 Bilaga 1): open and close."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import models
from core.errors import CaseInputError
from scheduler.cases import rules as rules_
from scheduler.cases.outbox import refuse_external
from scheduler.cases.recipients import recipient_problem
from scheduler.cases.subjects import Subject, case_subject, case_view, report_subject
from scheduler.cases.views import CaseState
from scheduler.spec import SCHOOL_KINDS
from service.cases.changes import change_case, sync_case
from service.cases.inputs import check_address
from service.cases.references import allocate_reference, find_case, find_report
from service.cases.results import Outcome
from service.desk import Desk
from service.permissions import Action


@dataclass(frozen=True)
class CaseRequest:
    owner: str
    owner_role: str | None = None
    known_on: dt.date | None = None
    school: str | None = None
    family_worker: str | None = None
    staff: tuple[str, ...] = ()
    guardians: tuple[str, ...] = ()
    pupil: str | None = None
    adult_pupil: bool = False
    sip: bool = False
    report: str | None = None


@dataclass(frozen=True)
class _Participants:
    """Who a new case calls, checked: staff by person, families by address only."""

    family_worker: models.Person | None
    staff: tuple[models.Person, ...]
    externals: list[dict[str, Any]]


@dataclass(frozen=True)
class _Checked:
    """A request to open a case, checked: the people and units it names exist and may be."""

    owner: models.Person
    owner_role: str
    known_on: dt.date
    school: models.Unit | None
    people: _Participants
    report: models.Report | None


def open_case(desk: Desk, request: CaseRequest) -> Outcome:
    """Open a cooperation case; its owner is whoever raised it (processbärare)."""
    desk.require(Action.OPEN_CASE)
    checked = _check(desk, request)
    case = _new_case(desk, request, checked)
    desk.session.add(case)
    desk.session.flush()
    result = sync_case(desk.session, case, desk.now, "case changed")
    first = rules_.deadlines(case_view(desk.session, case), desk.rules)[0]
    desk.audit(
        "opened",
        case_subject(desk.session, case),
        owner=checked.owner.key,
        owner_role=checked.owner_role,
        known_on=checked.known_on.isoformat(),
        first_deadline=first.last_day.isoformat(),
        sip=request.sip,
        report=checked.report.reference if checked.report else None,
        externals=len(checked.people.externals),
    )
    return Outcome(
        case.reference,
        (
            f"Ärende {case.reference} öppnat; processbärare {checked.owner.name}",
            f"Första mötet senast {first.last_day}; samtycke krävs innan mötet bokas",
        ),
        result,
    )


def _check(desk: Desk, request: CaseRequest) -> _Checked:
    owner = desk.person(request.owner, "--owner")
    owner_role = _owner_role(desk, owner, request.owner_role)
    known_on = request.known_on or desk.today
    rules_.check_open(known_on, desk.now, owner_role, desk.rules)
    school = _school(desk, request.school)
    people = _participants(desk, request)
    report = find_report(desk, request.report) if request.report else None
    if report is not None:
        _refuse_outside_staff(desk, report_subject(report), people)
    return _Checked(owner, owner_role, known_on, school, people, report)


def _new_case(desk: Desk, request: CaseRequest, checked: _Checked) -> models.Case:
    people, report = checked.people, checked.report
    return models.Case(
        municipality_id=desk.municipality_id,
        reference=allocate_reference(desk.session, desk.municipality_id, desk.today.year),
        state=CaseState.OPEN.value,
        owner_id=checked.owner.id,
        owner_role=checked.owner_role,
        known_on=checked.known_on,
        school_unit_id=checked.school.id if checked.school else None,
        family_worker_id=people.family_worker.id if people.family_worker else None,
        staff=list(dict.fromkeys(p.key for p in people.staff)),
        externals=people.externals,
        adult_pupil=request.adult_pupil,
        sip=request.sip,
        report_id=report.id if report else None,
        opened_at=desk.now,
        opened_by_id=desk.person_acting.id,
        rounds=0,
        follow_ups=[],
    )


def _owner_role(desk: Desk, owner: models.Person, asked: str | None) -> str:
    """The role the owner owns the case in: as asked, or the first owner role they hold."""
    rules = desk.rules
    owner_role = asked or next((r for r in rules.owner_roles if desk.holds(owner, r)), None)
    if owner_role is None or not desk.holds(owner, owner_role):
        allowed = ", ".join(rules.owner_roles)
        raise rules_.CaseRuleError(f"the case owner must hold one of the roles {allowed}")
    return owner_role


def _participants(desk: Desk, request: CaseRequest) -> _Participants:
    family_worker = (
        desk.person(request.family_worker, "--family-worker") if request.family_worker else None
    )
    staff = tuple(desk.person(k, "--staff") for k in request.staff)
    externals = [
        {"kind": "guardian", "email": check_address(g, "a guardian's address")}
        for g in request.guardians
    ]
    if request.pupil:
        externals.append({"kind": "pupil", "email": check_address(request.pupil, "--pupil")})
    return _Participants(family_worker, staff, externals)


def _refuse_outside_staff(desk: Desk, linked: Subject, people: _Participants) -> None:
    """Guardians and pupils of a case that follows an abuse report are never even recorded,
    nor is anyone else who is not staff (scheduler/confidential.py)."""
    for external in people.externals:
        refuse_external(linked, external["kind"], "a case participant")
    if not linked.suspected_abuse:
        return
    for person, option in [
        (people.family_worker, "--family-worker"),
        *((p, "--staff") for p in people.staff),
    ]:
        if person is not None and recipient_problem(
            desk.session, desk.municipality, person.id, person.email
        ):
            refuse_external(linked, "non-staff", f"a participant given by {option}")


def _school(desk: Desk, key: str | None) -> models.Unit | None:
    if key is None:
        return None
    unit = desk.unit(key, "--school")
    if unit.kind not in {k.value for k in SCHOOL_KINDS}:
        raise CaseInputError(f"--school: {unit.name} is not a förskola, grundskola or gymnasium")
    return unit


def close_case(desk: Desk, reference: str) -> Outcome:
    """Only the case owner (or an administrator) closes; records who and when."""
    case = find_case(desk, reference)
    actor = desk.person_acting
    allowed = desk.may(Action.CLOSE_CASE, case)
    view = rules_.close_case(case_view(desk.session, case), desk.now, allowed)
    case.closed_by_id = actor.id
    result = change_case(desk, case, view, "closed", "case closed")
    return Outcome(
        reference,
        (
            f"Ärende {reference} avslutat av {actor.name}; "
            f"{len(result.cancelled)} väntande meddelande(n) stoppade",
        ),
        result,
    )
