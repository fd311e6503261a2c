"""The to-do page: routines, cases and reports that are late or due soon, for the `Viewer`.

Coordinators see the whole municipality; other staff see the cases and reports they take
part in. Every case or report listed is audited (`case_audit`, action `web.listed`), like any
other view of it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

import models
from scheduler.calendar import STOCKHOLM, local_date
from scheduler.cases import deadlines
from scheduler.cases.subjects import case_view, rules_of
from service.viewer import Viewer
from service.web_views import State, year_items
from worker.render import Renderer


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
