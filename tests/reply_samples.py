"""Calendar replies as Outlook, Gmail and Apple Calendar really send them, filled in for a
meeting and an attendee of a test.

`tests/data/replies/` holds genuine REPLY e-mails captured from those clients
(`tests/data/replies/SOURCES.md` says where each one comes from and what was changed in it).
`reply_message` takes one and rewrites what a test needs — the UID, the attendee's address
and name, the answer, SEQUENCE, DTSTAMP, the organizer — inside its calendar parts: each part is
decoded, changed property by property and encoded again the way the client encoded it
(base64 at the client's line width, 7bit, quoted-printable), folded lines are kept as the
client folded them unless they change. Everything else stays as the client wrote it.
"""

from __future__ import annotations

import base64
import datetime as dt
import email
import email.policy
import quopri
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.header import Header
from email.message import Message
from email.utils import formataddr
from pathlib import Path

SAMPLES = Path(__file__).resolve().parent / "data" / "replies"
CALENDAR_TYPES = frozenset({"text/calendar", "application/ics"})


@dataclass(frozen=True)
class Sample:
    """One genuine reply as stored (after the changes SOURCES.md lists)."""

    stem: str
    client: str  # "outlook", "gmail" or "apple"
    software: str  # what wrote it, as its PRODID / headers say
    uid: str
    attendee: str
    attendee_name: str
    organizer: str
    organizer_name: str
    partstat: str
    sequence: int
    dtstamp: dt.datetime

    @property
    def path(self) -> Path:
        return SAMPLES / f"{self.stem}.eml"

    def raw(self) -> bytes:
        return self.path.read_bytes()


def _utc(year: int, month: int, day: int, hour: int, minute: int, second: int) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=dt.UTC)


GENUINE: dict[str, Sample] = {
    s.stem: s
    for s in (
        Sample(
            "outlook-exchange-accepted",
            "outlook",
            "Exchange Server 2016 (Outlook on the web)",
            "0e4a0959-e1c7-4c5a-b353-d7abbd8ca8ac",
            "alex@example.com",
            "Alex Exempel",
            "sam@example.org",
            "Sam Exempel",
            "ACCEPTED",
            0,
            _utc(2025, 3, 10, 21, 7, 14),
        ),
        Sample(
            "outlook-exchange-declined",
            "outlook",
            "Exchange Server 2016 (Outlook on the web), with a comment",
            "abcfacd3-4db3-4c42-bcf5-0c17752c65fb",
            "alex@example.com",
            "Alex Exempel",
            "sam@example.org",
            "Sam Exempel",
            "DECLINED",
            0,
            _utc(2025, 3, 10, 21, 17, 31),
        ),
        Sample(
            "outlook-mac-tentative",
            "outlook",
            "Outlook for Mac 2011 (14.2.1)",
            "F3B82EDE-26A7-48AF-B90C-3F99A005964C",
            "tom@willow.vmw",
            "Alex Exempel",
            "admin@willow.vmw",
            "",
            "TENTATIVE",
            0,
            _utc(2012, 5, 27, 18, 14, 0),
        ),
        Sample(
            "gmail-accepted",
            "gmail",
            "Google Calendar (Gmail)",
            "14ef516ad2e6ce325d5c8efcf9d7ddbfa30f9d15",
            "alex@example.com",
            "Alex Exempel",
            "sam@example.org",
            "Alex Exempel",
            "ACCEPTED",
            0,
            _utc(2012, 5, 30, 7, 56, 52),
        ),
        Sample(
            "gmail-declined",
            "gmail",
            "Google Calendar (Gmail)",
            "14ef516ad2e6ce325d5c8efcf9d7ddbfa30f9d15",
            "alex@example.com",
            "Alex Exempel",
            "sam@example.org",
            "Alex Exempel",
            "DECLINED",
            0,
            _utc(2012, 5, 30, 7, 57, 9),
        ),
        Sample(
            "gmail-tentative",
            "gmail",
            "Google Calendar (Gmail)",
            "14ef516ad2e6ce325d5c8efcf9d7ddbfa30f9d15",
            "alex@example.com",
            "Alex Exempel",
            "sam@example.org",
            "Alex Exempel",
            "TENTATIVE",
            0,
            _utc(2012, 5, 30, 7, 56, 58),
        ),
        Sample(
            "apple-ios-accepted",
            "apple",
            "Apple Calendar on iOS (PRODID iPhone 3.0), with an annotation",
            "b84ce20",
            "admin@willow.vmw",
            "admin SetupWizard",
            "tom@willow.vmw",
            "tom",
            "ACCEPTED",
            0,
            _utc(2012, 5, 25, 15, 41, 22),
        ),
        Sample(
            "apple-ios-declined",
            "apple",
            "Apple Calendar on iOS (PRODID iPhone 3.0)",
            "176dfc05",
            "admin@willow.vmw",
            "admin SetupWizard",
            "tom@willow.vmw",
            "tom",
            "DECLINED",
            0,
            _utc(2012, 5, 27, 18, 43, 57),
        ),
        Sample(
            "apple-ios-tentative",
            "apple",
            "Apple Calendar on iOS (PRODID iPhone 3.0)",
            "5b596379",
            "admin@willow.vmw",
            "admin SetupWizard",
            "tom@willow.vmw",
            "tom",
            "TENTATIVE",
            0,
            _utc(2012, 5, 27, 18, 43, 57),
        ),
    )
}

# The sample a test gets when it names only the client.
CLIENTS = {
    "outlook": "outlook-exchange-accepted",
    "gmail": "gmail-declined",
    "apple": "apple-ios-tentative",
}


def reply_message(
    client: str,
    *,
    uid: str,
    attendee: str,
    partstat: str,
    sequence: int = 0,
    dtstamp: dt.datetime | None = None,
    name: str = "Deltagare",
    organizer: str = "svar@kommun.test",
    organizer_name: str = "Sammankallande",
    serial: int = 1,
) -> bytes:
    """The raw e-mail `client` sends when `attendee` answers `partstat` to meeting `uid`.

    `client` is "outlook", "gmail", "apple" (each client's usual sample) or the stem of one
    sample in GENUINE. The result has CRLF line ends, as IMAP wants them."""
    sample = GENUINE[CLIENTS.get(client, client)]
    stamp = (dtstamp or dt.datetime(2027, 3, 2, 9, 15, tzinfo=dt.UTC)).astimezone(dt.UTC)
    swap = {sample.attendee: attendee, sample.organizer: organizer}

    def calendar(props: Iterator[Prop]) -> Iterator[Prop]:
        for prop in props:
            if prop.in_event and prop.name == "UID":
                prop.value = uid
            elif prop.in_event and prop.name in ("SEQUENCE", "X-MICROSOFT-CDO-APPT-SEQUENCE"):
                prop.value = str(sequence)
            elif prop.in_event and prop.name == "DTSTAMP":
                prop.value = stamp.strftime("%Y%m%dT%H%M%SZ")
            elif prop.name == "ATTENDEE":
                prop.value = _swap_address(prop.value, attendee)
                prop.set_param("PARTSTAT", partstat)
                prop.set_param("CN", name)
            elif prop.name == "ORGANIZER":
                prop.value = _swap_address(prop.value, organizer)
                prop.set_param("CN", organizer_name)
            else:
                prop.value = _replace_all(prop.value, swap)
            yield prop

    raw = rewrite_calendars(sample.raw(), calendar)
    head, sep, body = _split_head(raw)
    head = _swap_header_address(head, sample.attendee_name, sample.attendee, name, attendee)
    head = _swap_header_address(
        head, sample.organizer_name, sample.organizer, organizer_name, organizer
    )
    head = re.sub(rb"(?im)^(Message-ID:\s*<)", rb"\g<1>" + f"{serial}.".encode(), head, count=1)
    return _crlf(head + sep + body)


# --- the calendar, property by property ----------------------------------------------------


class Prop:
    """One content line of a calendar (RFC 5545 3.1), unfolded, that can be changed."""

    def __init__(self, line: str, in_event: bool) -> None:
        self.line = line
        self.in_event = in_event
        self.cuts: tuple[int, ...] = ()  # fold here (character offsets) instead of at 75 octets
        head, self.value = _split_unquoted(line, ":", 1)
        parts = _split_unquoted(head, ";")
        self.name = parts[0].upper()
        self._name = parts[0]
        self.params = parts[1:]

    def set_param(self, key: str, value: str) -> None:
        """Set a parameter that is there already (a reply without CN keeps none)."""
        for i, param in enumerate(self.params):
            pkey, _, old = param.partition("=")
            if pkey.upper() == key:
                quoted = old.startswith('"') or any(c in value for c in ",;:")
                self.params[i] = f'{pkey}="{value}"' if quoted else f"{pkey}={value}"

    def render(self) -> str:
        return ";".join([self._name, *self.params]) + ":" + self.value


def rewrite_calendars(raw: bytes, change: Callable[[Iterator[Prop]], Iterator[Prop]]) -> bytes:
    """`raw` with each calendar part changed by `change`, which gets and yields its content
    lines; lines it leaves as they were keep the client's folding."""

    def part(message: Message, text: str) -> str | None:
        if not _is_calendar(message):
            return None
        return _change_calendar(text, change)

    return rewrite_parts(raw, part)


def _change_calendar(text: str, change: Callable[[Iterator[Prop]], Iterator[Prop]]) -> str:
    eol = "\r\n" if "\r\n" in text else "\n"
    logical = _unfold(text)
    depth: list[str] = []

    def props() -> Iterator[Prop]:
        for line, _ in logical:
            upper = line.upper()
            if upper.startswith("BEGIN:"):
                depth.append(upper[6:].strip())
            prop = Prop(line, bool(depth) and depth[-1] == "VEVENT")
            if upper.startswith("END:") and depth:
                depth.pop()
            yield prop

    out = []
    for prop, (line, physical) in zip(change(props()), logical, strict=True):
        new = prop.render() if ":" in prop.line else prop.line
        if prop.cuts:
            out.append(_fold_at(new, prop.cuts, eol))
        else:
            out.append(physical if new == line else _fold(new, eol))
    return "".join(out)


def _unfold(text: str) -> list[tuple[str, str]]:
    """(logical line, its physical lines as written) for each content line."""
    result: list[tuple[str, str]] = []
    for physical in text.splitlines(keepends=True):
        if physical[:1] in (" ", "\t") and result:
            line, written = result[-1]
            result[-1] = (line + physical[1:].rstrip("\r\n"), written + physical)
        else:
            result.append((physical.rstrip("\r\n"), physical))
    return result


def _fold(line: str, eol: str) -> str:
    """A changed line folded at 75 octets (RFC 5545 3.1)."""
    out, data = [], line.encode("utf-8")
    while len(data) > 75:
        cut = 75
        while cut > 0 and (data[cut] & 0xC0) == 0x80:
            cut -= 1
        out.append(data[:cut].decode("utf-8"))
        data = b" " + data[cut:]
    out.append(data.decode("utf-8"))
    return eol.join(out) + eol


def _fold_at(line: str, cuts: tuple[int, ...], eol: str) -> str:
    points = sorted({c for c in cuts if 0 < c < len(line)})
    pieces = [line[a:b] for a, b in zip([0, *points], [*points, len(line)], strict=True)]
    return (eol + " ").join(pieces) + eol


def _split_unquoted(text: str, sep: str, limit: int = -1) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == sep and not quoted and (limit < 0 or len(parts) < limit):
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts if limit < 0 or len(parts) > limit else [*parts, ""]


def _swap_address(value: str, address: str) -> str:
    scheme = value[: len("mailto:")]
    return (scheme if scheme.lower() == "mailto:" else "mailto:") + address


def _replace_all(text: str, swap: dict[str, str]) -> str:
    for old, new in swap.items():
        text = re.sub(re.escape(old), new.replace("\\", r"\\"), text, flags=re.IGNORECASE)
    return text


# --- MIME parts, changed in place ----------------------------------------------------------


def rewrite_parts(raw: bytes, change: Callable[[Message, str], str | None]) -> bytes:
    """`raw` with the decoded text of each leaf part replaced by `change(part, text)` (None:
    leave it), encoded again with the part's own transfer encoding, line width and line ends.
    Nothing outside the changed bodies moves."""
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    out, cursor = [], 0
    for part in message.walk():
        if part.is_multipart():
            continue
        encoded = part.get_payload()
        if not isinstance(encoded, str):
            continue
        body = encoded.encode("ascii", "surrogateescape")
        at = raw.find(body, cursor)
        if at < 0 or not body:
            continue
        charset = part.get_content_charset() or "utf-8"
        data = part.get_payload(decode=True)
        assert isinstance(data, bytes)
        text = data.decode(_codec(charset), "surrogateescape")
        new = change(part, text)
        if new is None or new == text:
            continue
        out += [raw[cursor:at], _encode(part, new, charset, body)]
        cursor = at + len(body)
    out.append(raw[cursor:])
    return b"".join(out)


def _codec(charset: str) -> str:
    try:
        "".encode(charset)
    except LookupError:
        return "utf-8"
    return charset


def _encode(part: Message, text: str, charset: str, original: bytes) -> bytes:
    try:
        data = text.encode(_codec(charset), "surrogateescape")
    except UnicodeEncodeError:
        data = text.encode("utf-8")  # as a careless client would
    eol = b"\r\n" if b"\r\n" in original else b"\n"
    cte = str(part.get("Content-Transfer-Encoding", "7bit")).strip().lower()
    trailing = original[len(original.rstrip(b"\r\n")) :]
    if cte == "base64":
        width = len(original.split(eol, 1)[0]) or 76
        encoded = base64.b64encode(data)
        lines = [encoded[i : i + width] for i in range(0, len(encoded), width)]
        return eol.join(lines) + trailing
    if cte == "quoted-printable":
        encoded = quopri.encodestring(data.replace(b"\r\n", b"\n"))
        return encoded.rstrip(b"\n").replace(b"\n", eol) + trailing
    return data.replace(b"\r\n", b"\n").replace(b"\n", eol)


def _is_calendar(part: Message) -> bool:
    filename = (part.get_filename() or "").lower()
    return part.get_content_type() in CALENDAR_TYPES or filename.endswith(".ics")


def _split_head(raw: bytes) -> tuple[bytes, bytes, bytes]:
    match = re.search(rb"\r?\n\r?\n", raw)
    assert match is not None
    return raw[: match.start()], match.group(), raw[match.end() :]


def _swap_header_address(head: bytes, old_name: str, old: str, name: str, new: str) -> bytes:
    """Header addresses: `old_name <old>` becomes `name <new>` (encoded when not ASCII);
    a bare `old` becomes `new`."""
    shown = formataddr((str(Header(name, "utf-8").encode()) if not name.isascii() else name, new))
    if old_name:
        head = re.sub(
            rb'"?' + re.escape(old_name.encode()) + rb'"?\s*<' + re.escape(old.encode()) + rb">",
            shown.encode().replace(b"\\", b"\\\\"),
            head,
            flags=re.IGNORECASE,
        )
    return re.sub(re.escape(old.encode()), new.encode(), head, flags=re.IGNORECASE)


def _crlf(raw: bytes) -> bytes:
    return re.sub(rb"\r?\n", b"\r\n", raw)
