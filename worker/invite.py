"""Calendar invitations (iCalendar, RFC 5545 / iTIP RFC 5546), built with the icalendar library.

One meeting is one VEVENT with a stable UID; a change is sent again with a higher SEQUENCE,
a cancellation with METHOD:CANCEL and STATUS:CANCELLED. Local times are written as local
times with TZID=<zone key> (13:00 in Stockholm stays 13:00 across summer time), and the
calendar carries one VTIMEZONE per zone used, the same text in every invite and valid for
every year of the booking horizon (worker.vtimezone). An instant in the repeated hour when
clocks go back is written in UTC instead, because readers disagree on which of the two
equal local times is meant; a local time that does not exist is refused. docs/invites.md
gives the reasons for each choice.

No VALARM is added by default: the service sends its own reminder e-mails, and Outlook and
Gmail ignore an organiser's alarm anyway, so an alarm would only remind Apple users twice.
Pass ``alarm_before`` to add a DISPLAY alarm all the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from email_validator import EmailNotValidError
from icalendar import Alarm, Calendar, Event, vCalAddress, vText

from core.addresses import ascii_email, has_control
from core.errors import InviteError as InviteError  # re-exported
from core.errors import NonexistentLocalTimeError as NonexistentLocalTimeError  # re-exported
from worker.vtimezone import vtimezone

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
    written in local time with TZID=<key> and a matching VTIMEZONE, unless either falls in the
    repeated hour when clocks go back: then both are written in UTC. With any other tzinfo
    (a fixed offset, UTC) they are written in UTC. Text may hold commas, semicolons,
    backslashes and newlines (CR LF and lone CR become LF); they are escaped per RFC 5545.
    In names (CN), which not every reader decodes RFC 6868 in, ``"`` becomes ``”``, ``^``
    becomes ``ˆ`` and a backslash becomes ``⧵``.

    Raises InviteError (a ValueError), saying which value is wrong, for naive times, local
    times that do not exist (NonexistentLocalTimeError),
    ``end <= start``, control characters (CR, LF, ...) in names, addresses or the UID,
    malformed addresses, an unknown method, or a status that does not fit the method.
    """
    _check_method(method, status)
    _check_uid(uid, sequence)
    organizer = _check_party("organizer", organizer)
    if method == "PUBLISH" and attendees:
        raise InviteError("a published copy (method PUBLISH) has no attendees")
    if method != "PUBLISH" and not attendees:
        raise InviteError("an invitation needs at least one attendee")
    attendees = [_check_party(f"attendees[{i}]", party) for i, party in enumerate(attendees)]
    if sent_by is not None:
        sent_by = _check_email("sent_by", sent_by)
    ical_start, ical_end = _event_times(start, end)
    # In UTC: between two times of the same zone Python compares the wall clock and ignores
    # fold, so 02:00 (second) would count as equal to 02:00 (first), an hour earlier.
    if end.astimezone(UTC) <= start.astimezone(UTC):
        raise InviteError(f"end ({end.isoformat()}) must be after start ({start.isoformat()})")
    if alarm_before is not None and alarm_before <= timedelta(0):
        raise InviteError("alarm_before must be a positive duration")

    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", method)
    for zone in _zones(ical_start, ical_end):
        calendar.add_component(vtimezone(zone, start.year, end.year))

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


def _check_method(method: str, status: str) -> None:
    allowed = _STATUSES_FOR_METHOD.get(method)
    if allowed is None:
        raise InviteError(f"method must be one of {sorted(_STATUSES_FOR_METHOD)}, not {method!r}")
    if status not in allowed:
        raise InviteError(
            f"with method {method} the status must be one of {sorted(allowed)}, not {status!r}"
        )


def _check_uid(uid: str, sequence: int) -> None:
    if not uid or uid.strip() != uid or has_control(uid):
        raise InviteError(f"uid must be non-empty, without control characters: {uid!r}")
    if isinstance(sequence, bool) or not isinstance(sequence, int) or sequence < 0:
        raise InviteError(f"sequence must be a non-negative integer, not {sequence!r}")


def _check_party(field: str, party: Party) -> Party:
    """Return ``party`` with its address in ASCII form, or raise ValueError."""
    if has_control(party.name):
        raise InviteError(f"{field}.name must not contain CR, LF or other control characters")
    return Party(party.name.strip(), _check_email(f"{field}.email", party.email))


def _check_email(field: str, email: str) -> str:
    """Return ``email`` in ASCII form (an IDN domain as punycode), or raise ValueError."""
    if has_control(email):
        raise InviteError(f"{field} must not contain CR, LF or other control characters")
    try:
        return ascii_email(email)
    except EmailNotValidError as error:
        raise InviteError(f"{field} is not a usable e-mail address ({email!r}): {error}") from None


def _aware(field: str, moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InviteError(f"{field} must be timezone-aware, got the naive {moment.isoformat()}")
    return moment


def _event_times(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """The DTSTART and DTEND values to write.

    Local time in a named zone, except that both go in UTC when either is in the repeated
    hour: RFC 5545 (3.3.5) reads such a local time as the first of the two, ical.js as the
    second. Anything else that is not a named zone goes in UTC too.
    """
    ical_start, ical_end = _event_time("start", start), _event_time("end", end)
    if _repeated(start) or _repeated(end):
        return start.astimezone(UTC), end.astimezone(UTC)
    return ical_start, ical_end


def _event_time(field: str, moment: datetime) -> datetime:
    """The value to write: local time for a named zone, otherwise the same instant in UTC."""
    _aware(field, moment)
    zone = moment.tzinfo
    if not isinstance(zone, ZoneInfo) or zone.key is None or zone.key in _UTC_KEYS:
        return moment.astimezone(UTC)
    wall = moment.replace(tzinfo=None)
    if moment.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != wall:
        raise NonexistentLocalTimeError(
            f"{field} {wall.isoformat()} does not exist in {zone.key} "
            "(it falls in the gap when clocks go forward)"
        )
    return moment


def _repeated(moment: datetime) -> bool:
    """True if the local time of ``moment`` happens twice (the hour when clocks go back)."""
    if not isinstance(moment.tzinfo, ZoneInfo):
        return False
    return moment.replace(fold=0).utcoffset() != moment.replace(fold=1).utcoffset()


def _text(field: str, value: str) -> vText:
    """Normalise line breaks to LF and refuse other control characters (TAB is allowed)."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    if has_control(value.replace("\n", "").replace("\t", "")):
        raise InviteError(f"{field} must not contain control characters other than newline and tab")
    return _Text(value)


class _Text(vText):
    """TEXT escaped exactly as RFC 5545 3.3.11 says.

    icalendar 7.3 first turns a typed backslash followed by "N" into a line break (it takes
    the text for half-escaped), so "C:\\Nya" would reach every calendar on two lines.
    """

    def to_ical(self) -> bytes:
        escaped = (
            str(self)
            .replace("\\", "\\\\")
            .replace(";", "\\;")
            .replace(",", "\\,")
            .replace("\n", "\\n")
        )
        return escaped.encode("utf-8")


# Not every reader decodes RFC 6868 in parameter values (vobject shows "^'" for a quote), and
# a parameter value cannot hold a plain '"' at all: so names are written without either. A
# backslash is written as is, and a reader then takes "\:" at the end of "CN=\" for an escaped
# colon (the name read as ":mailto"): names are written without it too.
_CN_REPLACEMENTS = str.maketrans({'"': "\u201d", "^": "\u02c6", "\\": "\u29f5"})


def _cn(name: str) -> str:
    """A display name as a CN parameter value that every reader reads back the same."""
    return name.translate(_CN_REPLACEMENTS)


# --- properties -------------------------------------------------------------------------------


def _mailto(email: str) -> str:
    return f"mailto:{email}"


def _organizer(organizer: Party, sent_by: str | None) -> vCalAddress:
    address = vCalAddress(_mailto(organizer.email))
    if organizer.name:
        address.params["CN"] = _cn(organizer.name)
    if sent_by is not None:
        address.params["SENT-BY"] = _mailto(sent_by)
    return address


def _attendee(party: Party) -> vCalAddress:
    address = vCalAddress(_mailto(party.email))
    if party.name:
        address.params["CN"] = _cn(party.name)
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
