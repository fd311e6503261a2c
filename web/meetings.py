"""Möten: the booked meetings the viewer may see, the routine meetings still to book, one
meeting's invitees and answers, and booking, moving or calling off a routine meeting.

Each route: a rule, the viewer, a call into `service.meeting_views` (what is shown) or
`service.meetings` (booking, moving, calling off), a template. Who may see or change a meeting is
decided there, not here.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from service import meeting_views as views
from service import meetings as changes
from web.access import Rule, Viewer, rule
from web.deps import Db, Refused, csrf, now, page, viewer

router = APIRouter()

Staff = Annotated[Viewer, Depends(viewer(Rule.STAFF))]
RoutineKey = Annotated[str, Path(min_length=1, max_length=64)]
Occurrence = Annotated[str, Path(min_length=1, max_length=32)]
Reference = Annotated[str, Path(min_length=1, max_length=16)]
Number = Annotated[int, Path(ge=1, le=1000)]
Field = Annotated[str, Form(max_length=40)]

NOT_FOUND = "Mötet finns inte, eller så hör det inte till dina möten."
FORBIDDEN = "Bara den som kallar till mötet eller en samordnare kan flytta eller ställa in det."
BOOK_FORBIDDEN = "Bara den som kallar till mötet eller en samordnare kan boka det."
ALREADY_BOOKED = "Mötet är redan bokat. Flytta det på mötets sida i stället."


def _horizon(request: Request) -> int:
    return int(request.app.state.config.horizon_days)


@router.get("/moten")
@rule(Rule.STAFF)
def meetings(request: Request, session: Db, who: Staff) -> Response:
    return _meetings_page(request, session, who)


def _meetings_page(
    request: Request,
    session: Db,
    who: Viewer,
    *,
    status: int = 200,
    failed: str = "",
    errors: dict[str, str] | None = None,
    asked: dict[str, str] | None = None,
) -> Response:
    moment = now(request)
    lines = views.meetings(session, who, moment)
    return page(
        request,
        "meetings.html",
        status=status,
        ahead=[m for m in lines if m.start >= moment],
        past=[m for m in lines if m.start < moment],
        unbooked=views.meetings_to_book(session, who, moment),
        failed=failed,
        errors=errors or {},
        asked=asked or {},
    )


@router.post("/moten/rutin/{routine}/{occurrence}/boka", dependencies=[Depends(csrf)])
@rule(Rule.STAFF)
def book_page(
    request: Request,
    session: Db,
    who: Staff,
    routine: RoutineKey,
    occurrence: Occurrence,
    datum: Field = "",
    tid: Field = "",
    plats: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    try:
        changes.book_on_page(
            session, who, routine, occurrence, datum, tid, plats, now(request), _horizon(request)
        )
    except changes.MeetingNotShown:
        raise Refused(404, NOT_FOUND) from None
    except changes.MeetingForbidden:
        raise Refused(403, BOOK_FORBIDDEN) from None
    except changes.MeetingAlreadyBooked:
        raise Refused(409, ALREADY_BOOKED) from None
    except changes.MeetingInputError as exc:
        return _meetings_page(
            request,
            session,
            who,
            status=400,
            failed=f"{routine}-{occurrence}",
            errors=exc.errors,
            asked={"datum": datum, "tid": tid, "plats": plats},
        )
    return RedirectResponse(f"/moten/rutin/{routine}/{occurrence}?klart=bokat", status_code=303)


@router.get("/moten/rutin/{routine}/{occurrence}")
@rule(Rule.STAFF)
def routine_meeting(
    request: Request, session: Db, who: Staff, routine: RoutineKey, occurrence: Occurrence
) -> Response:
    meeting = _shown(request, session, who, routine, occurrence)
    done = request.query_params.get("klart")
    return page(request, "meetings_detail.html", meeting=meeting, done=done, errors={}, asked={})


@router.post("/moten/rutin/{routine}/{occurrence}/flytta", dependencies=[Depends(csrf)])
@rule(Rule.STAFF)
def move_meeting(
    request: Request,
    session: Db,
    who: Staff,
    routine: RoutineKey,
    occurrence: Occurrence,
    datum: Field = "",
    tid: Field = "",
) -> Response:
    try:
        changes.move_meeting(
            session, who, routine, occurrence, datum, tid, now(request), _horizon(request)
        )
    except changes.MeetingNotShown:
        raise Refused(404, NOT_FOUND) from None
    except changes.MeetingForbidden:
        raise Refused(403, FORBIDDEN) from None
    except changes.MeetingInputError as exc:
        meeting = _shown(request, session, who, routine, occurrence)
        return page(
            request,
            "meetings_detail.html",
            status=400,
            meeting=meeting,
            done=None,
            errors=exc.errors,
            asked={"datum": datum, "tid": tid},
        )
    return RedirectResponse(f"/moten/rutin/{routine}/{occurrence}?klart=flyttat", status_code=303)


@router.get("/moten/rutin/{routine}/{occurrence}/stall-in")
@rule(Rule.STAFF)
def confirm_call_off(
    request: Request, session: Db, who: Staff, routine: RoutineKey, occurrence: Occurrence
) -> Response:
    meeting = _shown(request, session, who, routine, occurrence)
    if not meeting.may_change:
        raise Refused(403, FORBIDDEN)
    return page(request, "meetings_cancel.html", meeting=meeting)


@router.post("/moten/rutin/{routine}/{occurrence}/stall-in", dependencies=[Depends(csrf)])
@rule(Rule.STAFF)
def call_off(
    request: Request, session: Db, who: Staff, routine: RoutineKey, occurrence: Occurrence
) -> Response:
    try:
        changes.call_off_meeting(session, who, routine, occurrence, now(request), _horizon(request))
    except changes.MeetingNotShown:
        raise Refused(404, NOT_FOUND) from None
    except changes.MeetingForbidden:
        raise Refused(403, FORBIDDEN) from None
    except changes.MeetingInputError as exc:
        raise Refused(409, " ".join(exc.errors.values())) from None
    return RedirectResponse(f"/moten/rutin/{routine}/{occurrence}?klart=installt", status_code=303)


@router.get("/moten/arende/{reference}/{number}")
@rule(Rule.STAFF)
def case_meeting(
    request: Request, session: Db, who: Staff, reference: Reference, number: Number
) -> Response:
    try:
        meeting = views.case_meeting(session, who, reference, number, now(request))
    except changes.MeetingNotShown:
        raise Refused(404, NOT_FOUND) from None
    return page(request, "meetings_detail.html", meeting=meeting, done=None, errors={}, asked={})


def _shown(
    request: Request, session: Session, who: Viewer, routine: str, occurrence: str
) -> views.MeetingDetail:
    """The routine meeting as the viewer may see it; 404 when they may not (or it is not)."""
    try:
        return views.routine_meeting(session, who, routine, occurrence, now(request))
    except changes.MeetingNotShown:
        raise Refused(404, NOT_FOUND) from None
