"""worker.invite: each test builds an invite and reads it back with icalendar."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from icalendar import Calendar, Event, vCalAddress

from worker.invite import PRODID, Party, build_invite

STOCKHOLM = ZoneInfo("Europe/Stockholm")
ORGANIZER = Party("Åsa Öberg", "asa.oberg@kommun.example.se")
ATTENDEES = (
    Party("Berg, Anna", "anna.berg@skola.kommun.example.se"),
    Party("Nils Nilsson", "nils.nilsson@soc.kommun.example.se"),
)


def invite(**overrides: Any) -> bytes:
    arguments: dict[str, Any] = {
        "uid": "samverkan-2027-04-14-bun@kommun.example.se",
        "sequence": 0,
        "dtstamp": datetime(2027, 3, 1, 9, 0, tzinfo=STOCKHOLM),
        "start": datetime(2027, 4, 14, 13, 0, tzinfo=STOCKHOLM),
        "end": datetime(2027, 4, 14, 14, 30, tzinfo=STOCKHOLM),
        "summary": "Samverkansmöte skola och socialtjänst",
        "description": "Dagordning:\n1. Öppnande\n2. Aktuella frågor",
        "location": "Stadshuset, rum 3",
        "organizer": ORGANIZER,
        "attendees": ATTENDEES,
    }
    arguments.update(overrides)
    return build_invite(**arguments)


def parse(data: bytes) -> tuple[Calendar, Event]:
    calendar = Calendar.from_ical(data)
    (event,) = calendar.walk("VEVENT")
    assert isinstance(event, Event)
    return calendar, event


def unfolded_lines(data: bytes) -> list[str]:
    return data.decode("utf-8").replace("\r\n ", "").split("\r\n")


# --- times and zones ----------------------------------------------------------------------------


def test_april_meeting_at_13_stays_13_local_in_summer_time() -> None:
    data = invite()
    _, event = parse(data)
    start = event.decoded("DTSTART")
    assert "DTSTART;TZID=Europe/Stockholm:20270414T130000" in unfolded_lines(data)
    assert event["DTSTART"].params["TZID"] == "Europe/Stockholm"
    assert (start.hour, start.minute) == (13, 0)
    assert start.astimezone(UTC) == datetime(2027, 4, 14, 11, 0, tzinfo=UTC)


def test_november_meeting_after_dst_end_is_12_utc() -> None:
    # Summer time 2027 ends on 31 October, so 13:00 local is 12:00 UTC a few days later.
    data = invite(
        start=datetime(2027, 11, 3, 13, 0, tzinfo=STOCKHOLM),
        end=datetime(2027, 11, 3, 14, 0, tzinfo=STOCKHOLM),
    )
    _, event = parse(data)
    assert "DTSTART;TZID=Europe/Stockholm:20271103T130000" in unfolded_lines(data)
    assert "DTEND;TZID=Europe/Stockholm:20271103T140000" in unfolded_lines(data)
    assert event.decoded("DTSTART").astimezone(UTC) == datetime(2027, 11, 3, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("day", "utc_hour"),
    [
        (datetime(2027, 1, 20), 12),  # winter
        (datetime(2027, 3, 26), 12),  # the Friday before summer time starts
        (datetime(2027, 3, 29), 11),  # the Monday after
        (datetime(2027, 10, 29), 11),  # the Friday before summer time ends
        (datetime(2027, 11, 1), 12),  # the Monday after
    ],
)
def test_local_13_is_the_right_utc_hour_either_side_of_each_change(
    day: datetime, utc_hour: int
) -> None:
    start = day.replace(hour=13, tzinfo=STOCKHOLM)
    _, event = parse(invite(start=start, end=start + timedelta(hours=1)))
    assert event.decoded("DTSTART").astimezone(UTC).hour == utc_hour


def test_vtimezone_present_with_standard_and_daylight() -> None:
    calendar, _ = parse(invite())
    (vtimezone,) = calendar.timezones
    assert vtimezone.tz_name == "Europe/Stockholm"
    assert vtimezone.standard and vtimezone.daylight
    assert calendar.get_missing_tzids() == set()
    # VTIMEZONE comes before the VEVENT that refers to it.
    names = [component.name for component in calendar.subcomponents]
    assert names == ["VTIMEZONE", "VEVENT"]


def test_vtimezone_onsets_are_the_real_changes_read_in_tzoffsetfrom() -> None:
    calendar, _ = parse(invite())
    (vtimezone,) = calendar.timezones
    times, _info = vtimezone.get_transitions()  # UTC, DTSTART - TZOFFSETFROM
    assert datetime(2027, 3, 28, 1, 0) in times  # 02:00 CET -> 03:00 CEST
    assert datetime(2027, 10, 31, 1, 0) in times  # 03:00 CEST -> 02:00 CET
    (daylight,) = vtimezone.daylight
    onset = daylight.DTSTART  # local time before the change: 02:00, not icalendar's 03:00
    # One rule for every year (see test_vtimezone_is_one_yearly_rule...): the onset is the
    # rule's first occurrence, 29 March 1970, at 02:00; 2027's is among the transitions above.
    assert (onset.hour, onset.minute) == (2, 0)


def test_vtimezone_gives_the_same_offset_as_zoneinfo_all_year() -> None:
    calendar, _ = parse(invite())
    (vtimezone,) = calendar.timezones
    from_vtimezone = vtimezone.to_tz(lookup_tzid=False)  # built from the component alone
    moment = datetime(2027, 1, 1, tzinfo=UTC)
    wrong = []
    while moment.year == 2027:
        if (
            moment.astimezone(from_vtimezone).utcoffset()
            != moment.astimezone(STOCKHOLM).utcoffset()
        ):
            wrong.append(moment)
        moment += timedelta(minutes=30)
    assert wrong == []


def test_vtimezone_covers_every_year_the_event_touches() -> None:
    start = datetime(2027, 12, 31, 23, 0, tzinfo=STOCKHOLM)
    calendar, _ = parse(invite(start=start, end=start + timedelta(hours=2)))
    (vtimezone,) = calendar.timezones
    times, _info = vtimezone.get_transitions()
    assert datetime(2028, 3, 26, 1, 0) in times
    assert datetime(2028, 10, 29, 1, 0) in times


def test_fixed_offset_times_are_written_in_utc_without_vtimezone() -> None:
    plus_two = timezone(timedelta(hours=2))
    data = invite(
        start=datetime(2027, 4, 14, 13, 0, tzinfo=plus_two),
        end=datetime(2027, 4, 14, 14, 0, tzinfo=plus_two),
    )
    calendar, _ = parse(data)
    assert "DTSTART:20270414T110000Z" in unfolded_lines(data)
    assert calendar.timezones == []


def test_dtstamp_is_written_in_utc() -> None:
    assert "DTSTAMP:20270301T080000Z" in unfolded_lines(invite())


@pytest.mark.parametrize("field", ["start", "end", "dtstamp"])
def test_naive_datetime_refused(field: str) -> None:
    with pytest.raises(ValueError, match=f"{field} must be timezone-aware"):
        invite(**{field: datetime(2027, 4, 14, 13, 0)})


@pytest.mark.parametrize("length", [timedelta(0), timedelta(minutes=-30)])
def test_end_not_after_start_refused(length: timedelta) -> None:
    start = datetime(2027, 4, 14, 13, 0, tzinfo=STOCKHOLM)
    with pytest.raises(ValueError, match=r"end .* must be after start"):
        invite(start=start, end=start + length)


def test_local_time_in_the_spring_gap_refused() -> None:
    start = datetime(2027, 3, 28, 2, 30, tzinfo=STOCKHOLM)  # clocks jump 02:00 -> 03:00
    with pytest.raises(ValueError, match="does not exist in Europe/Stockholm"):
        invite(start=start, end=start + timedelta(hours=2))


@pytest.mark.parametrize("fold", [0, 1])
def test_times_in_the_repeated_hour_are_written_in_utc(fold: int) -> None:
    # 02:00-03:00 happens twice on 31 October 2027; readers disagree on which one a local
    # time means, so both instants (and the end, for one DTSTART/DTEND form) go in UTC.
    start = datetime(2027, 10, 31, 2, 30, fold=fold, tzinfo=STOCKHOLM)
    end = datetime(2027, 10, 31, 4, 0, tzinfo=STOCKHOLM)
    data = invite(start=start, end=end)
    utc_start = datetime(2027, 10, 31, 0 + fold, 30, tzinfo=UTC)
    assert f"DTSTART:{utc_start:%Y%m%dT%H%M%S}Z" in unfolded_lines(data)
    assert "DTEND:20271031T030000Z" in unfolded_lines(data)
    _, event = parse(data)
    assert event.decoded("DTSTART") == start.astimezone(UTC)


# --- calendar and event properties ----------------------------------------------------------


def test_calendar_has_version_prodid_method_calscale() -> None:
    calendar, _ = parse(invite())
    assert calendar["VERSION"] == "2.0"
    assert calendar["PRODID"] == PRODID == "-//samverkan//samverkan//SV"
    assert calendar["METHOD"] == "REQUEST"
    assert calendar["CALSCALE"] == "GREGORIAN"


def test_uid_and_sequence_as_given() -> None:
    _, event = parse(invite(uid="möte-42@kommun.example.se", sequence=3))
    assert event["UID"] == "möte-42@kommun.example.se"
    assert event.decoded("SEQUENCE") == 3


@pytest.mark.parametrize("sequence", [-1, True])
def test_bad_sequence_refused(sequence: object) -> None:
    with pytest.raises(ValueError, match="sequence"):
        invite(sequence=sequence)


@pytest.mark.parametrize("uid", ["", "a\r\nb", " padded "])
def test_bad_uid_refused(uid: str) -> None:
    with pytest.raises(ValueError, match="uid"):
        invite(uid=uid)


def test_description_with_commas_semicolons_newlines_round_trips() -> None:
    text = "Dagordning:\n1. Ärenden, nya; gamla\n2. Sökväg C:\\delat\\protokoll"
    data = invite(description=text)
    _, event = parse(data)
    assert event["DESCRIPTION"] == text
    assert (
        "DESCRIPTION:Dagordning:\\n1. Ärenden\\, nya\\; gamla\\n2. Sökväg C:\\\\delat\\\\protokoll"
        in unfolded_lines(data)
    )


def test_crlf_in_description_is_read_back_as_newline() -> None:
    _, event = parse(invite(description="rad 1\r\nrad 2\rrad 3"))
    assert event["DESCRIPTION"] == "rad 1\nrad 2\nrad 3"


def test_other_control_character_in_text_refused() -> None:
    with pytest.raises(ValueError, match="description must not contain control characters"):
        invite(description="rad 1\x00")


def test_location_given_and_omitted() -> None:
    _, event = parse(invite(location="Skolan; aulan, plan 2"))
    assert event["LOCATION"] == "Skolan; aulan, plan 2"
    _, event = parse(invite(location=None))
    assert "LOCATION" not in event


def test_attendee_has_cn_and_role() -> None:
    _, event = parse(invite())
    attendees = event["ATTENDEE"]
    assert isinstance(attendees, list)
    assert [str(attendee) for attendee in attendees] == [
        "mailto:anna.berg@skola.kommun.example.se",
        "mailto:nils.nilsson@soc.kommun.example.se",
    ]
    first = attendees[0]
    assert isinstance(first, vCalAddress)
    assert first.params["CN"] == "Berg, Anna"
    assert first.params["ROLE"] == "REQ-PARTICIPANT"
    assert first.params["PARTSTAT"] == "NEEDS-ACTION"
    assert first.params["RSVP"] == "TRUE"
    assert first.params["CUTYPE"] == "INDIVIDUAL"


def test_organizer_has_cn_and_mailto() -> None:
    _, event = parse(invite())
    organizer = event["ORGANIZER"]
    assert str(organizer) == "mailto:asa.oberg@kommun.example.se"
    assert organizer.params["CN"] == "Åsa Öberg"
    assert "SENT-BY" not in organizer.params


def test_organizer_sent_by() -> None:
    data = invite(sent_by="noreply@samverkan.kommun.example.se")
    _, event = parse(data)
    assert event["ORGANIZER"].params["SENT-BY"] == "mailto:noreply@samverkan.kommun.example.se"
    assert 'SENT-BY="mailto:noreply@samverkan.kommun.example.se"' in "".join(unfolded_lines(data))


def test_status_and_transp() -> None:
    _, event = parse(invite())
    assert event["STATUS"] == "CONFIRMED"
    assert event["TRANSP"] == "OPAQUE"


def test_cancel_has_method_cancel_and_status_cancelled() -> None:
    calendar, event = parse(invite(method="CANCEL", status="CANCELLED", sequence=1))
    assert calendar["METHOD"] == "CANCEL"
    assert event["STATUS"] == "CANCELLED"
    assert event.decoded("SEQUENCE") == 1


@pytest.mark.parametrize(
    ("method", "status", "message"),
    [
        ("CANCEL", "CONFIRMED", "with method CANCEL the status must be"),
        ("REQUEST", "CANCELLED", "with method REQUEST the status must be"),
        ("COUNTER", "CONFIRMED", "method must be one of"),
    ],
)
def test_method_and_status_must_fit(method: str, status: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        invite(method=method, status=status)


def test_no_valarm_by_default() -> None:
    _, event = parse(invite())
    assert event.walk("VALARM") == []


def test_alarm_before_adds_display_alarm() -> None:
    _, event = parse(invite(alarm_before=timedelta(days=1)))
    (alarm,) = event.walk("VALARM")
    assert alarm["ACTION"] == "DISPLAY"
    assert alarm.decoded("TRIGGER") == timedelta(days=-1)


# --- refused names and addresses --------------------------------------------------------------


@pytest.mark.parametrize("bad", ["\r\n", "\n", "\r", "\x00", "\u2028"])
@pytest.mark.parametrize(
    "field",
    ["organizer.name", "organizer.email", "attendee.name", "attendee.email", "sent_by"],
)
def test_crlf_in_names_and_emails_refused(field: str, bad: str) -> None:
    organizer, attendee, sent_by = ORGANIZER, ATTENDEES[0], None
    if field == "organizer.name":
        organizer = Party(f"Åsa{bad}Bcc: x@evil.example.com", organizer.email)
    elif field == "organizer.email":
        organizer = Party(organizer.name, f"asa@kommun.example.se{bad}x")
    elif field == "attendee.name":
        attendee = Party(f"Anna{bad}Berg", attendee.email)
    elif field == "attendee.email":
        attendee = Party(attendee.name, f"anna{bad}@skola.example.se")
    else:
        sent_by = f"noreply@kommun.example.se{bad}"
    with pytest.raises(ValueError, match="control characters"):
        invite(organizer=organizer, attendees=[attendee], sent_by=sent_by)


@pytest.mark.parametrize("email", ["anna", "anna@", "anna berg@skola.example.se", "a@b"])
def test_malformed_email_refused(email: str) -> None:
    with pytest.raises(ValueError, match=r"attendees\[0\]\.email is not a usable e-mail address"):
        invite(attendees=[Party("Anna", email)])


def test_no_attendees_refused() -> None:
    with pytest.raises(ValueError, match="at least one attendee"):
        invite(attendees=[])


# --- wire format ------------------------------------------------------------------------------


def test_invite_lines_end_with_crlf_and_are_folded() -> None:
    long_text = "Genomgång av rutiner, ansvar; uppföljning. " * 10
    data = invite(description=long_text)
    assert data.endswith(b"\r\n")
    lines = data.split(b"\r\n")[:-1]
    assert all(b"\n" not in line and b"\r" not in line for line in lines)
    assert all(len(line) <= 75 for line in lines)  # octets, not characters
    assert any(line.startswith(b" ") for line in lines)  # the description was folded
    _, event = parse(data)
    assert event["DESCRIPTION"] == long_text


def test_output_is_utf8_bytes() -> None:
    data = invite()
    assert isinstance(data, bytes)
    assert 'CN="Åsa Öberg"' in data.decode("utf-8")


# --- property ---------------------------------------------------------------------------------

TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from(",;\\\n\t:\"'^ NnåäöÅÄÖ€😀"),
        st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp")),
    ),
    max_size=200,
)
# A typed backslash followed by "N" round-trips too (icalendar 7.3 alone would write it as a
# line break; worker/invite.py escapes TEXT itself).


@settings(max_examples=150, deadline=None)
@given(summary=TEXT, description=TEXT, location=TEXT)
def test_text_round_trips_for_any_text(summary: str, description: str, location: str) -> None:
    data = invite(summary=summary, description=description, location=location)
    assert all(len(line) <= 75 for line in data.split(b"\r\n"))
    _, event = parse(data)
    assert str(event["SUMMARY"]) == summary
    assert str(event["DESCRIPTION"]) == description
    assert str(event["LOCATION"]) == location


def test_the_organizers_copy_is_published_without_attendees() -> None:
    organizer = Party("Eva Sjöberg", "eva.sjoberg@exempelby.se")
    raw = invite(method="PUBLISH", organizer=organizer, attendees=[])
    (event,) = Calendar.from_ical(raw).walk("VEVENT")
    assert b"METHOD:PUBLISH" in raw and "ATTENDEE" not in event
    cancelled = invite(method="PUBLISH", status="CANCELLED", organizer=organizer, attendees=[])
    assert b"STATUS:CANCELLED" in cancelled
    with pytest.raises(ValueError, match="has no attendees"):
        invite(method="PUBLISH", organizer=organizer)
    with pytest.raises(ValueError, match="at least one attendee"):
        invite(method="REQUEST", attendees=[])


def test_an_hour_that_ends_at_the_second_of_two_equal_local_times_is_accepted() -> None:
    # 02:00 (summer time) to 02:00 (winter time) on 31 October 2027 is one hour, although
    # Python sees equal wall clocks when both carry the same zone.
    start = datetime(2027, 10, 31, 2, 0, tzinfo=STOCKHOLM)
    end = datetime(2027, 10, 31, 2, 0, fold=1, tzinfo=STOCKHOLM)
    _, event = parse(invite(start=start, end=end))
    assert event.decoded("DTEND") - event.decoded("DTSTART") == timedelta(hours=1)
    with pytest.raises(ValueError, match="must be after start"):
        invite(start=end, end=start)
