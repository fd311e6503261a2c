"""Calendar invitations (iCalendar, RFC 5545 / iTIP RFC 5546), built with the icalendar library.

One meeting is one VEVENT with a stable UID; a change is sent again with a higher SEQUENCE,
a cancellation with METHOD:CANCEL and STATUS:CANCELLED. Local times are written as local
times with TZID=<zone key> (13:00 in Stockholm stays 13:00 across summer time), and the
calendar carries a VTIMEZONE for each zone used, covering every year the event touches, so
that clients without the IANA database (Outlook) resolve the same instants.

No VALARM is added by default: the service sends its own reminder e-mails, and Outlook and
Gmail ignore an organiser's alarm anyway, so an alarm would only remind Apple users twice.
Pass ``alarm_before`` to add a DISPLAY alarm all the same.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from email_validator import EmailNotValidError, validate_email
from icalendar import Alarm, Calendar, Event, Timezone, vCalAddress
from icalendar.cal.timezone import TimezoneDaylight, TimezoneStandard

PRODID = "-//samverkan//samverkan//SV"

# Which STATUS values make sense with which iTIP METHOD (RFC 5546, sections 3.2.2 and 3.2.5).
_STATUSES_FOR_METHOD: dict[str, frozenset[str]] = {
    "REQUEST": frozenset({"CONFIRMED", "TENTATIVE"}),
    "CANCEL": frozenset({"CANCELLED"}),
    # The organizer's own copy (RFC 5546 PUBLISH: no ATTENDEE, nothing to answer).
    "PUBLISH": frozenset({"CONFIRMED", "CANCELLED"}),
}

# Zone keys that mean plain UTC: such times are written as UTC ("...Z"), with no VTIMEZONE.
_UTC_KEYS = frozenset(
    {"UTC", "Etc/UTC", "UCT", "Etc/UCT", "Zulu", "Etc/Zulu", "Universal", "Etc/Universal"}
)


@dataclass(frozen=True)
class Party:
    """A person in an invitation: the organiser or an attendee."""

    name: str
    email: str


def build_invite(
    *,
    uid: str,
    sequence: int,
    dtstamp: datetime,
    start: datetime,
    end: datetime,
    summary: str,
    description: str,
    location: str | None,
    organizer: Party,
    attendees: Sequence[Party],
    sent_by: str | None = None,
    method: str = "REQUEST",
    status: str = "CONFIRMED",
    alarm_before: timedelta | None = None,
) -> bytes:
    """Return one VCALENDAR holding one VEVENT, as bytes with CRLF line endings.

    ``start`` and ``end`` must be timezone-aware. With a ``zoneinfo.ZoneInfo`` zone they are
    written in local time with TZID=<key> and a matching VTIMEZONE; with any other tzinfo
    (a fixed offset, UTC) they are written in UTC. Text may hold commas, semicolons,
    backslashes and newlines (CR LF and lone CR become LF); the library escapes them.

    Raises ValueError, saying which value is wrong, for naive or non-existent times,
    ``end <= start``, control characters (CR, LF, ...) in names, addresses or the UID,
    malformed addresses, an unknown method, or a status that does not fit the method.
    """
    _check_method(method, status)
    _check_uid(uid, sequence)
    organizer = _check_party("organizer", organizer)
    if method == "PUBLISH" and attendees:
        raise ValueError("a published copy (method PUBLISH) has no attendees")
    if method != "PUBLISH" and not attendees:
        raise ValueError("an invitation needs at least one attendee")
    attendees = [_check_party(f"attendees[{i}]", party) for i, party in enumerate(attendees)]
    if sent_by is not None:
        sent_by = _check_email("sent_by", sent_by)
    ical_start = _event_time("start", start)
    ical_end = _event_time("end", end)
    if end <= start:
        raise ValueError(f"end ({end.isoformat()}) must be after start ({start.isoformat()})")
    if alarm_before is not None and alarm_before <= timedelta(0):
        raise ValueError("alarm_before must be a positive duration")

    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", method)
    for zone in _zones(ical_start, ical_end):
        calendar.add_component(_vtimezone(zone, start.year, end.year))

    event = Event()
    event.add("uid", uid)
    event.add("sequence", sequence)
    event.add("dtstamp", _aware("dtstamp", dtstamp).astimezone(UTC))
    event.add("dtstart", ical_start)
    event.add("dtend", ical_end)
    event.add("summary", _text("summary", summary))
    event.add("description", _text("description", description))
    if location is not None:
        event.add("location", _text("location", location))
    event.add("organizer", _organizer(organizer, sent_by))
    for attendee in attendees:
        event.add("attendee", _attendee(attendee))
    event.add("status", status)
    event.add("transp", "OPAQUE")
    if alarm_before is not None and method == "REQUEST":
        event.add_component(_alarm(alarm_before, summary))
    calendar.add_component(event)
    return bytes(calendar.to_ical())


# --- checks -----------------------------------------------------------------------------------


def _has_control(value: str) -> bool:
    """True if ``value`` holds a control character or a Unicode line/paragraph separator."""
    return any(unicodedata.category(char) in ("Cc", "Zl", "Zp") for char in value)


def _check_method(method: str, status: str) -> None:
    allowed = _STATUSES_FOR_METHOD.get(method)
    if allowed is None:
        raise ValueError(f"method must be one of {sorted(_STATUSES_FOR_METHOD)}, not {method!r}")
    if status not in allowed:
        raise ValueError(
            f"with method {method} the status must be one of {sorted(allowed)}, not {status!r}"
        )


def _check_uid(uid: str, sequence: int) -> None:
    if not uid or uid.strip() != uid or _has_control(uid):
        raise ValueError(f"uid must be non-empty, without control characters: {uid!r}")
    if isinstance(sequence, bool) or not isinstance(sequence, int) or sequence < 0:
        raise ValueError(f"sequence must be a non-negative integer, not {sequence!r}")


def _check_party(field: str, party: Party) -> Party:
    """Return ``party`` with its address in ASCII form, or raise ValueError."""
    if _has_control(party.name):
        raise ValueError(f"{field}.name must not contain CR, LF or other control characters")
    return Party(party.name.strip(), _check_email(f"{field}.email", party.email))


def _check_email(field: str, email: str) -> str:
    """Return ``email`` in ASCII form (an IDN domain as punycode), or raise ValueError."""
    if _has_control(email):
        raise ValueError(f"{field} must not contain CR, LF or other control characters")
    try:
        valid = validate_email(email, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as error:
        raise ValueError(f"{field} is not a usable e-mail address ({email!r}): {error}") from None
    return str(valid.ascii_email)


def _aware(field: str, moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{field} must be timezone-aware, got the naive {moment.isoformat()}")
    return moment


def _event_time(field: str, moment: datetime) -> datetime:
    """The value to write: local time for a named zone, otherwise the same instant in UTC."""
    _aware(field, moment)
    zone = moment.tzinfo
    if not isinstance(zone, ZoneInfo) or zone.key is None or zone.key in _UTC_KEYS:
        return moment.astimezone(UTC)
    wall = moment.replace(tzinfo=None)
    if moment.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != wall:
        raise ValueError(
            f"{field} {wall.isoformat()} does not exist in {zone.key} "
            "(it falls in the gap when clocks go forward)"
        )
    if moment.utcoffset() != moment.replace(fold=0).utcoffset():
        raise ValueError(
            f"{field} {wall.isoformat()} is the second of two equal local times in "
            f"{zone.key}; iCalendar would read it as the first; give it in UTC"
        )
    return moment.replace(fold=0)


def _text(field: str, value: str) -> str:
    """Normalise line breaks to LF and refuse other control characters (TAB is allowed).

    Known library quirk: icalendar 7.3 writes a literal backslash followed by "N" as the
    escaped newline, so such text reaches a calendar as a line break. Harmless for our
    templated texts; noted so nobody is surprised.
    """
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    if _has_control(value.replace("\n", "").replace("\t", "")):
        raise ValueError(f"{field} must not contain control characters other than newline and tab")
    return value


# --- properties -------------------------------------------------------------------------------


def _mailto(email: str) -> str:
    return f"mailto:{email}"


def _organizer(organizer: Party, sent_by: str | None) -> vCalAddress:
    address = vCalAddress(_mailto(organizer.email))
    if organizer.name:
        address.params["CN"] = organizer.name
    if sent_by is not None:
        address.params["SENT-BY"] = _mailto(sent_by)
    return address


def _attendee(party: Party) -> vCalAddress:
    address = vCalAddress(_mailto(party.email))
    if party.name:
        address.params["CN"] = party.name
    address.params["CUTYPE"] = "INDIVIDUAL"
    address.params["ROLE"] = "REQ-PARTICIPANT"
    address.params["PARTSTAT"] = "NEEDS-ACTION"
    address.params["RSVP"] = "TRUE"
    return address


def _alarm(before: timedelta, summary: str) -> Alarm:
    alarm = Alarm()
    alarm.add("action", "DISPLAY")
    alarm.add("description", _text("summary", summary))
    alarm.add("trigger", -before)
    return alarm


# --- time zones -------------------------------------------------------------------------------


def _zones(*moments: datetime) -> list[ZoneInfo]:
    """The named zones used by ``moments``, each once, in order of first use."""
    zones: list[ZoneInfo] = []
    for moment in moments:
        if isinstance(moment.tzinfo, ZoneInfo) and moment.tzinfo not in zones:
            zones.append(moment.tzinfo)
    return zones


def _vtimezone(zone: ZoneInfo, first_year: int, last_year: int) -> Timezone:
    """A fresh VTIMEZONE for ``zone`` covering 1 January ``first_year`` to the end of ``last_year``.

    Generated by ``icalendar.Timezone.from_tzinfo`` (STANDARD and DAYLIGHT observances with
    their offsets and names), then each onset is set to the local time *before* the change,
    as RFC 5545 requires (the onset is read in TZOFFSETFROM). icalendar 7.3 writes the local
    time after the change, which puts the start of summer time an hour late (icalendar issue
    "Timezone dtstart has offset applied twice").
    """
    timezone = Timezone.from_ical(_vtimezone_ical(zone, first_year, last_year))
    assert isinstance(timezone, Timezone)
    return timezone


@lru_cache(maxsize=64)
def _vtimezone_ical(zone: ZoneInfo, first_year: int, last_year: int) -> bytes:
    key = zone.key
    assert key is not None  # _zones only yields named zones
    timezone = Timezone.from_tzinfo(
        zone, key, first_date=date(first_year, 1, 1), last_date=date(last_year + 1, 1, 1)
    )
    for observance in timezone.walk():
        if isinstance(observance, (TimezoneStandard, TimezoneDaylight)):
            _fix_onsets(observance, zone)
    return bytes(timezone.to_ical())


def _fix_onsets(observance: TimezoneStandard | TimezoneDaylight, zone: ZoneInfo) -> None:
    offset_from: timedelta = observance.TZOFFSETFROM
    offset_to: timedelta = observance.TZOFFSETTO
    if offset_from == offset_to:
        return  # the opening observance at the start of the range, not a change of offset
    observance.DTSTART = _onset(zone, observance.DTSTART, offset_from, offset_to)
    rdates = [start for start, _end in observance.rdates]
    if rdates:
        observance.rdates = [_onset(zone, start, offset_from, offset_to) for start in rdates]


def _onset(
    zone: ZoneInfo, approximate: datetime, offset_from: timedelta, offset_to: timedelta
) -> datetime:
    """The local time, read in ``offset_from``, at which ``zone`` changes to ``offset_to``.

    Searches the day either side of ``approximate``; if the change is not found there, the
    library's value is kept.
    """

    def offset_at(seconds: int) -> timedelta | None:
        return datetime.fromtimestamp(seconds, UTC).astimezone(zone).utcoffset()

    guess = int((approximate.replace(tzinfo=UTC) - offset_from).timestamp())
    low, high = guess - 86_400, guess + 86_400
    if offset_at(low) != offset_from or offset_at(high) != offset_to:
        return approximate
    while high - low > 1:  # offset_at(low) == offset_from, offset_at(high) != offset_from
        middle = (low + high) // 2
        if offset_at(middle) == offset_from:
            low = middle
        else:
            high = middle
    return (datetime.fromtimestamp(high, UTC) + offset_from).replace(tzinfo=None)
