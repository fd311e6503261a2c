"""The pages: start, Årshjul, Att göra, Leveranslogg (and resending), Personer och roller.

Each route: a rule, the viewer, a call into `service.web_views` (or `service.todo_view`,
`service.delivery_log`), a template. Nothing else.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from core.dates import MONTHS
from scheduler.calendar import local_date
from service import delivery_log as log_views
from service import todo_view
from service import web_views as queries
from web import wheel
from web.access import Rule, Viewer, rule
from web.deps import Db, Refused, csrf, now, page, viewer

router = APIRouter()

Staff = Annotated[Viewer, Depends(viewer(Rule.STAFF))]
Coordinator = Annotated[Viewer, Depends(viewer(Rule.COORDINATOR))]
Year = Annotated[int | None, Query(ge=2000, le=2199)]
LEGEND = [(state.value, text) for state, text in queries.STATE_TEXT.items()]


@router.get("/")
@rule(Rule.SIGNED_IN)
def start(request: Request, who: Annotated[Viewer, Depends(viewer(Rule.SIGNED_IN))]) -> Response:
    if who.is_staff:
        return RedirectResponse("/att-gora", status_code=303)
    return page(request, "start.html")


def _year(request: Request, ar: int | None) -> int:
    return ar if ar is not None else local_date(now(request)).year


def _wheel_context(request: Request, session: Db, who: Viewer, year: int) -> dict[str, Any]:
    config = request.app.state.config
    moment = now(request)
    items = queries.year_items(
        session, who, year, request.app.state.renderer, moment, config.due_days
    )
    drawing = wheel.draw(
        year,
        [(i.date, i.kind, i.state.value, f"{i.date} {i.name}: {i.state_text}") for i in items],
        local_date(moment),
    )
    return {
        "year": year,
        "items": items,
        "drawing": drawing,
        "legend_entries": LEGEND,
        "kinds": queries.KIND_TEXT,
        "months": MONTHS,
    }


@router.get("/arshjul")
@rule(Rule.STAFF)
def year_wheel(request: Request, session: Db, who: Staff, ar: Year = None) -> Response:
    return page(request, "wheel.html", **_wheel_context(request, session, who, _year(request, ar)))


@router.get("/arshjul/utskrift")
@rule(Rule.STAFF)
def year_wheel_print(request: Request, session: Db, who: Staff, ar: Year = None) -> Response:
    context = _wheel_context(request, session, who, _year(request, ar))
    return page(request, "wheel_print.html", **context)


@router.get("/att-gora")
@rule(Rule.STAFF)
def to_do(request: Request, session: Db, who: Staff) -> Response:
    config = request.app.state.config
    items = todo_view.todo(
        session, who, request.app.state.renderer, now(request), config.todo_weeks, config.due_days
    )
    return page(
        request,
        "todo.html",
        overdue=[i for i in items if i.overdue],
        coming=[i for i in items if not i.overdue],
        weeks=config.todo_weeks,
    )


@router.get("/leveranslogg")
@rule(Rule.COORDINATOR)
def delivery_log(
    request: Request,
    session: Db,
    who: Coordinator,
    visa: Annotated[str, Query(max_length=20)] = "alla",
    sida: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> Response:
    if visa not in log_views.LOG_FILTERS:
        raise Refused(400, "Felaktig uppgift: visa")
    rows, more = log_views.delivery_log(session, who, visa, sida)
    return page(
        request,
        "log.html",
        rows=rows,
        more=more,
        which=visa,
        page_number=sida,
        filters=list(log_views.LOG_FILTERS),
        done=request.query_params.get("klart"),
    )


@router.post("/leveranslogg/{notification_id}/skicka-igen", dependencies=[Depends(csrf)])
@rule(Rule.COORDINATOR)
def resend(
    request: Request,
    session: Db,
    who: Coordinator,
    notification_id: Annotated[int, Path(ge=1, le=2**62)],
) -> Response:
    try:
        log_views.resend(session, who, notification_id, now(request))
    except log_views.NotResendable:
        raise Refused(404, "Meddelandet finns inte eller har inte misslyckats.") from None
    return RedirectResponse("/leveranslogg?visa=misslyckade&klart=1", status_code=303)


@router.get("/personer")
@rule(Rule.STAFF)
def people(request: Request, session: Db, who: Staff) -> Response:
    return page(request, "people.html", units=queries.people(session, who))
