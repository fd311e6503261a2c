"""Reading a report or a case (for signed-in staff), and keeping notes on it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

import models
from scheduler.calendar import STOCKHOLM
from scheduler.cases import rules as rules_
from scheduler.cases.subjects import Subject, case_view
from service.cases.inputs import free_text
from service.cases.references import find_either, series_of
from service.cases.results import Outcome
from service.desk import Desk
from service.permissions import Action


def add_note(desk: Desk, reference: str, text: str) -> Outcome:
    """A note for signed-in staff. It never enters a message, the audit, or a log line."""
    matter = find_either(desk, reference)
    author = desk.person_acting
    desk.require(Action.ADD_NOTE, matter)
    series = series_of(matter)
    desk.session.add(
        models.CaseNote(
            municipality_id=desk.municipality_id,
            series=series,
            reference=reference,
            author_id=author.id,
            at=desk.now,
            text=free_text(text, "the note"),
        )
    )
    desk.audit("note_added", Subject(desk.municipality_id, series, reference, False))
    return Outcome(reference, (f"Anteckning sparad i {reference}",))


def show(desk: Desk, reference: str, notes: bool = False) -> dict[str, Any]:
    """Everything about a report or case, for its parties (notes only when asked), as JSON."""
    matter = find_either(desk, reference)
    desk.require(Action.READ_NOTES if notes else Action.SHOW, matter)
    data: dict[str, Any] = {"reference": reference, "series": series_of(matter)}
    if isinstance(matter, models.Case):
        data.update(_case(desk, matter))
    else:
        data.update(state=matter.state, suspected_abuse=matter.suspected_abuse)
    data["messages"] = _messages(desk, data["series"], reference)
    if notes:
        data["notes"] = _notes(desk, reference)
    return data


def _case(desk: Desk, case: models.Case) -> dict[str, Any]:
    view = case_view(desk.session, case)
    return {
        "state": view.state.value,
        "owner": view.owner,
        "known_on": view.known_on.isoformat(),
        "sip": view.sip,
        "deadlines": [
            {"meeting": d.meeting, "last_day": d.last_day.isoformat(), "met": d.met}
            for d in rules_.deadlines(view, desk.rules)
        ],
        "meetings": [
            {
                "number": m.number,
                "state": m.state.value,
                "start": m.start.astimezone(STOCKHOLM).isoformat(),
                "location": m.location,
                "held_on": m.held_on.isoformat() if m.held_on else None,
            }
            for m in view.meetings
        ],
        "follow_ups": [d.isoformat() for d in view.follow_ups],
    }


def _messages(desk: Desk, series: str, reference: str) -> list[dict[str, Any]]:
    n = models.Notification
    found = desk.session.execute(
        select(n.purpose, n.status, n.due_at)
        .where(
            n.municipality_id == desk.municipality_id,
            n.routine_key == series,
            n.occurrence == reference,
        )
        .order_by(n.due_at, n.id)
    )
    return [
        {"purpose": p, "status": s, "due": d.astimezone(STOCKHOLM).isoformat()} for p, s, d in found
    ]


def _notes(desk: Desk, reference: str) -> list[dict[str, Any]]:
    return [
        {"at": note.at.astimezone(STOCKHOLM).isoformat(), "text": note.text}
        for note in desk.session.scalars(
            select(models.CaseNote)
            .where(
                models.CaseNote.municipality_id == desk.municipality_id,
                models.CaseNote.reference == reference,
            )
            .order_by(models.CaseNote.id)
        )
    ]
