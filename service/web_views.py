"""What the year wheel and the people page show, narrowed to what the `Viewer` may see.

The viewer is in service.viewer, the to-do list in service.todo_view.

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
from scheduler.calendar import local_date
from scheduler.municipality import MunicipalitySettings
from service.planview import year_plan
from service.viewer import Viewer
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
