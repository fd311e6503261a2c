"""The profile schema: one municipality's cooperation routine as data.

Validated with pydantic (shape, types, dates) and then by `reference_problems` (names that
must point at something: roles, units, districts, attachments). Every problem carries the
path of the field it concerns, so the loader can name file, line and field.
"""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any, Literal

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from scheduler.confidential import FAMILY_ROLES

SLUG = r"^[a-z0-9][a-z0-9-]*$"
Slug = Annotated[str, Field(pattern=SLUG, max_length=64)]
Path = tuple[str | int, ...]

# Control characters would allow header injection wherever a name reaches a message; so would
# the C1 controls (NEL) and the Unicode line and paragraph separators, which some mail
# software reads as line breaks (worker/compose.py refuses the same set).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _no_control_chars(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain line breaks or other control characters")
    return value


Text = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_no_control_chars)]


def _ascii_local_part(value: str) -> str:
    # worker/compose.py sends only ASCII local parts (no SMTPUTF8); refuse the rest at load
    # time instead of failing every message to the address later.
    if not value.rpartition("@")[0].isascii():
        raise ValueError(
            "the part before @ must be ASCII letters, digits or punctuation (å, ä, ö and "
            "other letters cannot be delivered there)"
        )
    return value


def _bare_address(value: str) -> str:
    # A bare `local@domain` only, as docs/profiles.md promises: pydantic's EmailStr accepts
    # `Name <x@y>` and keeps the address inside the brackets, so what was read is not what is
    # mailed. email-validator refuses display names, brackets, comments, quoting and spaces.
    try:
        valid = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"value is not a valid email address: {exc}") from None
    return str(valid.normalized)


Email = Annotated[str, AfterValidator(_bare_address), AfterValidator(_ascii_local_part)]
StaffDomain = Annotated[
    str,
    Field(pattern=r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$", max_length=253),
]


def _no_control_but_newlines(value: str) -> str:
    if _CONTROL.search(value.replace("\n", "")):
        raise ValueError("must not contain control characters other than line breaks")
    return value


# Longer prose (a routine's description) may span lines; it goes into bodies, never headers.
LongText = Annotated[
    str, Field(min_length=1, max_length=4000), AfterValidator(_no_control_but_newlines)
]

BUILTIN_ROLES: dict[str, str] = {
    "elevhalsochef": "Elevhälsochef",
    "enhetschef-ifo": "Enhetschef IFO/bistånd",
    "avdelningschef-ifo": "Avdelningschef IFO/bistånd",
    "rektor": "Rektor",
    "elevhalsan": "Elevhälsan",
    "familjeteam": "Familjeteam",
    "familjebehandlare": "Familjebehandlare",
    "socialsekreterare": "Socialsekreterare",
    "mottagning": "Mottagningsenhet",
    "samordnare": "Samordnare",
    "styrgrupp": "Styrgruppen",
    "omlottgruppen": "Omlottgruppen",
    "referensgrupp": "Referensgruppen",
    "administrator": "Administratör",
    "verksamhetschef": "Verksamhetschef",
    "forvaltningschef": "Förvaltningschef",
}

# The failure digest's outbox rows (scheduler/digest.py); no profile key can start with "_".
DIGEST_ROUTINE_KEY = "_fel-sammanstallning"
# The convener's summary of who has not answered an invitation (scheduler/answers.py).
ANSWERS_ROUTINE_KEY = "_svar-sammanstallning"
# Routine keys of outbox rows that are planned elsewhere than from routines: case work
# (scheduler/cases/outbox.py), the digest and the answers summary. Re-planning routines never
# cancels them.
RESERVED_ROUTINE_KEYS = frozenset({"case", "report", DIGEST_ROUTINE_KEY, ANSWERS_ROUTINE_KEY})


class UnitKind(StrEnum):
    FORSKOLA = "forskola"
    GRUNDSKOLA = "grundskola"
    GYMNASIUM = "gymnasium"
    IFO = "ifo"
    MOTTAGNINGSENHET = "mottagningsenhet"
    FORVALTNING = "forvaltning"


SCHOOL_KINDS = (UnitKind.FORSKOLA, UnitKind.GRUNDSKOLA, UnitKind.GYMNASIUM)


class Stage(StrEnum):
    """The stages of a child's schooling; IFO comes to one parent meeting in each (seed 004)."""

    FORSKOLA = "forskola"
    FORSKOLEKLASS = "forskoleklass"
    LAGSTADIET = "lagstadiet"
    MELLANSTADIET = "mellanstadiet"
    HOGSTADIET = "hogstadiet"
    GYMNASIET = "gymnasiet"


# The stages a unit of each kind can have; a unit without `stages` has them all.
STAGES_OF_KIND: dict[UnitKind, tuple[Stage, ...]] = {
    UnitKind.FORSKOLA: (Stage.FORSKOLA,),
    UnitKind.GRUNDSKOLA: (
        Stage.FORSKOLEKLASS,
        Stage.LAGSTADIET,
        Stage.MELLANSTADIET,
        Stage.HOGSTADIET,
    ),
    UnitKind.GYMNASIUM: (Stage.GYMNASIET,),
}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class MonthDay(Strict):
    month: int = Field(ge=1, le=12)
    day: int = Field(ge=1, le=31)

    @model_validator(mode="after")
    def _exists(self) -> MonthDay:
        try:
            dt.date(2000, self.month, self.day)  # a leap year, so 29 February is allowed
        except ValueError:
            raise ValueError(f"{self.day} {_MONTHS[self.month - 1]} does not exist") from None
        return self

    def in_year(self, year: int) -> dt.date | None:
        """The date in `year`, or None (29 February in a common year)."""
        try:
            return dt.date(year, self.month, self.day)
        except ValueError:
            return None


_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]


class Sender(Strict):
    name: Text
    email: Email


class Municipality(Strict):
    key: Slug
    name: Text
    sender: Sender
    timezone: Literal["Europe/Stockholm"] = "Europe/Stockholm"
    send_time: dt.time = dt.time(8, 0)
    # Phone number of the intake (mottagning), for acute reports.
    intake_phone: Text | None = None
    # The domains of the municipality's own staff addresses, matched exactly (no subdomains):
    # on a report of suspected abuse nothing goes to any other domain. Empty: the sender's.
    staff_domains: list[StaffDomain] = []


class District(Strict):
    key: Slug
    name: Text


class Unit(Strict):
    key: Slug
    name: Text
    kind: UnitKind
    district: Slug | None = None
    phone: Text | None = None
    # The stages the school has (a 7–9 school: [hogstadiet]); all of its kind's by default.
    stages: list[Stage] | None = None

    @model_validator(mode="after")
    def _stages_fit_kind(self) -> Unit:
        if self.stages is None:
            return self
        allowed = STAGES_OF_KIND.get(self.kind, ())
        wrong = [stage.value for stage in self.stages if stage not in allowed]
        if wrong or not self.stages:
            fits = ", ".join(s.value for s in allowed) or "none"
            raise ValueError(f"stages of a {self.kind.value} unit are among: {fits}")
        return self

    def school_stages(self) -> list[str]:
        """The unit's stages in school order (as given, or all that its kind has)."""
        given = self.stages if self.stages is not None else STAGES_OF_KIND.get(self.kind, ())
        return [s.value for s in Stage if s in given]


class SchoolBreak(Strict):
    name: Text
    start: dt.date
    end: dt.date

    @model_validator(mode="after")
    def _ordered(self) -> SchoolBreak:
        if self.end < self.start:
            raise ValueError("the break ends before it starts")
        return self


class SchoolYear(Strict):
    start: dt.date
    end: dt.date
    breaks: list[SchoolBreak] = []

    @model_validator(mode="after")
    def _ordered(self) -> SchoolYear:
        if not self.start < self.end:
            raise ValueError("a school year must end after it starts")
        if (self.end - self.start).days > 366:
            raise ValueError("a school year cannot be longer than a year")
        return self

    @property
    def label(self) -> str:
        return f"{self.start.year}/{str(self.start.year + 1)[2:]}"


class SchoolYearRule(Strict):
    """For years not listed: start on this day in August (next working day), end in June."""

    start: MonthDay
    end: MonthDay


class SchoolYears(Strict):
    years: list[SchoolYear] = []
    rule: SchoolYearRule


class RoleAssignment(Strict):
    role: Slug
    unit: Slug | None = None
    valid_from: dt.date | None = Field(default=None, alias="from")
    valid_to: dt.date | None = Field(default=None, alias="to")

    @model_validator(mode="after")
    def _ordered(self) -> RoleAssignment:
        if self.valid_from and self.valid_to and self.valid_to < self.valid_from:
            raise ValueError("'to' is before 'from'")
        return self


class Person(Strict):
    key: Slug
    name: Text
    email: Email
    roles: list[RoleAssignment] = Field(min_length=1)


class RoleDefinition(Strict):
    key: Slug
    name: Text


class Period(Strict):
    days: int | None = Field(default=None, ge=0, le=400)
    weeks: int | None = Field(default=None, ge=0, le=60)
    working_days: int | None = Field(default=None, ge=0, le=300)

    @model_validator(mode="after")
    def _exactly_one(self) -> Period:
        given = [v for v in (self.days, self.weeks, self.working_days) if v is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of days, weeks or working_days")
        return self

    @property
    def unit(self) -> str:
        if self.days is not None:
            return "days"
        return "weeks" if self.weeks is not None else "working_days"

    @property
    def length(self) -> int:
        value = self.days if self.days is not None else self.weeks
        return value if value is not None else (self.working_days or 0)


# Frequencies a routine may recur at; finer ones (daily, hourly) are not a routine's rhythm.
_RRULE_FREQUENCIES = frozenset({"YEARLY", "MONTHLY", "WEEKLY"})
# The routine's day comes from the rule and its time from the profile; the years it runs from
# `active`. Parts that would set these a second way are refused.
_RRULE_REFUSED = {
    "COUNT": "use 'active' (first and last year) instead of COUNT",
    "UNTIL": "use 'active' (first and last year) instead of UNTIL",
    "DTSTART": "give the anchor as 'starts' beside the rule",
    "BYHOUR": "a routine recurs on days; its time is the municipality's send_time",
    "BYMINUTE": "a routine recurs on days; its time is the municipality's send_time",
    "BYSECOND": "a routine recurs on days; its time is the municipality's send_time",
}
# At most four years between two rounds of a rule: a routine, not a jubilee, and a bound on
# how far dateutil must look for the next day.
_RRULE_LONGEST_INTERVAL = {"YEARLY": 4, "MONTHLY": 48, "WEEKLY": 208}
# Where INTERVAL counts from when no 'starts' is given: a fixed day, so the rule's phase never
# depends on when it is planned.
RRULE_ANCHOR = dt.date(2000, 1, 1)


def _valid_rrule(value: str) -> str:
    """An RFC 5545 RRULE (without DTSTART), checked by dateutil's parser, not by hand."""
    from dateutil.rrule import rrulestr

    text = value.strip().removeprefix("RRULE:")
    parts: dict[str, str] = {}
    for part in text.split(";"):
        name, sep, setting = part.partition("=")
        if not sep or not name.strip() or not setting.strip():
            raise ValueError("write the rule as NAME=VALUE parts separated by ';'")
        parts[name.strip().upper()] = setting.strip().upper()
    interval = parts.get("INTERVAL", "1")
    longest = _RRULE_LONGEST_INTERVAL.get(parts.get("FREQ", ""), 1)
    if interval.isdigit() and int(interval) > longest:
        raise ValueError(f"INTERVAL is at most {longest} for this FREQ (four years)")
    for name in parts:
        if name in _RRULE_REFUSED:
            raise ValueError(f"{name} is not allowed here: {_RRULE_REFUSED[name]}")
    if parts.get("FREQ") not in _RRULE_FREQUENCIES:
        raise ValueError("the rule needs FREQ=YEARLY, MONTHLY or WEEKLY")
    try:
        rrulestr(text, dtstart=dt.datetime.combine(RRULE_ANCHOR, dt.time()))
    except (ValueError, TypeError, KeyError, IndexError, OverflowError):
        # dateutil's own message repeats the text; name the rule instead.
        raise ValueError("not a valid RFC 5545 recurrence rule (RRULE)") from None
    return text


# A rule must give a day within this many years of its anchor.
RRULE_REACH_YEARS = 10


def rrule_days_between(
    text: str, starts: dt.date | None, first: dt.date, years: int = 1
) -> list[dt.date]:
    """The days the RRULE `text` (counted from `starts`) gives from `first` for `years` years."""
    from dateutil.rrule import rrule, rrulestr

    anchor = dt.datetime.combine(starts or RRULE_ANCHOR, dt.time())
    parsed = rrulestr(text, dtstart=anchor)
    assert isinstance(parsed, rrule)  # one RRULE, never a set
    start = dt.datetime.combine(first, dt.time())
    try:
        stop = dt.date(first.year + years, first.month, first.day)
    except ValueError:  # 29 February, `years` later in a common year: the window ends 28 February
        stop = dt.date(first.year + years, 3, 1)
    end = dt.datetime.combine(stop, dt.time()) - dt.timedelta(days=1)
    return [m.date() for m in parsed.between(start, end, inc=True)]


@lru_cache(maxsize=256)
def rrule_reaches(text: str, starts: dt.date | None) -> bool:
    """Whether the rule gives a day within RRULE_REACH_YEARS of its anchor.

    dateutil looks for the next day up to the year 9999, and a rule that gives none (30
    February, a phase INTERVAL never meets) would take seconds on every expansion. The
    Gregorian calendar repeats every 400 years to the weekday, and so does the rule relative
    to its anchor; checked 400·k years later, just below 9999, the search ends at once."""
    anchor = starts or RRULE_ANCHOR
    shift = 400 * ((dt.MAXYEAR - RRULE_REACH_YEARS - 1 - anchor.year) // 400)
    far = anchor.replace(year=anchor.year + shift)
    return bool(rrule_days_between(text, far, far, RRULE_REACH_YEARS))


RecurrenceRule = Annotated[
    str,
    Field(min_length=1, max_length=200),
    AfterValidator(_no_control_chars),
    AfterValidator(_valid_rrule),
]


def _reaches(text: str, starts: dt.date | None) -> bool:
    try:
        return rrule_reaches(text, starts)
    except (ValueError, TypeError, KeyError, IndexError, OverflowError):
        # Some mistakes (BYDAY=+9MO in a month) only show when dateutil expands the rule.
        raise ValueError("rrule: not a valid RFC 5545 recurrence rule (RRULE)") from None


class When(Strict):
    """When a routine occurs: on a date each year, in a month each year, around a school year,
    or by a recurrence rule (RFC 5545 RRULE) for routines that come more than once a year."""

    date: MonthDay | None = None
    month: int | None = Field(default=None, ge=1, le=12)
    school_year: Literal["start", "end"] | None = None
    rrule: RecurrenceRule | None = None
    # Where the rule's INTERVAL counts from (its DTSTART); a fixed day by default.
    starts: dt.date | None = None
    # After the start, or before the end, of the school year.
    offset: Period | None = None
    # Which way a non-working day moves; by default a deadline moves back, anything else forward.
    adjust: Literal["deadline", "waiting"] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> When:
        given = [v for v in (self.date, self.month, self.school_year, self.rrule) if v is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of date, month, school_year or rrule")
        if self.offset is not None and self.school_year is None:
            raise ValueError("offset applies only to school_year")
        if self.starts is not None and self.rrule is None:
            raise ValueError("starts applies only to rrule")
        if self.rrule is not None and not _reaches(self.rrule, self.starts):
            raise ValueError(
                f"the rule gives no day within {RRULE_REACH_YEARS} years of its start (check "
                "BYMONTH, BYMONTHDAY, BYDAY and INTERVAL, and 'starts')"
            )
        return self


class RoutineKind(StrEnum):
    MEETING = "meeting"
    DEADLINE = "deadline"
    MAILOUT = "mailout"
    REMINDER = "reminder"


Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday"]


class StandingDay(Strict):
    """A standing rule for booking, e.g. the second Tuesday of the month."""

    nth: int = Field(ge=1, le=4)
    weekday: Weekday


# A video-meeting link: https only, one line, no spaces.
VideoLink = Annotated[
    str, Field(max_length=500, pattern=r"^https://[^\s]+$"), AfterValidator(_no_control_chars)
]


class Place(Strict):
    """A meeting place, written by the coordinators; a meeting chooses one by its key.

    Messages name a place only this way, never by text typed when booking: what goes out
    about a meeting is built from data the profile holds (docs/profiles.md, "Places").
    """

    key: Slug
    name: Text
    address: Text | None = None
    video: VideoLink | None = None
    # The unit whose place it is (a school's meeting room); none for the municipality's own.
    unit: Slug | None = None


def _no_free_location(data: Any) -> Any:
    if isinstance(data, dict) and "location" in data:
        raise ValueError(
            "'location' is no longer free text: list the place under 'places' and choose it "
            "with 'place: KEY'"
        )
    return data


class Booking(Strict):
    date: dt.date
    time: dt.time
    place: Slug | None = None

    _location = model_validator(mode="before")(_no_free_location)


class MeetingSettings(Strict):
    duration_minutes: int = Field(default=120, ge=15, le=600)
    place: Slug | None = None
    time: dt.time | None = None
    standing_day: StandingDay | None = None
    agenda: list[Text] = []

    _location = model_validator(mode="before")(_no_free_location)


class Message(Strict):
    purpose: Slug
    to: list[str] = Field(min_length=1)
    template: Slug
    before: Period | None = None
    after: Period | None = None
    # Counted from the occurrence, from the booked meeting, or from the end of the meeting's
    # month (its last working day: "the month ended and nothing was booked").
    on: Literal["occurrence", "booking", "window_end"] = "occurrence"
    # Booking reminders stop once the meeting is booked.
    until_booked: bool = False
    # A booking reminder that comes again every period until the meeting is booked or its
    # month ends (seed 004: the meeting "is convened", so the reminders do not give up).
    repeat: Period | None = None
    reply_to: str | None = None

    @model_validator(mode="after")
    def _one_offset(self) -> Message:
        if self.before is not None and self.after is not None:
            raise ValueError("give before or after, not both")
        if self.repeat is not None:
            if not self.until_booked:
                raise ValueError("repeat needs until_booked: true (it stops at the booking)")
            if self.repeat.length < 1:
                raise ValueError("repeat must be at least one day")
            if len(self.purpose) > 50:
                raise ValueError("a repeated message's purpose is at most 50 characters")
        return self


class ActiveYears(Strict):
    first: int | None = Field(default=None, ge=2000, le=2200)
    last: int | None = Field(default=None, ge=2000, le=2200)


class Routine(Strict):
    key: Slug
    name: Text
    kind: RoutineKind
    when: When
    owners: list[str] = Field(min_length=1)
    participants: list[str] = []
    messages: list[Message] = Field(min_length=1)
    meeting: MeetingSettings | None = None
    bookings: dict[int, Booking] = {}
    attachments: list[str] = []
    active: ActiveYears = ActiveYears()
    description: LongText | None = None  # what the routine asks, in the readers' words
    source: Text | None = None  # which part of which routine document this comes from

    @field_validator("bookings")
    @classmethod
    def _years_plausible(cls, value: dict[int, Booking]) -> dict[int, Booking]:
        for year, booking in value.items():
            if not 2000 <= year <= 2200:
                raise ValueError(f"booking year {year} is out of range")
            if booking.date.year not in (year, year + 1):
                raise ValueError(f"booking for {year} is dated {booking.date}")
        return value

    @model_validator(mode="after")
    def _meeting_has_settings(self) -> Routine:
        if self.kind is RoutineKind.MEETING and self.meeting is None:
            raise ValueError("a meeting routine needs a 'meeting' section")
        if self.kind is not RoutineKind.MEETING and (self.meeting or self.bookings):
            raise ValueError("only a meeting routine can have 'meeting' or 'bookings'")
        if self.when.rrule is not None and self.meeting is not None:
            # A recurring meeting is held at its standing time on each day of the rule.
            if self.meeting.time is None:
                raise ValueError("a recurring (rrule) meeting needs meeting.time")
            if self.bookings:
                raise ValueError("a recurring (rrule) meeting is not booked year by year")
        return self


# The seed's agenda for a cooperation case meeting (004, Bilaga 1).
DEFAULT_CASE_AGENDA = [
    "Sekreterare utses",
    "Presentation av deltagarna",
    "Syfte och mål med samverkansmötet / uppföljning och sammanfattning av föregående möte",
    "Samtycke gås igenom",
    "Sekretess",
    "Nulägesbeskrivning",
    "Behovsanalys",
    "Minnesanteckningar / gemensam handlingsplan inklusive åtgärder",
    "Vårdnadshavares kontaktperson (om annan än processbärare)",
    "Tid för nytt samverkansmöte",
]


class CaseRules(Strict):
    """How this municipality runs reports of concern and cooperation cases.

    The defaults are seed 004's: the first meeting within two weeks of the case becoming
    known, the second within two weeks of the first, feedback to a reporter after two weeks,
    all counted in calendar days. Another municipality may say three weeks, or working days.
    """

    first_meeting: Period = Period(weeks=2)
    second_meeting: Period = Period(weeks=2)
    # A SIP case's first meeting, when the municipality gives it its own period.
    sip_first_meeting: Period | None = None
    feedback_after: Period = Period(weeks=2)
    reminders_before: list[Period] = [Period(weeks=1), Period(working_days=2)]
    overdue_after: Period = Period(working_days=1)
    sip_reminder_before: Period = Period(weeks=1)
    # Who may be a case owner (processbärare), and whom an overdue case is reported to.
    owner_roles: list[Slug] = ["rektor", "familjebehandlare", "socialsekreterare"]
    managers: dict[Slug, str] = {
        "rektor": "verksamhetschef",
        "familjebehandlare": "enhetschef-ifo",
        "socialsekreterare": "enhetschef-ifo",
    }
    intake_role: Slug = "mottagning"
    # Roles that belong to families, not staff: on suspected abuse their holders get nothing.
    family_roles: list[Slug] = list(FAMILY_ROLES)
    meeting_minutes: int = Field(default=90, ge=15, le=600)
    agenda: list[Text] = Field(default_factory=lambda: list(DEFAULT_CASE_AGENDA), min_length=1)


class Profile(Strict):
    municipality: Municipality
    districts: list[District] = []
    units: list[Unit] = Field(min_length=1)
    school_years: SchoolYears
    roles: list[RoleDefinition] = []
    people: list[Person] = Field(min_length=1)
    places: list[Place] = []
    routines: list[Routine] = []
    cases: CaseRules = CaseRules()

    def role_names(self) -> dict[str, str]:
        names = dict(BUILTIN_ROLES)
        names.update({r.key: r.name for r in self.roles})
        return names


class RoleRef(BaseModel):
    """`role` or `role@scope`, where scope is a unit kind or a unit key."""

    model_config = ConfigDict(frozen=True)

    role: str
    scope: str | None = None

    @classmethod
    def parse(cls, text: str) -> RoleRef:
        role, _, scope = text.partition("@")
        return cls(role=role.strip(), scope=scope.strip() or None)

    def __str__(self) -> str:
        return f"{self.role}@{self.scope}" if self.scope else self.role
