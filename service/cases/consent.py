"""Consent (seed 004: written, before any meeting is booked), and its withdrawal."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from scheduler.cases import rules as rules_
from scheduler.cases.subjects import case_view
from service.cases.changes import change_case
from service.cases.inputs import free_text
from service.cases.references import find_case
from service.cases.results import Outcome
from service.desk import Desk
from service.permissions import Action


@dataclass(frozen=True)
class ConsentRequest:
    given_by: str  # staff-only free text: who gave it
    scope: str  # staff-only free text: what it covers
    given_on: dt.date | None = None
    pupil_own: bool = False


def record_consent(desk: Desk, reference: str, request: ConsentRequest) -> Outcome:
    case = find_case(desk, reference)
    actor = desk.require(Action.RECORD_CONSENT, case)
    given_by = free_text(request.given_by, "--given-by")
    scope = free_text(request.scope, "--scope")
    given_on = request.given_on or desk.today
    if given_on > desk.today:
        raise rules_.CaseRuleError("consent cannot be given in the future")
    view = rules_.give_consent(case_view(desk.session, case), desk.now, request.pupil_own)
    case.consent_given_by = given_by
    case.consent_scope = scope
    case.consent_given_on = given_on
    case.consent_pupil_own = request.pupil_own
    case.consent_recorded_by_id = actor.id if actor else None
    result = change_case(
        desk,
        case,
        view,
        "consent",
        "consent recorded",
        given_on=given_on.isoformat(),
        pupil_own=request.pupil_own,
    )
    return Outcome(reference, (f"Samtycke registrerat i ärende {reference}",), result)


def withdraw_consent(desk: Desk, reference: str) -> Outcome:
    """Consent withdrawn: every pending message is cancelled, meetings to come are called off."""
    case = find_case(desk, reference)
    desk.require(Action.WITHDRAW_CONSENT, case)
    view = rules_.withdraw_consent(case_view(desk.session, case), desk.now)
    case.consent_given_by = None
    case.consent_scope = None
    result = change_case(desk, case, view, "consent_withdrawn", "consent withdrawn")
    return Outcome(
        reference,
        (
            f"Samtycket återkallat i ärende {reference}; "
            f"{len(result.cancelled)} väntande meddelande(n) stoppade",
        ),
        result,
    )
