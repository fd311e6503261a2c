"""SIP (samordnad individuell plan): mark a case as one; add plan rows (mål, insats, ansvar,
tid)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from sqlalchemy import select

import models
from core.errors import CaseInputError
from scheduler.cases import rules as rules_
from scheduler.cases.subjects import case_view, role_ref_problem
from scheduler.cases.views import CaseState
from service.cases.changes import change_case
from service.cases.inputs import free_text
from service.cases.references import find_case
from service.cases.results import Outcome
from service.desk import Desk
from service.permissions import Action


def mark_sip(desk: Desk, reference: str, follow_up: dt.date | None = None) -> Outcome:
    """Mark a case as a SIP (and set or move the plan's follow-up date)."""
    case = find_case(desk, reference)
    desk.require(Action.MARK_SIP, case)
    view = case_view(desk.session, case)
    if view.state is CaseState.CLOSED:
        raise rules_.CaseRuleError(f"case {reference} is closed")
    if follow_up is not None and follow_up <= desk.today:
        raise rules_.CaseRuleError(f"the follow-up date must be after today ({follow_up})")
    case.sip = True
    view = replace(view, sip=True, sip_follow_up=follow_up or view.sip_follow_up)
    result = change_case(
        desk,
        case,
        view,
        "sip",
        "SIP changed",
        follow_up=follow_up.isoformat() if follow_up else None,
    )
    return Outcome(reference, (f"Ärende {reference} är en SIP",), result)


@dataclass(frozen=True)
class SipItemRequest:
    goal: str  # staff-only free text
    action: str  # staff-only free text
    responsible: str  # role reference
    due_on: dt.date


def add_sip_item(desk: Desk, reference: str, request: SipItemRequest) -> Outcome:
    case = find_case(desk, reference)
    desk.require(Action.ADD_SIP_ITEM, case)
    units = set(
        desk.session.scalars(
            select(models.Unit.key).where(models.Unit.municipality_id == desk.municipality_id)
        )
    )
    problem = role_ref_problem(desk.municipality, request.responsible, units)
    if problem:
        raise CaseInputError(f"--responsible: {problem}")
    goal = free_text(request.goal, "--goal")
    action = free_text(request.action, "--action")
    view, number = rules_.add_sip_item(
        case_view(desk.session, case), request.responsible, request.due_on, desk.now
    )
    case.sip_items.append(
        models.SipItem(
            number=number,
            goal=goal,
            action=action,
            responsible=request.responsible,
            due_on=request.due_on,
            created_at=desk.now,
        )
    )
    result = change_case(
        desk,
        case,
        view,
        "sip_item",
        "SIP changed",
        item=number,
        responsible=request.responsible,
        due_on=request.due_on.isoformat(),
    )
    return Outcome(reference, (f"Ärende {reference}: insats {number} tillagd i planen",), result)
