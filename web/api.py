"""The JSON API under `/api/`: what the case forms do, for e-services and case-management systems.

Each request carries a per-system token (`Authorization: Bearer …`, made with `samverkan
api-token new`, service/apitokens.py); it is the only way in: no session cookie, no CSRF
token (the rule `Rule.API`, web/access.py). The token names the municipality and the staff
person the system acts as, so every route opens the ordinary desk for that person and calls
the same service function as the CLI (service/cases/): the same permission checks, the same
audit (which also names the system). Nothing else happens here.

Errors are JSON, `{"error": ..., "field": ...}`: 401 no or a bad token, 403 not entitled,
404 no such reference in the token's municipality, 409 the case process does not allow it
now, 422 invalid input (naming the field). An error never repeats what was sent, and changes
nothing (the request's transaction is rolled back). Every string field refuses what looks like
a personal identity number, and text that is not text (NUL, lone surrogates).

The OpenAPI document of these routes is at `/openapi.json`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.dates import DAY_RULE, parse_day
from core.errors import (
    CaseRuleError,
    ConfidentialityError,
    FieldError,
    NotFoundError,
    PermissionRefused,
    SamverkanError,
)
from scheduler.privacy import refuse_identity_number
from service import apitokens, cases
from service.cases.results import Outcome as CaseOutcome
from web.access import Rule, rule
from web.deps import Db, now

PREFIX = "/api"


class ApiError(BaseModel):
    """What went wrong, and which field (null when it is not one field's fault)."""

    error: str
    field: str | None = None


class Unauthorized(Exception):
    """No token, or one that is unknown or revoked."""


def _error(status: int, message: str, field: str | None = None) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    body = ApiError(error=message, field=field).model_dump()
    return JSONResponse(body, status_code=status, headers=headers)


# Where the service's messages name an input (as the CLI names it), the API's field name.
_OPTIONS = {
    "--unit": "unit",
    "--reporter": "reporter",
    "--district": "district",
    "a guardian's address": "guardians",
    "--pupil": "pupil",
    "--owner": "owner",
    "--school": "school",
    "--family-worker": "family_worker",
    "--staff": "staff",
    "--given-by": "given_by",
    "--scope": "scope",
    "--pupil-own": "pupil_own",
    "--place": "place",
    "date": "date",
    "TIME": "time",
    "REFERENCE": "reference",
}
_OPTION = re.compile("|".join(sorted(map(re.escape, _OPTIONS), key=len, reverse=True)))
# A refusal of the case process that is about who acts, not when: 403 like PermissionRefused.
_NOT_ENTITLED = re.compile(r"only the case owner or an administrator may")
# Refusals of the case process that are about one field of the request: 422 naming it.
_RULE_FIELDS = [
    (re.compile(r"(the|a) case owner must"), "owner"),
    (re.compile(r"the case cannot become known in the future"), "known_on"),
    (re.compile(r"consent cannot be given in the future"), "given_on"),
    (re.compile(r".*\(--pupil-own\)"), "pupil_own"),
    (re.compile(r".*(has already passed|is not a working day|must come after meeting)"), "date"),
    (re.compile(r"meetings are numbered|book meeting \d+ before"), "meeting"),
    (re.compile(r".*\(a guardian's address was asked for\)"), "guardians"),
    (re.compile(r".*\(a case participant was asked for\)"), "guardians"),
    (re.compile(r".*\(a participant given by --family-worker was asked for\)"), "family_worker"),
    (re.compile(r".*\(a participant given by --staff was asked for\)"), "staff"),
]


def _field_of(message: str) -> str | None:
    found = _OPTION.match(message)
    if found:
        return _OPTIONS[found.group(0)]
    return next((field for pattern, field in _RULE_FIELDS if pattern.match(message)), None)


def _message_for_api(message: str) -> str:
    """The service's message, with the CLI's option names replaced by the API's fields."""
    return (
        re.sub(r"--[a-z][a-z-]*", lambda m: _OPTIONS.get(m.group(0), m.group(0)), message)
        .replace("TIME:", "time:")
        .replace("REFERENCE:", "reference:")
    )


def _validation_error(exc: RequestValidationError) -> JSONResponse:
    problems = []
    fields = []
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ()) if not isinstance(part, int)]
        name = loc[-1] if len(loc) > 1 else (loc[0] if loc else "request")
        fields.append(name)
        # pydantic's `msg` states the rule (a type, a length, a pattern), never the input.
        problems.append(f"{name}: {error.get('msg', 'invalid')}")
    field = fields[0] if fields else None
    return _error(422, "invalid request; " + "; ".join(dict.fromkeys(problems)), field)


def _refusal(exc: RequestValidationError | StarletteHTTPException | Unauthorized) -> JSONResponse:
    """A request refused before the service was asked."""
    if isinstance(exc, RequestValidationError):
        return _validation_error(exc)
    if isinstance(exc, Unauthorized):
        return _error(401, "a valid API token is required (Authorization: Bearer …)")
    if exc.status_code == 400:  # a body that cannot be read as JSON
        return _error(422, "the body is not valid JSON", "body")
    return _error(exc.status_code, "the request cannot be handled")


def _service_refusal(exc: SamverkanError) -> JSONResponse:
    """The service refused: who may (403), what exists (404), when (409), what was sent (422)."""
    message = str(exc)
    if isinstance(exc, FieldError):
        return _error(422, message, exc.field)
    if isinstance(exc, PermissionRefused) or _NOT_ENTITLED.match(message):
        return _error(403, message)
    field = _field_of(message)
    if isinstance(exc, NotFoundError):
        return _error(404, _message_for_api(message), field)
    if isinstance(exc, CaseRuleError) and field is None:
        return _error(409, _message_for_api(message))
    return _error(422, _message_for_api(message), field)


class ApiRoute(APIRoute):
    """A route of the API: every error it meets is answered as JSON, and nothing was changed
    (the error leaves the request's transaction, `web.deps.db`, which rolls it back)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handle(request)
            except (RequestValidationError, StarletteHTTPException, Unauthorized) as exc:
                return _refusal(exc)
            except SamverkanError as exc:
                return _service_refusal(exc)

        return guarded


_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ApiError, "description": text}
    for status, text in [
        (401, "no token, or an unknown or revoked one"),
        (403, "the person the system acts as may not do this"),
        (404, "no such reference in the token's municipality"),
        (409, "the case process does not allow this now"),
        (422, "invalid input: the field is named"),
    ]
}
api_router = APIRouter(prefix=PREFIX, route_class=ApiRoute, responses=_ERRORS, tags=["API"])
# The module's routes as the app takes them: the API's and its OpenAPI document.
router = APIRouter()
bearer = HTTPBearer(auto_error=False, description="A token made by `samverkan api-token new`.")


def caller(
    request: Request,
    session: Db,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> apitokens.ApiDesk:
    """The desk of the system whose live token the request carries; 401 otherwise."""
    if credentials is None:
        raise Unauthorized()
    found = apitokens.caller_for(session, credentials.credentials)
    if found is None:
        raise Unauthorized()
    return apitokens.desk_for(session, found, now(request))


Caller = Annotated[apitokens.ApiDesk, Depends(caller)]


# --- what may be sent -----------------------------------------------------------------------


def _text(value: str) -> str:
    """Any string sent: text (no NUL, no lone surrogate), and no personal identity number."""
    if "\x00" in value or any("\ud800" <= c <= "\udfff" for c in value):
        raise ValueError("is not valid text")
    try:
        refuse_identity_number(value, "the value")
    except ConfidentialityError:
        raise ValueError(
            "looks like it holds a personal identity number; nothing about a child may be "
            "written here"
        ) from None
    return value


def _day(value: str) -> str:
    if parse_day(value) is None:
        raise ValueError(f"give {DAY_RULE}")
    return value


Key = Annotated[
    str,
    StringConstraints(min_length=1, max_length=100),
    AfterValidator(_text),
    Field(description="A key from the municipality's profile."),
]
Address = Annotated[
    str,
    StringConstraints(min_length=3, max_length=320),
    AfterValidator(_text),
    Field(description="An e-mail address."),
]
FreeText = Annotated[
    str,
    StringConstraints(min_length=1, max_length=4000),
    AfterValidator(_text),
    Field(description="Free text kept for staff; never sent in a message."),
]
Day = Annotated[
    str,
    StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}$"),
    AfterValidator(_day),
    Field(description=DAY_RULE),
]
Time = Annotated[
    str,
    StringConstraints(pattern=r"^([01]\d|2[0-3]):[0-5]\d$"),
    Field(description="HH:MM, local time (Europe/Stockholm)."),
]
ReferenceText = Annotated[str, StringConstraints(pattern=r"^\d{4}-\d{4,6}$")]
Reference = Annotated[
    str,
    Path(pattern=r"^\d{4}-\d{4,6}$", description="The neutral reference, e.g. 2027-0042."),
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReportIn(Strict):
    """A report of concern (`samverkan report register`)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "unit": "bjorkhagsskolan",
                    "reporter": "per-sundberg",
                    "district": "norr",
                    "wants_feedback": True,
                }
            ]
        },
    )

    unit: Key = Field(description="The reporting unit (a school).")
    reporter: Key = Field(description="The person key of the staff member who reports.")
    district: Key = Field(description="The child's district: its intake unit gets the report.")
    acute: bool = False
    suspected_abuse: bool = False
    wants_feedback: bool = False
    guardians: list[Address] = Field(default_factory=list, max_length=10)


class CaseIn(Strict):
    """A cooperation case (`samverkan case open`)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "owner": "ingrid-mattsson",
                    "school": "kyrkbacksskolan",
                    "family_worker": "emma-sandberg",
                    "guardians": ["vh@hem.example"],
                }
            ]
        },
    )

    owner: Key = Field(description="The person key of the owner (processbärare).")
    owner_role: Key | None = None
    known_on: Day | None = None
    school: Key | None = None
    family_worker: Key | None = None
    staff: list[Key] = Field(default_factory=list, max_length=20)
    guardians: list[Address] = Field(default_factory=list, max_length=10)
    pupil: Address | None = None
    adult_pupil: bool = False
    sip: bool = False
    report: ReferenceText | None = Field(
        default=None, description="The reference of the report it follows."
    )


class ConsentIn(Strict):
    """Consent (`samverkan case consent`)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"given_by": "vårdnadshavarna", "scope": "samverkansmöte om skolgången"}]
        },
    )

    given_by: FreeText
    scope: FreeText
    given_on: Day | None = None
    pupil_own: bool = False


class BookingIn(Strict):
    """A case meeting booked or moved (`samverkan case book`)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"date": "2027-03-10", "time": "13:00", "place": "stadshuset-linnen"}]
        },
    )

    date: Day
    time: Time
    place: Key | None = Field(default=None, description="The key of one of the profile's places.")
    meeting: int | None = Field(default=None, ge=1, le=2)


class Outcome(BaseModel):
    """What was done: the reference, what a person reads, the messages planned and stopped."""

    reference: str
    lines: list[str]
    messages_planned: int
    messages_stopped: int


class MessageOut(BaseModel):
    purpose: str
    status: str
    due: str


class ReportStatus(BaseModel):
    reference: str
    state: str
    messages: list[MessageOut]


class DeadlineOut(BaseModel):
    meeting: int
    last_day: str
    met: bool


class MeetingOut(BaseModel):
    number: int
    state: str
    start: str
    location: str | None
    held_on: str | None


class CaseStatus(BaseModel):
    reference: str
    state: str
    owner: str
    known_on: str
    sip: bool
    deadlines: list[DeadlineOut]
    meetings: list[MeetingOut]
    follow_ups: list[str]
    messages: list[MessageOut]


def _outcome(done: CaseOutcome) -> Outcome:
    sync = done.sync
    return Outcome(
        reference=done.reference,
        lines=list(done.lines),
        messages_planned=(sync.created + sync.revived) if sync else 0,
        messages_stopped=len(sync.cancelled) if sync else 0,
    )


def _day_of(text: str | None) -> dt.date | None:
    return parse_day(text) if text is not None else None


# --- the routes -----------------------------------------------------------------------------


@api_router.post("/reports", status_code=201)
@rule(Rule.API)
def api_register_report(desk: Caller, body: ReportIn) -> Outcome:
    """Register a report of concern; the reporter and the district's intake unit are told."""
    request = cases.ReportRequest(
        unit=body.unit,
        reporter=body.reporter,
        district=body.district,
        acute=body.acute,
        suspected_abuse=body.suspected_abuse,
        wants_feedback=body.wants_feedback,
        guardians=tuple(body.guardians),
    )
    return _outcome(cases.register_report(desk, request))


@api_router.get("/reports/{reference}")
@rule(Rule.API)
def api_report_status(desk: Caller, reference: Reference) -> ReportStatus:
    """A report's state and its messages (no notes, nothing about the child)."""
    data = cases.show(desk, reference)
    if data["series"] != "report":
        raise NotFoundError("REFERENCE: no report with that reference in this municipality")
    apitokens.audit_viewed(desk, "report", reference)
    return ReportStatus.model_validate(data)


@api_router.post("/reports/{reference}/receipt")
@rule(Rule.API)
def api_receive_report(desk: Caller, reference: Reference) -> Outcome:
    """The intake unit confirms receipt; the reporter is told, and by whom."""
    return _outcome(cases.receive_report(desk, reference))


@api_router.post("/cases", status_code=201)
@rule(Rule.API)
def api_open_case(desk: Caller, body: CaseIn) -> Outcome:
    """Open a cooperation case; the owner is told the first meeting's deadline."""
    request = cases.CaseRequest(
        owner=body.owner,
        owner_role=body.owner_role,
        known_on=_day_of(body.known_on),
        school=body.school,
        family_worker=body.family_worker,
        staff=tuple(body.staff),
        guardians=tuple(body.guardians),
        pupil=body.pupil,
        adult_pupil=body.adult_pupil,
        sip=body.sip,
        report=body.report,
    )
    try:
        return _outcome(cases.open_case(desk, request))
    except NotFoundError:  # the report it follows: a field of the body, not the path
        raise FieldError("report", "no report with that reference in this municipality") from None


@api_router.get("/cases/{reference}")
@rule(Rule.API)
def api_case_status(desk: Caller, reference: Reference) -> CaseStatus:
    """A case's state, deadlines, meetings and messages (no notes, nothing about the child)."""
    data = cases.show(desk, reference)
    if data["series"] != "case":
        raise NotFoundError("REFERENCE: no case with that reference in this municipality")
    apitokens.audit_viewed(desk, "case", reference)
    return CaseStatus.model_validate(data)


@api_router.post("/cases/{reference}/consent")
@rule(Rule.API)
def api_record_consent(desk: Caller, reference: Reference, body: ConsentIn) -> Outcome:
    """Record the written consent; required before a meeting is booked."""
    request = cases.ConsentRequest(
        given_by=body.given_by,
        scope=body.scope,
        given_on=_day_of(body.given_on),
        pupil_own=body.pupil_own,
    )
    return _outcome(cases.record_consent(desk, reference, request))


@api_router.post("/cases/{reference}/meetings")
@rule(Rule.API)
def api_book_meeting(desk: Caller, reference: Reference, body: BookingIn) -> Outcome:
    """Book (or move) a case meeting; every participant gets their own invitation."""
    request = cases.BookingRequest(
        date=body.date, time=body.time, place=body.place, meeting=body.meeting
    )
    return _outcome(cases.book_meeting(desk, reference, request))


@api_router.post("/cases/{reference}/close")
@rule(Rule.API)
def api_close_case(desk: Caller, reference: Reference) -> Outcome:
    """Close a case (its owner or an administrator); meetings to come are called off."""
    return _outcome(cases.close_case(desk, reference))


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of the API's routes (and of nothing else of the app)."""
    return get_openapi(
        title="Samverkan API",
        version="1",
        description=(__doc__ or "").split("\n\n", 1)[1].strip(),
        routes=api_router.routes,
    )


@router.get("/openapi.json", include_in_schema=False)
@rule(Rule.PUBLIC)
def api_openapi() -> JSONResponse:
    return JSONResponse(openapi_document())


router.routes.extend(api_router.routes)
