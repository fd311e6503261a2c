"""What each web page shows, narrowed to what the signed-in person (the `Viewer`) may see.

Every function takes the `Viewer` and starts from their municipality, so no page can show
another municipality's rows. Coordinators see the whole municipality; other staff see the
routines they own or receive messages for, the units they hold a role in, and the cases and
reports they take part in. Every case or report listed is audited (`case_audit`, action
`web.listed`), like any other view of it.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

import models
from scheduler.calendar import STOCKHOLM, local_date
from scheduler.cases import deadlines
from scheduler.cases.subjects import case_view, rules_of
from scheduler.municipality import MunicipalitySettings
from service.planview import year_plan
from worker.render import Renderer


class State(StrEnum):
    PLANNED = "planned"
    DUE = "due"
    DONE = "done"
    MISSED = "missed"


STATE_TEXT = {
    State.PLANNED: "Planerad",
    State.DUE: "Aktuell",
    State.DONE: "Klar",
    State.MISSED: "Missad",
}
KIND_TEXT = {
    "meeting": "Möte",
    "deadline": "Sista dag",
    "mailout": "Utskick",
    "reminder": "Påminnelse",
}
_STILL_GOING = {"planned", "sending", "retrying"}


def occurrence_state(
    day: dt.date,
    today: dt.date,
    delivery_states: list[str],
    unbooked_meeting: bool,
    due_days: int,
) -> State:
    """planned (ahead), due (close, or its messages still going), done, missed (a message
    failed, or a meeting whose day passed without being booked)."""
    if "failed" in delivery_states:
        return State.MISSED
    if day > today + dt.timedelta(days=due_days):
        return State.PLANNED
    if day >= today:
        return State.DUE
    if unbooked_meeting:
        return State.MISSED
    if _STILL_GOING & set(delivery_states):
        return State.DUE
    return State.DONE


# --- who is looking ------------------------------------------------------------------------------

COORDINATOR_ROLES = frozenset({"samordnare"})


@dataclass(frozen=True)
class Role:
    role: str
    unit_id: int | None
    unit_key: str | None


@dataclass(frozen=True)
class Viewer:
    """The signed-in person as the web app sees them, on one day."""

    account_id: int
    person_id: int
    person_key: str
    name: str
    email: str
    municipality_id: int
    municipality_name: str
    roles: tuple[Role, ...]

    @property
    def is_staff(self) -> bool:
        return bool(self.roles)

    @property
    def is_coordinator(self) -> bool:
        return any(r.role in COORDINATOR_ROLES for r in self.roles)

    @property
    def unit_ids(self) -> frozenset[int]:
        return frozenset(r.unit_id for r in self.roles if r.unit_id is not None)

    def holds(self, role: str, unit_id: int | None = None) -> bool:
        return any(r.role == role and (unit_id is None or r.unit_id == unit_id) for r in self.roles)

    def allowed(self, which: str) -> bool:
        """May see what the rule `which` guards (web.access.Rule: a str enum)."""
        if which == "coordinator":
            return self.is_coordinator
        if which == "staff":
            return self.is_staff
        return True


def load_viewer(session: Session, account_id: int, today: dt.date) -> Viewer | None:
    """The viewer behind an account, or None when it is disabled or its person left."""
    account = session.get(models.Account, account_id)
    if account is None or account.disabled:
        return None
    person = session.get(models.Person, account.person_id)
    if person is None or not person.active:
        return None
    municipality = session.get_one(models.Municipality, person.municipality_id)
    units = {
        u.id: u.key
        for u in session.scalars(
            select(models.Unit).where(models.Unit.municipality_id == person.municipality_id)
        )
    }
    roles = tuple(
        Role(a.role, a.unit_id, units.get(a.unit_id) if a.unit_id is not None else None)
        for a in person.roles
        if (a.valid_from is None or a.valid_from <= today)
        and (a.valid_to is None or today <= a.valid_to)
    )
    return Viewer(
        account_id=account.id,
        person_id=person.id,
        person_key=person.key,
        name=person.name,
        email=person.email,
        municipality_id=person.municipality_id,
        municipality_name=municipality.name,
        roles=roles,
    )


# --- the year ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MessageLine:
    date: dt.date
    purpose: str
    subject: str
    state: str  # the planview summary: "sent", "2 sent, 1 failed", ...


@dataclass(frozen=True)
class YearItem:
    date: dt.date
    routine: str
    occurrence: str
    name: str
    kind: str
    state: State
    booked: str | None  # the booked start, local time, for a meeting
    messages: tuple[MessageLine, ...] = ()

    @property
    def kind_text(self) -> str:
        return KIND_TEXT.get(self.kind, self.kind)

    @property
    def state_text(self) -> str:
        return STATE_TEXT[self.state]


def year_items(
    session: Session,
    viewer: Viewer,
    year: int,
    renderer: Renderer,
    now: dt.datetime,
    due_days: int,
) -> list[YearItem]:
    """The year's occurrences (on their day), each with its state and messages, by date."""
    items = year_plan(session, viewer.municipality_id, year, renderer, now=now)
    occurrences: dict[tuple[str, str], dict[str, Any]] = {}
    messages: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        key = (item["routine"], item["occurrence"])
        if item["kind"] == "message":
            messages[key].append(item)
        else:
            occurrences[key] = item
    today = local_date(now)
    me = viewer.email.lower()
    found = []
    for key, occurrence in occurrences.items():
        own = messages.get(key, [])
        people = {e.lower() for e in occurrence["recipients"]}
        people |= {r.lower() for m in own for r in m["recipients"]}
        if not viewer.is_coordinator and me not in people:
            continue
        found.append(_year_item(occurrence, own, today, due_days))
    found.sort(key=lambda i: (i.date, i.name))
    return found


def _year_item(
    occurrence: dict[str, Any], own: list[dict[str, Any]], today: dt.date, due_days: int
) -> YearItem:
    day = dt.date.fromisoformat(occurrence["date"])
    states = [d["state"] for m in own for d in m["deliveries"]]
    unbooked = occurrence["kind"] == "meeting" and not occurrence.get("booked")
    booked = None
    if occurrence.get("start"):
        booked = dt.datetime.fromisoformat(occurrence["start"]).strftime("%Y-%m-%d %H:%M")
    return YearItem(
        date=day,
        routine=occurrence["routine"],
        occurrence=occurrence["occurrence"],
        name=occurrence["subject"],
        kind=occurrence["kind"],
        state=occurrence_state(day, today, states, unbooked, due_days),
        booked=booked,
        messages=tuple(
            MessageLine(dt.date.fromisoformat(m["date"]), m["purpose"], m["subject"], m["state"])
            for m in sorted(own, key=lambda m: m["due_at"])
        ),
    )


# --- to do ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TodoItem:
    date: dt.date
    what: str  # "Rutin", "Ärende", "Anmälan"
    title: str
    detail: str
    overdue: bool
    reference: str | None = None


def todo(
    session: Session,
    viewer: Viewer,
    renderer: Renderer,
    now: dt.datetime,
    weeks: int,
    due_days: int,
) -> list[TodoItem]:
    """What is late and what is due within `weeks`: routines, cases and reports, by date."""
    today = local_date(now)
    horizon = today + dt.timedelta(weeks=weeks)
    found: list[TodoItem] = []
    for year in sorted({(today - dt.timedelta(days=90)).year, today.year, horizon.year}):
        for item in year_items(session, viewer, year, renderer, now, due_days):
            if item.date > horizon or item.state is State.DONE:
                continue
            if item.date < today - dt.timedelta(days=90):
                continue
            found.append(
                TodoItem(
                    date=item.date,
                    what="Rutin",
                    title=item.name,
                    detail=f"{item.kind_text}: {item.state_text.lower()}",
                    overdue=item.state is State.MISSED or item.date < today,
                )
            )
    found += _case_items(session, viewer, today, horizon, now)
    found += _report_items(session, viewer, today, now)
    found.sort(key=lambda i: (not i.overdue, i.date, i.title))
    return found


def visible_cases(session: Session, viewer: Viewer) -> list[models.Case]:
    c = models.Case
    query = select(c).where(c.municipality_id == viewer.municipality_id)
    cases = list(session.scalars(query.order_by(c.reference)))
    if viewer.is_coordinator:
        return cases
    return [case for case in cases if case_visible(viewer, case)]


def case_visible(viewer: Viewer, case: models.Case) -> bool:
    """The case owner, its family worker and staff, and the rektor of its school."""
    if case.municipality_id != viewer.municipality_id:
        return False
    if viewer.is_coordinator or viewer.person_id in (case.owner_id, case.family_worker_id):
        return True
    if viewer.person_key in case.staff:
        return True
    return case.school_unit_id is not None and viewer.holds("rektor", case.school_unit_id)


def report_visible(viewer: Viewer, report: models.Report, intake_role: str) -> bool:
    """The reporter, the intake unit the report went to, and coordinators."""
    if report.municipality_id != viewer.municipality_id:
        return False
    if viewer.is_coordinator or viewer.person_id == report.reporter_id:
        return True
    return viewer.holds(intake_role, report.intake_unit_id)


def _case_items(
    session: Session, viewer: Viewer, today: dt.date, horizon: dt.date, now: dt.datetime
) -> list[TodoItem]:
    municipality = session.get_one(models.Municipality, viewer.municipality_id)
    rules = rules_of(municipality)
    found: list[TodoItem] = []
    for case in visible_cases(session, viewer):
        if case.state == "closed":
            continue
        listed = False
        view = case_view(session, case)
        if case.consent_recorded_at is None or case.state == "withdrawn":
            found.append(
                TodoItem(
                    today,
                    "Ärende",
                    f"Ärende {case.reference}",
                    "Samtycke saknas",
                    False,
                    case.reference,
                )
            )
            listed = True
        for deadline in deadlines(view, rules):
            if deadline.met or deadline.last_day > horizon:
                continue
            found.append(
                TodoItem(
                    deadline.last_day,
                    "Ärende",
                    f"Ärende {case.reference}",
                    f"Möte {deadline.meeting} ska hållas senast denna dag",
                    deadline.last_day < today,
                    case.reference,
                )
            )
            listed = True
        for item in case.sip_items:
            if item.due_on <= horizon:
                found.append(
                    TodoItem(
                        item.due_on,
                        "Ärende",
                        f"Ärende {case.reference}",
                        f"SIP-insats {item.number}",
                        item.due_on < today,
                        case.reference,
                    )
                )
                listed = True
        if listed:
            audit_listed(session, viewer, "case", case.reference, now)
    return found


def _report_items(
    session: Session, viewer: Viewer, today: dt.date, now: dt.datetime
) -> list[TodoItem]:
    municipality = session.get_one(models.Municipality, viewer.municipality_id)
    intake_role = rules_of(municipality).intake_role
    r = models.Report
    query = select(r).where(r.municipality_id == viewer.municipality_id, r.state == "registered")
    found = []
    for report in session.scalars(query.order_by(r.reference)):
        if not report_visible(viewer, report, intake_role):
            continue
        day = report.registered_at.astimezone(STOCKHOLM).date()
        found.append(
            TodoItem(
                day,
                "Anmälan",
                f"Anmälan {report.reference}",
                "Mottagandet är inte bekräftat",
                day < today,
                report.reference,
            )
        )
        audit_listed(session, viewer, "report", report.reference, now)
    return found


def audit_listed(
    session: Session, viewer: Viewer, series: str, reference: str, now: dt.datetime
) -> None:
    session.add(
        models.CaseAudit(
            municipality_id=viewer.municipality_id,
            series=series,
            reference=reference,
            at=now,
            actor_id=viewer.person_id,
            actor=viewer.person_key,
            action="web.listed",
            detail={"page": "att-gora"},
        )
    )


# --- people and roles ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Holder:
    name: str
    email: str
    role: str
    period: str


@dataclass(frozen=True)
class UnitPeople:
    name: str
    kind: str
    holders: tuple[Holder, ...]


def people(session: Session, viewer: Viewer) -> list[UnitPeople]:
    """Who holds which role, per unit: every unit for a coordinator, one's own units else."""
    municipality = session.get_one(models.Municipality, viewer.municipality_id)
    role_names: dict[str, str] = dict(MunicipalitySettings.of(municipality).role_names)
    u = models.Unit
    units = list(
        session.scalars(
            select(u).where(u.municipality_id == viewer.municipality_id).order_by(u.name)
        )
    )
    if not viewer.is_coordinator:
        units = [unit for unit in units if unit.id in viewer.unit_ids]
    a, p = models.RoleAssignment, models.Person
    query = (
        select(a, p)
        .join(p, a.person_id == p.id)
        .where(p.municipality_id == viewer.municipality_id, p.active.is_(True))
        .order_by(p.name)
    )
    if not viewer.is_coordinator:
        query = query.where(or_(a.unit_id.in_(viewer.unit_ids), p.id == viewer.person_id))
    by_unit: dict[int | None, list[Holder]] = defaultdict(list)
    for assignment, person in session.execute(query).all():
        by_unit[assignment.unit_id].append(
            Holder(
                person.name,
                person.email,
                role_names.get(assignment.role, assignment.role),
                _period(assignment.valid_from, assignment.valid_to),
            )
        )
    found = [UnitPeople(unit.name, unit.kind, tuple(by_unit[unit.id])) for unit in units]
    if by_unit.get(None):
        found.append(UnitPeople("Utan enhet", "", tuple(by_unit[None])))
    return [group for group in found if group.holders]


def _period(start: dt.date | None, end: dt.date | None) -> str:
    if start is None and end is None:
        return "tills vidare"
    if end is None:
        return f"från {start}"
    if start is None:
        return f"till {end}"
    return f"{start} – {end}"
