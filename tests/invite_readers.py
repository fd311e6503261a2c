"""Read invites the way calendars do: python-icalendar, vobject, and ical.js under node.

Each reader returns the same `Reading` of one invite, so a test can ask whether they agree
with each other and with what was meant (the UTC instants zoneinfo gives). ical.js runs in one
node process for a whole batch (tests/js/read-invites.mjs, its version pinned in
tests/js/package-lock.json; `make js` installs it). Without node or that install the tests
that need it skip, except with CI=true, where they fail.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import vobject
from icalendar import Calendar, Event

from tests.fixtures.services import service_missing

JS_DIRECTORY = Path(__file__).parent / "js"
JS_SCRIPT = JS_DIRECTORY / "read-invites.mjs"


@dataclass(frozen=True)
class Party:
    address: str
    cn: str | None


@dataclass(frozen=True)
class Reading:
    """What a reader saw in the one VEVENT of an invite; instants in UTC."""

    method: str | None
    uid: str
    start: datetime
    end: datetime
    summary: str
    description: str
    location: str | None
    organizer: Party
    attendees: tuple[Party, ...]


# --- python-icalendar -------------------------------------------------------------------------


def read_icalendar(data: bytes) -> Reading:
    calendar = Calendar.from_ical(data)
    (event,) = calendar.walk("VEVENT")
    assert isinstance(event, Event)
    location = event.get("LOCATION")
    return Reading(
        method=None if calendar.get("METHOD") is None else str(calendar["METHOD"]),
        uid=str(event["UID"]),
        start=event.decoded("DTSTART").astimezone(UTC),
        end=event.decoded("DTEND").astimezone(UTC),
        summary=str(event["SUMMARY"]),
        description=str(event["DESCRIPTION"]),
        location=None if location is None else str(location),
        organizer=_icalendar_party(event["ORGANIZER"]),
        attendees=tuple(_icalendar_party(a) for a in _as_list(event.get("ATTENDEE"))),
    )


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _icalendar_party(address: Any) -> Party:
    cn = address.params.get("CN")
    return Party(str(address), None if cn is None else str(cn))


# --- vobject (what Radicale indexes with) ---------------------------------------------------


def read_vobject(data: bytes) -> Reading:
    calendar = vobject.readOne(data.decode("utf-8"))
    event = calendar.vevent
    contents = event.contents
    return Reading(
        method=calendar.method.value if "method" in calendar.contents else None,
        uid=event.uid.value,
        start=event.dtstart.value.astimezone(UTC),
        end=event.dtend.value.astimezone(UTC),
        summary=event.summary.value,
        description=event.description.value,
        location=event.location.value if "location" in contents else None,
        organizer=_vobject_party(event.organizer),
        attendees=tuple(_vobject_party(line) for line in contents.get("attendee", [])),
    )


def _vobject_party(line: Any) -> Party:
    cn = line.params.get("CN")
    return Party(line.value, None if not cn else str(cn[0]))


# --- ical.js under node -------------------------------------------------------------------------


def read_icaljs(invites: Sequence[bytes]) -> list[Reading]:
    """Read every invite with ical.js in one node process."""
    return [_icaljs_reading(raw) for raw in run_icaljs([data.decode() for data in invites])]


def run_icaljs(texts: Sequence[str]) -> list[dict[str, Any]]:
    """The raw JSON ical.js gives for each text (see tests/js/read-invites.mjs)."""
    node = shutil.which("node")
    if node is None:
        service_missing("node is not installed: ical.js cannot read the invites")
    if not (JS_DIRECTORY / "node_modules" / "ical.js").is_dir():
        service_missing("ical.js is not installed in tests/js: run `make js`")
    done = subprocess.run(
        [node, str(JS_SCRIPT)],
        input=json.dumps(list(texts)).encode(),
        capture_output=True,
        check=True,
        timeout=600,
    )
    readings: list[dict[str, Any]] = json.loads(done.stdout)
    assert len(readings) == len(texts)
    return readings


def _icaljs_reading(raw: dict[str, Any]) -> Reading:
    assert "error" not in raw, raw.get("error")
    (event,) = raw["events"]
    return Reading(
        method=raw["method"],
        uid=event["uid"],
        start=datetime.fromtimestamp(event["start"], UTC),
        end=datetime.fromtimestamp(event["end"], UTC),
        summary=event["summary"],
        description=event["description"],
        location=event["location"],
        organizer=Party(**event["organizer"]),
        attendees=tuple(Party(**attendee) for attendee in event["attendees"]),
    )
