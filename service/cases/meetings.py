"""Case meetings: book (or move), record as held, record the minutes' follow-up dates."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from core.errors import CaseInputError
from scheduler.bookings import NonexistentLocalTime
from scheduler.cases import rules as rules_
from scheduler.cases.subjects import case_view
from scheduler.cases.views import CaseView, MeetingState
from service.cases.changes import change_case
from service.cases.inputs import check_place, day
from service.cases.references import find_case
from service.cases.results import Outcome
from service.desk import Desk
from service.permissions import Action


@dataclass(frozen=True)
class BookingRequest:
    date: str
    time: str
    place: str | None = None  # the key of one of the profile's places
    meeting: int | None = None


def book_meeting(desk: Desk, reference: str, request: BookingRequest) -> Outcome:
    """Book (or move) a case meeting: invites go to every participant, one each."""
    case = find_case(desk, reference)
    desk.require(Action.BOOK_MEETING, case)
    location = check_place(desk.municipality, request.place)
    on = day(request.date, "date")
    at = _time(request.time)
    try:
        start = rules_.local_start(on, at)
    except NonexistentLocalTime as exc:
        raise CaseInputError(str(exc)) from None
    before = case_view(desk.session, case)
    minutes = desk.rules.meeting_minutes
    view = rules_.book_meeting(before, request.meeting, start, minutes, location, desk.now)
    if view == before:
        return Outcome(reference, (f"Ärende {reference}: redan bokat så; inget ändrades",))
    changed = next(m for m in view.meetings if m not in before.meetings)
    result = change_case(
        desk,
        case,
        view,
        "booked",
        f"meeting {changed.number} booked",
        meeting=changed.number,
        date=on.isoformat(),
        time=at.isoformat("minutes"),
        sequence=changed.sequence,
    )
    lines = [
        f"Ärende {reference}: möte {changed.number} bokat {on} kl. {at:%H.%M}; "
        f"{result.created} meddelande(n) planerade, {len(result.cancelled)} stoppade"
    ]
    lines += _late_warning(desk, view, changed.number)
    return Outcome(reference, tuple(lines), result)


def _time(text: str) -> dt.time:
    try:
        return dt.time.fromisoformat(text)
    except ValueError:
        raise CaseInputError("TIME: not a time; write HH:MM") from None


def _late_warning(desk: Desk, view: CaseView, number: int) -> list[str]:
    deadline = next((d for d in rules_.deadlines(view, desk.rules) if d.meeting == number), None)
    if deadline is None or deadline.met:
        return []
    return [
        f"OBS: fristen för möte {number} går ut {deadline.last_day}; mötet hålls efter "
        "den, så förseningen rapporteras"
    ]


def hold_meeting(
    desk: Desk, reference: str, meeting: int | None = None, held_on: dt.date | None = None
) -> Outcome:
    """Record that a meeting took place (the earliest booked one unless told which)."""
    case = find_case(desk, reference)
    desk.require(Action.HOLD_MEETING, case)
    before = case_view(desk.session, case)
    if meeting is None:
        booked = [m.number for m in before.meetings if m.state is MeetingState.BOOKED]
        if not booked:
            raise rules_.CaseRuleError(f"case {reference} has no booked meeting to record as held")
        meeting = booked[0]
    view = rules_.hold_meeting(before, meeting, held_on, desk.now)
    held = view.meeting(meeting)
    assert held is not None
    result = change_case(
        desk,
        case,
        view,
        "held",
        f"meeting {meeting} held",
        meeting=meeting,
        held_on=held.day.isoformat(),
    )
    return Outcome(
        reference,
        (
            f"Ärende {reference}: möte {meeting} hållet {held.day}; "
            "mall för minnesanteckningar skickas",
        ),
        result,
    )


def record_minutes(desk: Desk, reference: str, follow_ups: list[dt.date]) -> Outcome:
    """Follow-up dates from the minutes: each becomes a reminder to the case owner."""
    case = find_case(desk, reference)
    desk.require(Action.RECORD_MINUTES, case)
    if not follow_ups:
        raise CaseInputError("give at least one --follow-up date")
    view = rules_.add_follow_ups(case_view(desk.session, case), follow_ups, desk.now)
    result = change_case(
        desk,
        case,
        view,
        "minutes",
        "minutes recorded",
        follow_ups=[d.isoformat() for d in sorted(follow_ups)],
    )
    return Outcome(
        reference,
        (f"Ärende {reference}: {len(follow_ups)} uppföljningsdatum registrerade",),
        result,
    )
