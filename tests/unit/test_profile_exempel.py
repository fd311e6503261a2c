"""profiles/exempel.yaml: the fictional Exempelby kommun is a valid, complete profile.

Read with plain `yaml.safe_load` (so the file itself must avoid the YAML 1.1 traps: quoted
times, a quoted "on" key), validated by the schema and by `reference_problems`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from scheduler.calendar import school_year_starting
from scheduler.occurrences import message_timings, occurrences
from scheduler.spec import (
    BUILTIN_ROLES,
    SCHOOL_KINDS,
    Profile,
    RoleRef,
    RoutineKind,
    UnitKind,
)
from scheduler.specrefs import reference_problems

ROOT = Path(__file__).resolve().parents[2]
PROFILE = ROOT / "profiles" / "exempel.yaml"

ROUTINE_KEYS = {
    "samverkansmote-var",
    "samverkansmote-host",
    "utvardering",
    "lasarsstart-material",
    "foraldramote-ifo",
    "handlingsplan",
    "rutinoversyn",
    "arsrapport",
    "gemensam-utvardering",
    "styrgruppsmote",
}
AGENDA = [
    "Uppföljning av föregående möte",
    "Behovsanalys",
    "Syfte och mål",
    "Utvärdering av samverkan",
    "Gemensamma kompetensutvecklingsfrågor",
    "Tid för nytt möte",
]


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    data = yaml.safe_load(PROFILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def profile(raw: dict[str, Any]) -> Profile:
    return Profile.model_validate(raw)


def _routine(profile: Profile, key: str) -> Any:
    return next(r for r in profile.routines if r.key == key)


def _holders(profile: Profile, role: str, on: dt.date) -> list[tuple[str, str | None]]:
    """(person, unit) for every assignment of `role` valid on `on`."""
    return [
        (person.key, a.unit)
        for person in profile.people
        for a in person.roles
        if a.role == role
        and (a.valid_from is None or a.valid_from <= on)
        and (a.valid_to is None or on <= a.valid_to)
    ]


# --- validity -------------------------------------------------------------------------------


def test_validates_and_all_references_resolve(profile: Profile) -> None:
    assert reference_problems(profile) == []


def test_plain_yaml_gives_the_right_keys(raw: dict[str, Any]) -> None:
    """No YAML 1.1 surprises: "on" stays a key, times stay strings."""
    for routine in raw["routines"]:
        for message in routine["messages"]:
            assert True not in message, f"{routine['key']}: unquoted 'on' became True"
        meeting = routine.get("meeting")
        if meeting and "time" in meeting:
            assert isinstance(meeting["time"], str)
        for booking in routine.get("bookings", {}).values():
            assert isinstance(booking["time"], str)
    assert raw["municipality"]["send_time"] == "08:00"


def test_municipality(profile: Profile) -> None:
    m = profile.municipality
    assert m.key == "exempel"
    assert m.name == "Exempelby kommun"
    assert m.sender.name == "Samverkan skola–socialtjänst, Exempelby kommun"
    assert m.sender.email == "samverkan@exempelby.se"
    assert m.send_time == dt.time(8, 0)
    assert m.intake_phone == "0123-45 67 00"


# --- organisation ---------------------------------------------------------------------------


def test_districts_and_units(profile: Profile) -> None:
    assert len(profile.districts) >= 3
    kinds = Counter(unit.kind for unit in profile.units)
    schools = [u for u in profile.units if u.kind in SCHOOL_KINDS]
    assert len(schools) >= 12
    assert all(kinds[kind] >= 1 for kind in SCHOOL_KINDS)
    assert all(u.district is not None for u in schools)
    assert kinds[UnitKind.IFO] == 1
    assert {u.key for u in profile.units if u.kind is UnitKind.FORVALTNING} == {
        "bildningsforvaltningen",
        "socialforvaltningen",
    }


def test_one_intake_unit_with_a_phone_per_district(profile: Profile) -> None:
    intake = [u for u in profile.units if u.kind is UnitKind.MOTTAGNINGSENHET]
    assert sorted(u.district for u in intake if u.district) == sorted(
        d.key for d in profile.districts
    )
    assert all(u.phone for u in intake)


def test_people_have_fictional_municipal_addresses(profile: Profile) -> None:
    emails = [p.email for p in profile.people]
    assert len(set(emails)) == len(emails)
    for email in emails:
        assert re.fullmatch(r"[a-z]+\.[a-z]+@exempelby\.se", email), email


@pytest.mark.parametrize("on", [dt.date(2026, 9, 1), dt.date(2027, 3, 1), dt.date(2027, 8, 23)])
def test_every_school_has_exactly_one_rektor(profile: Profile, on: dt.date) -> None:
    rektors = Counter(unit for _, unit in _holders(profile, "rektor", on))
    for unit in profile.units:
        if unit.kind in SCHOOL_KINDS:
            assert rektors[unit.key] == 1, f"{unit.key} on {on}"


def test_a_substitute_rektor_covers_a_leave(profile: Profile) -> None:
    def centralskolan(on: dt.date) -> list[str]:
        return [p for p, unit in _holders(profile, "rektor", on) if unit == "centralskolan"]

    assert centralskolan(dt.date(2027, 1, 31)) == ["anders-holm"]
    assert centralskolan(dt.date(2027, 2, 1)) == ["karin-ek"]
    assert centralskolan(dt.date(2027, 6, 30)) == ["karin-ek"]
    assert centralskolan(dt.date(2027, 7, 1)) == ["anders-holm"]


def test_some_rektors_lead_two_units(profile: Profile) -> None:
    units_per_rektor = Counter(p for p, _ in _holders(profile, "rektor", dt.date(2026, 9, 1)))
    assert sum(1 for count in units_per_rektor.values() if count == 2) >= 2


def test_role_layout(profile: Profile) -> None:
    on = dt.date(2027, 3, 1)

    def count(role: str) -> int:
        return len({person for person, _ in _holders(profile, role, on)})

    assert count("elevhalsochef") == 1
    assert count("enhetschef-ifo") == 1
    assert count("avdelningschef-ifo") == 1
    assert count("elevhalsan") >= 2
    assert count("familjeteam") == 2
    assert count("familjebehandlare") >= 1
    assert count("socialsekreterare") >= 1
    assert count("mottagning") == len(profile.districts)
    assert count("styrgrupp") == 4
    assert count("omlottgruppen") == 3
    assert count("referensgrupp") == 4
    samordnare = {unit for _, unit in _holders(profile, "samordnare", on)}
    assert samordnare == {"bildningsforvaltningen", "socialforvaltningen"}


def test_every_role_a_routine_addresses_is_held(profile: Profile) -> None:
    on = dt.date(2027, 3, 1)
    kinds = {u.key: u.kind for u in profile.units}
    for routine in profile.routines:
        refs = [*routine.owners, *routine.participants]
        for message in routine.messages:
            refs += message.to
            refs += [message.reply_to] if message.reply_to else []
        for text in refs:
            ref = RoleRef.parse(text)
            assert ref.role in BUILTIN_ROLES
            units = [unit for _, unit in _holders(profile, ref.role, on)]
            if ref.scope is not None:
                units = [u for u in units if u == ref.scope or (u and kinds[u] == ref.scope)]
            assert units, f"{routine.key}: nobody holds {text}"


# --- school years ---------------------------------------------------------------------------


def test_school_years(profile: Profile) -> None:
    years = profile.school_years.years
    assert [y.label for y in years] == ["2026/27", "2027/28"]
    for year in years:
        names = {b.name: b for b in year.breaks}
        assert set(names) == {"Höstlov", "Jullov", "Sportlov", "Påsklov"}
        assert names["Höstlov"].start.isocalendar().week == 44
        assert names["Sportlov"].start.isocalendar().week == 8
        for school_break in year.breaks:
            assert year.start < school_break.start <= school_break.end < year.end
    rule = profile.school_years.rule
    assert (rule.start.month, rule.start.day, rule.end.month, rule.end.day) == (8, 19, 6, 11)
    # A year that is not listed comes from the rule (19 August 2028 is a Saturday).
    assert school_year_starting(profile.school_years, 2028).start == dt.date(2028, 8, 21)


# --- routines -------------------------------------------------------------------------------


def test_exactly_the_required_routines(profile: Profile) -> None:
    assert {r.key for r in profile.routines} == ROUTINE_KEYS
    for routine in profile.routines:
        assert routine.name and routine.description and routine.source
        assert "seed" not in routine.source.lower()


@pytest.mark.parametrize(("key", "month"), [("samverkansmote-var", 4), ("samverkansmote-host", 10)])
def test_cooperation_meetings(profile: Profile, key: str, month: int) -> None:
    routine = _routine(profile, key)
    assert routine.kind is RoutineKind.MEETING
    assert routine.when.month == month
    assert routine.owners == ["elevhalsochef", "enhetschef-ifo"]
    assert routine.participants == ["elevhalsan", "rektor", "socialsekreterare", "familjeteam"]
    meeting = routine.meeting
    assert meeting.duration_minutes == 120
    assert meeting.time == dt.time(13, 0)
    assert meeting.place == "stadshuset-linnen"
    assert meeting.standing_day is None
    assert meeting.agenda == AGENDA
    by_purpose = {m.purpose: m for m in routine.messages}
    assert set(by_purpose) == {"boka-6v", "boka-2v", "boka-vecka", "obokat", "kallelse"}
    # Seed 004: the meeting "is convened": weekly reminders until booked, then a notice.
    weekly = by_purpose["boka-vecka"]
    assert weekly.until_booked and weekly.repeat is not None and weekly.repeat.weeks == 1
    notice = by_purpose["obokat"]
    assert notice.until_booked and notice.on == "window_end"
    assert set(notice.to) == {
        "samordnare",
        "forvaltningschef@bildningsforvaltningen",
        "avdelningschef-ifo",
    }
    for purpose, weeks in (("boka-6v", 6), ("boka-2v", 2)):
        message = by_purpose[purpose]
        assert message.until_booked and message.before.weeks == weeks
        assert message.to == routine.owners
        assert message.template == "samverkansmote-boka"
    invite = by_purpose["kallelse"]
    assert invite.on == "booking"
    assert invite.before.weeks == 3
    assert set(invite.to) == set(routine.participants) | set(routine.owners)
    assert invite.template == "samverkansmote-kallelse"


def test_only_the_spring_meeting_2027_is_booked_in_the_profile(profile: Profile) -> None:
    spring = _routine(profile, "samverkansmote-var").bookings
    assert set(spring) == {2027}
    assert spring[2027].date == dt.date(2027, 4, 13)
    assert spring[2027].time == dt.time(13, 0)
    assert _routine(profile, "samverkansmote-host").bookings == {}


def test_evaluation(profile: Profile) -> None:
    routine = _routine(profile, "utvardering")
    assert routine.kind is RoutineKind.DEADLINE
    assert (routine.when.date.month, routine.when.date.day) == (6, 30)
    by_purpose = {m.purpose: m for m in routine.messages}
    assert set(by_purpose["underlag"].to) == {
        "rektor",
        "elevhalsan",
        "familjeteam",
        "socialsekreterare",
    }
    assert by_purpose["underlag"].reply_to == "elevhalsochef"
    assert by_purpose["paminnelse-30"].before.days == 30
    assert by_purpose["paminnelse-7"].before.days == 7
    # 30 June 2029 is a Saturday: the deadline moves back to Friday 29 June.
    (occurrence,) = occurrences(routine, profile.school_years, [2029])
    assert occurrence.date == dt.date(2029, 6, 29)
    due = {t.message.purpose: t.due_date for t in message_timings(routine, occurrence, dt.time(8))}
    # Seven days before is Friday 22 June, midsommarafton: the reminder moves back to Thursday.
    assert due["paminnelse-7"] == dt.date(2029, 6, 21)


def test_joint_evaluation_twice_a_year(profile: Profile) -> None:
    """Seed 000: both groups evaluate the work twice a year."""
    routine = _routine(profile, "gemensam-utvardering")
    assert routine.kind is RoutineKind.DEADLINE
    found = occurrences(routine, profile.school_years, [2029])
    # 15 December 2029 is a Saturday: the deadline moves back to Friday 14 December.
    assert [(o.key, o.date) for o in found] == [
        ("2029-06-15", dt.date(2029, 6, 15)),
        ("2029-12-15", dt.date(2029, 12, 14)),
    ]


def test_steering_group_meets_regularly(profile: Profile) -> None:
    """Seed 001: the steering group meets regularly; each meeting has its invite."""
    routine = _routine(profile, "styrgruppsmote")
    found = occurrences(routine, profile.school_years, [2027])
    assert len(found) == 5
    assert all(o.booking is not None for o in found)
    for o in found:
        (timing,) = message_timings(routine, o, dt.time(8))
        assert timing.message.template == "styrgrupp-kallelse"


def test_start_of_year_material(profile: Profile) -> None:
    routine = _routine(profile, "lasarsstart-material")
    assert routine.kind is RoutineKind.MAILOUT
    assert routine.when.school_year == "start"
    assert routine.owners == ["avdelningschef-ifo"]
    by_purpose = {m.purpose: m for m in routine.messages}
    assert by_purpose["forbered"].to == ["avdelningschef-ifo"]
    assert by_purpose["forbered"].before.weeks == 3
    assert by_purpose["utskick"].to == ["rektor"]
    assert by_purpose["utskick"].reply_to == "avdelningschef-ifo"
    assert by_purpose["utskick"].before is None and by_purpose["utskick"].after is None
    (occurrence,) = occurrences(routine, profile.school_years, [2027])
    assert occurrence.date == dt.date(2027, 8, 19)
    assert occurrence.key == "2027/28"


def test_attachments_exist_and_are_valid(profile: Profile) -> None:
    routine = _routine(profile, "lasarsstart-material")
    assert routine.attachments == [
        "material/foraldrastod-exempelby.pdf",
        "material/kontaktuppgifter-ifo.txt",
    ]
    pdf = (PROFILE.parent / routine.attachments[0]).read_bytes()
    _check_pdf(pdf)
    text = (PROFILE.parent / routine.attachments[1]).read_text(encoding="utf-8")
    assert "familjeteam" in text.lower()
    assert not re.search(r"\d{6,8}[-+]?\d{4}", text), "no personal identity numbers"


def _check_pdf(pdf: bytes) -> None:
    """Header, trailer, and an xref table whose offsets point at their objects."""
    assert pdf.startswith(b"%PDF-1.")
    assert pdf.rstrip().endswith(b"%%EOF")
    startxref = int(pdf.rsplit(b"startxref", 1)[1].split()[0])
    assert pdf[startxref:].startswith(b"xref")
    lines = pdf[startxref:].split(b"\n")
    first, count = (int(n) for n in lines[1].split())
    assert first == 0
    entries = lines[2 : 2 + count]
    assert entries[0].startswith(b"0000000000 65535 f")
    for number, entry in enumerate(entries[1:], start=1):
        offset = int(entry[:10])
        assert pdf[offset:].startswith(b"%d 0 obj" % number), f"object {number}"
    trailer = b"\n".join(lines[2 + count :])
    assert b"/Size %d" % count in trailer
    assert b"/Root 1 0 R" in trailer
    assert b"/Type /Page " in pdf or b"/Type /Page/" in pdf
    length = int(re.search(rb"/Length (\d+)", pdf).group(1))  # type: ignore[union-attr]
    stream_start = pdf.index(b"stream\n") + len(b"stream\n")
    assert pdf[stream_start + length :].lstrip().startswith(b"endstream")


def test_parent_meeting_reminder(profile: Profile) -> None:
    routine = _routine(profile, "foraldramote-ifo")
    assert routine.kind is RoutineKind.REMINDER
    assert routine.when.school_year == "start"
    assert routine.when.offset.weeks == 2
    assert routine.owners == ["rektor"]
    (message,) = routine.messages
    assert message.to == ["rektor@forskola", "rektor@grundskola", "rektor@gymnasium"]
    assert message.reply_to == "avdelningschef-ifo"
    assert message.template == "foraldramote-ifo"


@pytest.mark.parametrize(
    ("key", "group", "reminders"),
    [
        ("handlingsplan", "styrgrupp", {("weeks", 6), ("weeks", 2)}),
        ("rutinoversyn", "referensgrupp", {("weeks", 4), ("weeks", 1)}),
        ("arsrapport", "styrgrupp", {("weeks", 6), ("weeks", 2)}),
    ],
)
def test_governance_routines(
    profile: Profile, key: str, group: str, reminders: set[tuple[str, int]]
) -> None:
    routine = _routine(profile, key)
    assert routine.kind is RoutineKind.DEADLINE
    assert routine.owners == [group]
    assert {(m.before.unit, m.before.length) for m in routine.messages} == reminders
    for message in routine.messages:
        assert message.to == [group]
        assert message.template == "styrning-paminnelse"


def test_action_plan_follows_the_school_year(profile: Profile) -> None:
    routine = _routine(profile, "handlingsplan")
    assert routine.when.school_year == "end"
    (occurrence,) = occurrences(routine, profile.school_years, [2026])
    assert occurrence.date == dt.date(2027, 6, 11)
    assert occurrence.key == "2026/27"
