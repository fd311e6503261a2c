"""Read one e-mail as a participant's answer to an invitation (iTIP REPLY, RFC 5546 3.2.3).

Pure: bytes in, answers out. Calendar clients answer with an iMIP message (RFC 6047) holding
a VCALENDAR with METHOD:REPLY and one VEVENT whose ATTENDEE carries the PARTSTAT. How they
package it differs (docs/invites.md, "Replies"):

- Outlook / Exchange: multipart/alternative with a ``text/calendar; method=REPLY`` part,
  PRODID "Microsoft Exchange Server 2010", often without ORGANIZER, local times in a Windows
  zone;
- Google Calendar: the same inline part plus the same bytes again as an ``invite.ics``
  attachment (``application/ics``), ATTENDEE with X-NUM-GUESTS;
- Apple Calendar: a ``text/calendar`` part (often quoted-printable), ATTENDEE sometimes
  with an EMAIL parameter.

`parse_reply` never raises: whatever the message holds (no calendar part, broken iCalendar,
a huge message, an unknown charset, a REQUEST instead of a REPLY), it returns a `Parsed`
whose `problem` says, without personal data, why no answer was found.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from dataclasses import dataclass
from email.message import Message
from typing import Any

from icalendar import Calendar

# Answers the service records (RFC 5545 3.2.12, for VEVENT); NEEDS-ACTION is no answer.
ANSWERS = frozenset({"ACCEPTED", "DECLINED", "TENTATIVE", "DELEGATED"})
# A reply is a few kilobytes; anything much larger is not one and is not parsed.
MAX_MESSAGE_BYTES = 2_000_000
MAX_CALENDAR_PARTS = 10
MAX_EVENTS = 20
_CALENDAR_TYPES = frozenset({"text/calendar", "application/ics", "text/x-vcalendar"})


@dataclass(frozen=True)
class Reply:
    """One attendee's answer to one meeting."""

    uid: str
    attendee: str  # the address, lower case, without "mailto:"
    partstat: str  # one of ANSWERS
    sequence: int
    dtstamp: dt.datetime | None  # UTC; None when the reply had none or an unreadable one
    delegated_to: str | None = None


@dataclass(frozen=True)
class Parsed:
    """What one message held: its answers, or why it held none."""

    replies: tuple[Reply, ...]
    problem: str | None = None  # a reason code such as "no-calendar", never personal data


def parse_reply(data: bytes, max_bytes: int = MAX_MESSAGE_BYTES) -> Parsed:
    """The answers in one raw e-mail (RFC 5322 bytes). Never raises."""
    try:
        return _parse(data, max_bytes)
    except Exception:  # the poller must survive any message
        return Parsed((), "unreadable")


def _parse(data: bytes, max_bytes: int) -> Parsed:
    if not isinstance(data, bytes | bytearray) or not data:
        return Parsed((), "empty")
    if len(data) > max_bytes:
        return Parsed((), "too-large")
    message = email.message_from_bytes(bytes(data), policy=email.policy.compat32)
    texts = _calendar_texts(message)
    if not texts:
        return Parsed((), "no-calendar")
    replies: list[Reply] = []
    problems: list[str] = []
    for text, method_param in texts:
        found, problem = _replies_in(text, method_param)
        replies.extend(found)
        if problem:
            problems.append(problem)
    unique = tuple(dict.fromkeys(replies))  # Gmail sends the same bytes twice
    if unique:
        return Parsed(unique)
    return Parsed((), problems[0] if problems else "no-answer")


def _calendar_texts(message: Message) -> list[tuple[str, str | None]]:
    """The text of every calendar part (at most MAX_CALENDAR_PARTS), with its method param."""
    texts: list[tuple[str, str | None]] = []
    for part in message.walk():
        if part.is_multipart():
            continue
        content_type = part.get_content_type().lower()
        filename = (part.get_filename() or "").lower()
        if content_type not in _CALENDAR_TYPES and not filename.endswith(".ics"):
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes) or not payload:
            continue
        method = part.get_param("method")
        texts.append((_decode(payload, part.get_content_charset()), _str_or_none(method)))
        if len(texts) >= MAX_CALENDAR_PARTS:
            break
    return texts


def _str_or_none(value: Any) -> str | None:
    return value.strip().upper() if isinstance(value, str) else None


def _decode(payload: bytes, charset: str | None) -> str:
    """The part's text: its declared charset, else UTF-8; a charset that is unknown or does
    not fit the bytes falls back to UTF-8 with replacement characters."""
    for candidate in (charset, "utf-8"):
        if not candidate:
            continue
        try:
            return payload.decode(candidate)
        except (LookupError, UnicodeDecodeError):
            continue
    return payload.decode("utf-8", "replace")


def _replies_in(text: str, method_param: str | None) -> tuple[list[Reply], str | None]:
    try:
        calendar = Calendar.from_ical(text)
    except Exception:  # icalendar raises ValueError, KeyError, IndexError ...
        return [], "broken-icalendar"
    method = str(calendar.get("METHOD") or method_param or "").strip().upper()
    if method != "REPLY":
        return [], "not-a-reply"
    replies: list[Reply] = []
    for count, event in enumerate(calendar.walk("VEVENT")):
        if count >= MAX_EVENTS:
            break
        reply = _event_reply(event)
        if reply is not None:
            replies.append(reply)
    return replies, None if replies else "no-answer"


def _event_reply(event: Any) -> Reply | None:
    uid = str(event.get("UID") or "").strip()
    if not uid or len(uid) > 400 or any(ord(ch) < 32 for ch in uid):
        return None
    attendees = event.get("ATTENDEE")
    if attendees is None:
        return None
    if not isinstance(attendees, list):
        attendees = [attendees]
    for attendee in attendees:
        address = _address(attendee)
        partstat = str(getattr(attendee, "params", {}).get("PARTSTAT", "")).strip().upper()
        if address is None or partstat not in ANSWERS:
            continue
        delegated = getattr(attendee, "params", {}).get("DELEGATED-TO")
        return Reply(
            uid=uid,
            attendee=address,
            partstat=partstat,
            sequence=_sequence(event.get("SEQUENCE")),
            dtstamp=_dtstamp(event.get("DTSTAMP")),
            delegated_to=_delegate(delegated),
        )
    return None


def _address(value: Any) -> str | None:
    """The e-mail address of a CAL-ADDRESS: its mailto: value, or Apple's EMAIL parameter."""
    text = str(value).strip()
    if text.lower().startswith("mailto:"):
        text = text[len("mailto:") :]
    else:
        param = getattr(value, "params", {}).get("EMAIL")
        text = str(param).strip() if param else ""
    text = text.strip().lower()
    local, at, domain = text.rpartition("@")
    if not (at and local and domain) or len(text) > 320:
        return None
    if any(ch.isspace() or ch in '<>,;:"' or ord(ch) < 32 for ch in text):
        return None
    return text


def _delegate(value: Any) -> str | None:
    if value is None:
        return None
    first = value[0] if isinstance(value, list) and value else value
    text = str(first).strip()
    return text[len("mailto:") :].lower() if text.lower().startswith("mailto:") else None


def _sequence(value: Any) -> int:
    try:
        number = int(str(value).strip()) if value is not None else 0
    except ValueError:
        return 0
    return number if 0 <= number < 2**31 else 0


def _dtstamp(value: Any) -> dt.datetime | None:
    moment = getattr(value, "dt", None)
    if not isinstance(moment, dt.datetime):
        return None
    if moment.tzinfo is None:  # floating: RFC 5545 requires UTC for DTSTAMP; read it so
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)
