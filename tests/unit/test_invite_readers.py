"""Invites read the same in python-icalendar, vobject and ical.js, and mean what zoneinfo says.

The corpus (tests/invite_corpus.py) spans 2026-2040: a day a week at walking times, and every
day the clocks change at every half hour around the change. python-icalendar and ical.js read
every invite; vobject (slow: ~25 ms an invite) reads every invite of the change days and every
fourth of the weekly ones. The time zone itself is checked for every day of the horizon by
all three. Texts: the corpus rotates through the awkward cases, and a property test throws
arbitrary text at all three readers.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
import vobject
from hypothesis import given, settings
from hypothesis import strategies as st
from icalendar import Calendar

from core.errors import SamverkanError
from tests.invite_corpus import STOCKHOLM, Case, changes_of_offset, corpus
from tests.invite_readers import (
    Party,
    Reading,
    read_icalendar,
    read_icaljs,
    read_vobject,
    run_icaljs,
)
from worker.invite import NonexistentLocalTimeError, build_invite
from worker.invite import Party as InviteParty
from worker.vtimezone import HORIZON

CASES = corpus()


@pytest.fixture(scope="module")
def invites() -> list[bytes]:
    return [case.build() for case in CASES]


@pytest.fixture(scope="module")
def icaljs_readings(invites: list[bytes]) -> list[Reading]:
    return read_icaljs(invites)


def expected(case: Case) -> Reading:
    """What every reader must see: zoneinfo's instants, the texts as given, CN without quotes."""
    cn = case.name.replace('"', "\u201d").replace("^", "\u02c6").replace("\\", "\u29f5")
    return Reading(
        method="REQUEST",
        uid=f"{case.label}@corpus.example.se",
        start=case.start.astimezone(UTC),
        end=case.end.astimezone(UTC),
        summary=case.summary,
        description="Dagordning:\n1. Öppnande\n2. Aktuella frågor, ärenden; övrigt\n3. C:\\Nya",
        location=case.location,
        organizer=Party("mailto:organisator@kommun.example.se", cn),
        attendees=(Party("mailto:deltagare@skola.example.se", cn),),
    )


def test_the_corpus_covers_the_horizon_and_every_change() -> None:
    changes = changes_of_offset()
    assert len(changes) == 2 * len(HORIZON) == 30
    starts = [case.start for case in CASES]
    assert min(starts).year == 2026 and max(starts).year == 2040
    # In spring 02:00 and 02:30 do not exist (8 half hours); in autumn both happen twice (12).
    assert len(CASES) == 783 + 15 * 8 + 15 * 12
    assert sum(1 for case in CASES if case.start.fold) == 2 * len(HORIZON)


def test_python_icalendar_reads_every_invite_as_meant(invites: list[bytes]) -> None:
    wrong = [
        case.label
        for case, data in zip(CASES, invites, strict=True)
        if read_icalendar(data) != expected(case)
    ]
    assert wrong == []


def test_icaljs_reads_every_invite_as_meant(icaljs_readings: list[Reading]) -> None:
    wrong = [
        (case.label, reading)
        for case, reading in zip(CASES, icaljs_readings, strict=True)
        if reading != expected(case)
    ]
    assert wrong == []


def test_vobject_reads_the_invites_as_meant(invites: list[bytes]) -> None:
    sample = [
        (case, data)
        for index, (case, data) in enumerate(zip(CASES, invites, strict=True))
        if case.label.startswith("c") or index % 4 == 0
    ]
    assert len(sample) > 400
    wrong = [case.label for case, data in sample if read_vobject(data) != expected(case)]
    assert wrong == []


def test_every_invite_carries_the_same_vtimezone(invites: list[bytes]) -> None:
    texts = set()
    for data in invites:
        assert data.count(b"BEGIN:VTIMEZONE") <= 1
        begin, end = data.find(b"BEGIN:VTIMEZONE"), data.find(b"END:VTIMEZONE")
        if begin >= 0:
            texts.add(data[begin:end])
    (only,) = texts  # the repeated-hour invites are in UTC and carry none
    assert b"RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3" in only
    assert b"RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10" in only


def test_every_line_is_within_75_octets_and_whole_characters(invites: list[bytes]) -> None:
    lines = [line for data in invites for line in data.split(b"\r\n")]
    assert max(len(line) for line in lines) <= 75
    for line in lines:
        line.decode("utf-8")  # raises if a fold split a character's octets
    assert sum(1 for line in lines if line.startswith(b" ")) > len(invites)  # folding happened


# --- the time zone, every day of the horizon -----------------------------------------------


def local_times() -> list[datetime]:
    """Every day 2026-2040 at 00:30, 02:30, 03:30, 09:15, 13:00 and 23:59, where they exist
    once (the gap and the repeated hour are never written as local times)."""
    found = []
    day = date(HORIZON[0], 1, 1)
    while day.year <= HORIZON[-1]:
        for at in (time(0, 30), time(2, 30), time(3, 30), time(9, 15), time(13), time(23, 59)):
            wall = datetime.combine(day, at, tzinfo=STOCKHOLM)
            once = wall.replace(fold=0).utcoffset() == wall.replace(fold=1).utcoffset()
            if once:
                found.append(wall)
        day += timedelta(days=1)
    return found


LOCAL_TIMES = local_times()


def vtimezone_text() -> str:
    start = datetime(2030, 5, 1, 13, tzinfo=STOCKHOLM)
    data = build_invite(
        uid="zone@corpus.example.se",
        sequence=0,
        dtstamp=start,
        start=start,
        end=start + timedelta(hours=1),
        summary="x",
        description="x",
        location=None,
        organizer=InviteParty("A", "a@kommun.example.se"),
        attendees=[InviteParty("B", "b@kommun.example.se")],
    )
    (component,) = Calendar.from_ical(data).walk("VTIMEZONE")
    return component.to_ical().decode()


def wrapped(component: str) -> str:
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\n{component}END:VCALENDAR\r\n"


def test_the_local_times_checked_cover_every_day() -> None:
    days = {moment.date() for moment in LOCAL_TIMES}
    assert len(days) == (date(2041, 1, 1) - date(2026, 1, 1)).days == 5479
    assert len(LOCAL_TIMES) == 6 * 5479 - 15 - 15  # 02:30 missing in spring, repeated in autumn


def test_python_icalendar_zone_agrees_with_zoneinfo_every_day() -> None:
    (component,) = Calendar.from_ical(wrapped(vtimezone_text())).walk("VTIMEZONE")
    zone = component.to_tz(lookup_tzid=False)
    wrong = [w for w in LOCAL_TIMES if w.replace(tzinfo=zone).astimezone(UTC) != w.astimezone(UTC)]
    assert wrong == []


def test_vobject_zone_agrees_with_zoneinfo_every_day() -> None:
    zone = vobject.readOne(wrapped(vtimezone_text())).vtimezone.gettzinfo()
    wrong = [w for w in LOCAL_TIMES if w.replace(tzinfo=zone).astimezone(UTC) != w.astimezone(UTC)]
    assert wrong == []


def test_icaljs_zone_agrees_with_zoneinfo_every_day() -> None:
    events = "".join(
        f"BEGIN:VEVENT\r\nUID:{index}\r\nDTSTAMP:20261201T000000Z\r\n"
        f"DTSTART;TZID=Europe/Stockholm:{wall:%Y%m%dT%H%M%S}\r\nEND:VEVENT\r\n"
        for index, wall in enumerate(LOCAL_TIMES)
    )
    (reading,) = run_icaljs([wrapped(vtimezone_text() + events)])
    starts = [datetime.fromtimestamp(event["start"], UTC) for event in reading["events"]]
    wrong = [w for w, start in zip(LOCAL_TIMES, starts, strict=True) if start != w.astimezone(UTC)]
    assert wrong == []


# --- times that do not exist -------------------------------------------------------------------


@pytest.mark.parametrize("change", [c for c in changes_of_offset() if c.month == 3], ids=str)
def test_local_times_in_every_spring_gap_are_refused(change: datetime) -> None:
    day = change.astimezone(STOCKHOLM).date()
    for minute in (0, 1, 30, 59):
        start = datetime.combine(day, time(2, minute), tzinfo=STOCKHOLM)
        with pytest.raises(NonexistentLocalTimeError, match="does not exist in Europe/Stockholm"):
            build_invite(**_arguments(start=start, end=start + timedelta(hours=2)))
        with pytest.raises(SamverkanError):
            build_invite(**_arguments(start=start - timedelta(hours=1), end=start))


def _arguments(**overrides: object) -> dict[str, object]:
    arguments: dict[str, object] = {
        "uid": "gap@corpus.example.se",
        "sequence": 0,
        "dtstamp": datetime(2026, 12, 1, tzinfo=UTC),
        "summary": "x",
        "description": "x",
        "location": None,
        "organizer": InviteParty("A", "a@kommun.example.se"),
        "attendees": [InviteParty("B", "b@kommun.example.se")],
    }
    arguments.update(overrides)
    return arguments


# --- arbitrary text ----------------------------------------------------------------------------

TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from(",;:\\\n\t\"'^ NnåäöÅÄÖ€😀\u0301\u200d"),
        st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp")),
    ),
    max_size=120,
)
NAME = TEXT.map(lambda text: text.replace("\n", " ").replace("\t", " ").strip())
TEXTS = st.tuples(TEXT, TEXT, TEXT, NAME)


@settings(max_examples=12, deadline=None)
@given(st.lists(TEXTS, min_size=1, max_size=30))
def test_any_text_reads_back_the_same_in_every_reader(
    texts: list[tuple[str, str, str, str]],
) -> None:
    # UTC times: no VTIMEZONE, so vobject stays fast; the zone is checked above.
    start = datetime(2031, 6, 10, 11, tzinfo=UTC)
    invites = [
        build_invite(
            **_arguments(
                start=start,
                end=start + timedelta(hours=1),
                summary=summary,
                description=description,
                location=location,
                organizer=InviteParty(name, "a@kommun.example.se"),
            )
        )
        for summary, description, location, name in texts
    ]
    for data in invites:
        assert all(len(line) <= 75 for line in data.split(b"\r\n"))
    cn = [
        name.replace('"', "\u201d").replace("^", "\u02c6").replace("\\", "\u29f5") or None
        for _summary, _description, _location, name in texts
    ]
    for readings in (
        [read_icalendar(data) for data in invites],
        [read_vobject(data) for data in invites],
        read_icaljs(invites),
    ):
        seen = [(r.summary, r.description, r.location, r.organizer.cn or None) for r in readings]
        assert seen == [
            (summary, description, location, name)
            for (summary, description, location, _name), name in zip(texts, cn, strict=True)
        ]


def test_fixed_offset_invites_are_read_in_utc_by_every_reader() -> None:
    plus_two = timezone(timedelta(hours=2))
    start = datetime(2033, 8, 1, 13, tzinfo=plus_two)
    data = build_invite(**_arguments(start=start, end=start + timedelta(hours=1)))
    for reading in (read_icalendar(data), read_vobject(data), *read_icaljs([data])):
        assert reading.start == datetime(2033, 8, 1, 11, tzinfo=UTC)


def test_other_rule_zones_resolve_alike() -> None:
    # Not Stockholm: the rule is derived from zoneinfo, not written by hand.
    zone = ZoneInfo("America/New_York")
    starts = [datetime(year, month, 9, 13, tzinfo=zone) for year in HORIZON for month in (3, 11)]
    invites = [build_invite(**_arguments(start=s, end=s + timedelta(hours=1))) for s in starts]
    for readings in (
        [read_icalendar(data) for data in invites],
        [read_vobject(data) for data in invites],
        read_icaljs(invites),
    ):
        assert [r.start for r in readings] == [s.astimezone(UTC) for s in starts]


def test_readers_disagree_on_a_repeated_local_time_so_none_is_written() -> None:
    # The reason for writing the repeated hour in UTC: 02:30 local on 31 October 2027 is
    # 00:30 UTC to RFC 5545 (the first occurrence) and python-icalendar, 01:30 UTC to ical.js.
    local = wrapped(
        vtimezone_text() + "BEGIN:VEVENT\r\nUID:r\r\nDTSTAMP:20261201T000000Z\r\n"
        "DTSTART;TZID=Europe/Stockholm:20271031T023000\r\nEND:VEVENT\r\n"
    )
    (event,) = Calendar.from_ical(local).walk("VEVENT")
    assert event.decoded("DTSTART").astimezone(UTC) == datetime(2027, 10, 31, 0, 30, tzinfo=UTC)
    (reading,) = run_icaljs([local])
    assert reading["events"][0]["start"] == datetime(2027, 10, 31, 1, 30, tzinfo=UTC).timestamp()
    for fold in (0, 1):
        start = datetime(2027, 10, 31, 2, 30, fold=fold, tzinfo=STOCKHOLM)
        data = build_invite(
            **_arguments(start=start, end=start.astimezone(UTC) + timedelta(hours=1))
        )
        assert b"TZID=" not in data
        assert read_icaljs([data])[0].start == read_icalendar(data).start == start.astimezone(UTC)
