"""Calendar feeds: the person's meetings and deadlines, nothing about a child, a token kept
only as its hash and revocable, and conditional requests answered 304."""

from __future__ import annotations

import datetime as dt

from icalendar import Calendar
from sqlalchemy import select

import models
from models.db import transaction
from service.booking import book_routine_meeting
from tests.web.conftest import NOW, World, municipality_id
from web import feeds

APRIL = "Samverkansmöte skola–socialtjänst i april"


def token_for(world: World, town: str, key: str) -> str:
    with transaction(world.sessions) as session:
        person = session.scalars(
            select(models.Person).where(
                models.Person.municipality_id == municipality_id(session, town),
                models.Person.key == key,
            )
        ).one()
        return feeds.new_token(session, person.id, NOW)


def book(world: World, date: str, time: str = "13:00") -> None:
    with transaction(world.sessions) as session:
        book_routine_meeting(
            session, municipality_id(session, "exempel"), "samverkansmote-var", date, time,
            "stadshuset-linnen", NOW, 120,
        )  # fmt: skip


def summaries(body: bytes) -> dict[str, object]:
    calendar = Calendar.from_ical(body)
    return {str(e["SUMMARY"]): e.decoded("DTSTART") for e in calendar.walk("VEVENT")}


def test_a_rektor_gets_her_meetings_and_her_case_deadline(world: World) -> None:
    book(world, "2027-04-13")
    token = token_for(world, "exempel", "ingrid-mattsson")
    answer = world.client().get(f"/feeds/{token}.ics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/calendar")
    found = summaries(answer.content)
    assert found[APRIL] == dt.datetime(2027, 4, 13, 11, 0, tzinfo=dt.UTC)
    assert f"Senast möte 1, ärende {world.case}" in found


def test_the_feed_names_a_case_by_its_reference_only(world: World) -> None:
    token = token_for(world, "exempel", "emma-sandberg")  # the case's family worker
    body = world.client().get(f"/feeds/{token}.ics").content.decode()
    assert "hem.example" not in body  # the guardian's address
    assert "kyrkbacksskolan" not in body.lower()  # the child's school
    for line in body.splitlines():
        if line.startswith(("SUMMARY", "DESCRIPTION", "LOCATION", "ATTENDEE")):
            assert "@" not in line, line


def test_an_unchanged_feed_answers_304_to_its_etag_and_date(world: World) -> None:
    token = token_for(world, "exempel", "ingrid-mattsson")
    client = world.client()
    first = client.get(f"/feeds/{token}.ics")
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    again = client.get(f"/feeds/{token}.ics", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    since = client.get(f"/feeds/{token}.ics", headers={"If-Modified-Since": modified})
    assert since.status_code == 304
    assert client.get(f"/feeds/{token}.ics", headers={"If-None-Match": '"old"'}).status_code == 200


def test_a_booking_changes_the_feed_and_its_etag(world: World) -> None:
    token = token_for(world, "exempel", "ingrid-mattsson")
    client = world.client()
    before = client.get(f"/feeds/{token}.ics")
    book(world, "2027-04-14")
    after = client.get(f"/feeds/{token}.ics", headers={"If-None-Match": before.headers["etag"]})
    assert after.status_code == 200 and after.headers["etag"] != before.headers["etag"]
    start = summaries(after.content)[APRIL]
    assert start == dt.datetime(2027, 4, 14, 11, 0, tzinfo=dt.UTC)


def test_a_new_day_is_a_new_version(world: World) -> None:
    token = token_for(world, "exempel", "ingrid-mattsson")
    client = world.client()
    etag = client.get(f"/feeds/{token}.ics").headers["etag"]
    world.clock.current += dt.timedelta(days=1)
    assert client.get(f"/feeds/{token}.ics", headers={"If-None-Match": etag}).status_code == 200


def test_the_token_is_kept_only_as_its_hash_and_can_be_revoked(world: World) -> None:
    token = token_for(world, "exempel", "ingrid-mattsson")
    with world.sessions() as session:
        stored = session.scalars(select(models.FeedToken)).one()
    assert stored.digest != token and token not in stored.digest and len(token) >= 43
    with transaction(world.sessions) as session:
        assert feeds.revoke_tokens(session, stored.person_id, NOW) == 1
    assert world.client().get(f"/feeds/{token}.ics").status_code == 404


def test_an_unknown_token_is_a_plain_404(world: World) -> None:
    answer = world.client().get("/feeds/" + "A" * 43 + ".ics")
    assert answer.status_code == 404 and "set-cookie" not in answer.headers


def test_another_municipality_feed_holds_nothing_of_exempelby(world: World) -> None:
    book(world, "2027-04-13")
    token = token_for(world, "liten", "anna")
    body = world.client().get(f"/feeds/{token}.ics").content.decode()
    assert APRIL not in body and "exempel" not in body.lower()
    assert "Utvärdering av samverkan" in body  # her own deadline (she owns it)


def test_a_case_meeting_is_in_the_feeds_of_those_in_the_case_only(world: World) -> None:
    from service import cases
    from service.desk import Desk

    with transaction(world.sessions) as session:
        desk = Desk.open(session, municipality_id(session, "exempel"), "ingrid-mattsson", NOW)
        consent = cases.ConsentRequest("vårdnadshavarna", "samverkansmöte")
        cases.record_consent(desk, world.case, consent)
        booking = cases.BookingRequest("2027-03-04", "10:00", "ifo-samtal")
        cases.book_meeting(desk, world.case, booking)
    meeting = f"Samverkansmöte 1, ärende {world.case}"
    for key, expected in [("emma-sandberg", True), ("ingrid-mattsson", True),
                          ("linda-karlsson", False), ("per-sundberg", False)]:  # fmt: skip
        body = world.client().get(f"/feeds/{token_for(world, 'exempel', key)}.ics").content
        assert (meeting in summaries(body)) is expected, key
    found = summaries(
        world.client().get(f"/feeds/{token_for(world, 'exempel', 'emma-sandberg')}.ics").content
    )
    assert found[meeting] == dt.datetime(2027, 3, 4, 9, 0, tzinfo=dt.UTC)
