"""Calendar replies as Outlook, Gmail and Apple Calendar format them (tests/data/replies/),
filled in for a meeting and an attendee of a test."""

from __future__ import annotations

import base64
import datetime as dt
import quopri
from email.utils import format_datetime
from pathlib import Path

SAMPLES = Path(__file__).resolve().parent / "data" / "replies"
CLIENTS = {
    "outlook": "outlook-accepted",
    "gmail": "gmail-declined",
    "apple": "apple-tentative",
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
    """The raw e-mail `client` sends when `attendee` answers `partstat` to meeting `uid`."""
    stem = CLIENTS[client]
    stamp = (dtstamp or dt.datetime(2027, 3, 2, 9, 15, tzinfo=dt.UTC)).astimezone(dt.UTC)
    values = {
        "UID": uid,
        "ATTENDEE": attendee,
        "PARTSTAT": partstat,
        "SEQUENCE": str(sequence),
        "DTSTAMP": stamp.strftime("%Y%m%dT%H%M%SZ"),
        "NAME": name,
        "ORGANIZER": organizer,
        "ORGANIZER_NAME": organizer_name,
        "SERIAL": f"{serial:012d}",
        "DATE": format_datetime(stamp),
    }
    calendar = _fill((SAMPLES / f"{stem}.ics").read_text(encoding="utf-8"), values)
    calendar_crlf = _fold("\r\n".join(calendar.splitlines()) + "\r\n")
    raw = calendar_crlf.encode("utf-8")
    values["CALENDAR"] = calendar_crlf.rstrip("\r\n")
    values["CALENDAR_BASE64"] = "\r\n".join(_chunks(base64.b64encode(raw).decode(), 76))
    values["CALENDAR_QP"] = quopri.encodestring(raw).decode("ascii").rstrip("\n")
    message = _fill((SAMPLES / f"{stem}.eml").read_text(encoding="utf-8"), values)
    return "\r\n".join(message.replace("\r\n", "\n").split("\n")).encode("utf-8")


def _fill(template: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        template = template.replace("{" + key + "}", value)
    return template


def _chunks(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def _fold(text: str) -> str:
    """Fold lines longer than 75 octets (RFC 5545 3.1), as every client does."""
    out = []
    for line in text.split("\r\n"):
        data = line.encode("utf-8")
        while len(data) > 75:
            cut = 75
            while cut > 0 and (data[cut] & 0xC0) == 0x80:
                cut -= 1
            out.append(data[:cut].decode("utf-8"))
            data = b" " + data[cut:]
        out.append(data.decode("utf-8"))
    return "\r\n".join(out)
