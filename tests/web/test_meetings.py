"""Möten: who sees which meeting, the invitees and their answers, and moving and calling off a
routine meeting, in-process against a real database (tests/web/conftest.py).

The example profile books the April meeting `samverkansmote-var` for 13 April 2027 at 13:00;
its conveners are the elevhälsochef (Eva Sjöberg) and the enhetschef IFO; its invitation goes
to the elevhälsan, every rektor, the social secretaries and the family team. The clock stands
at 1 March 2027, before the invitations' due day: tests that need them sent send them as the
worker would (status sent, and the record of who was sent what).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

import models
from models.db import make_engine, make_sessionmaker, transaction
from samverkan.cli.webapp import set_password
from scheduler.outbox.invites import record_sent
from service import cases
from service.booking import book_routine_meeting
from service.desk import Desk
from tests.web.conftest import NOW, USERS, World, csrf_of, municipality_id, sign_in

ROUTINE, OCCURRENCE = "samverkansmote-var", "2027"
PAGE = f"/moten/rutin/{ROUTINE}/{OCCURRENCE}"
CONVENER = ("sammankallande", "eva-sjoberg")  # the elevhälsochef: a convener, not a coordinator
GUARDIAN = "vh.hemma@hem.example"


# --- helpers -------------------------------------------------------------------------------------


def account(world: World, username: str, person_key: str, town: str = "exempel") -> TestClient:
    with transaction(world.sessions) as session:
        person = session.scalars(
            select(models.Person).where(
                models.Person.municipality_id == municipality_id(session, town),
                models.Person.key == person_key,
            )
        ).one()
        password = set_password(session, person, username, NOW, reset=False)
    client = world.client()
    sign_in(client, username, password)
    return client


@pytest.fixture
def clients(world: World) -> Iterator[dict[str, TestClient]]:
    found = {}
    for username in USERS:
        client = world.client()
        sign_in(client, username, world.passwords[username])
        found[username] = client
    found["sammankallande"] = account(world, *CONVENER)
    yield found
    for client in found.values():
        client.close()


def send_invitations(sessions: sessionmaker[Session], routine: str, occurrence: str) -> int:
    """Send every invitation of the meeting still waiting, as the worker does; how many."""
    sent = 0
    with transaction(sessions) as session:
        n = models.Notification
        for row in session.scalars(
            select(n)
            .where(n.routine_key == routine, n.occurrence == occurrence)
            .where(n.municipality_id == municipality_id(session, "exempel"))
            .where(n.status == models.Status.PENDING)
            .order_by(n.id)
        ):
            if not ((row.context or {}).get("meeting") or {}).get("uid"):
                continue  # a reminder to book it, not an invitation
            row.status = models.Status.SENT
            row.sent_at = NOW - dt.timedelta(hours=1)
            session.flush()
            record_sent(row, NOW - dt.timedelta(hours=1))
            sent += 1
    return sent


def answer(
    sessions: sessionmaker[Session], email: str, partstat: str, sequence: int = 0, uid: str = ""
) -> None:
    with transaction(sessions) as session:
        record = session.scalars(
            select(models.InviteRecord).where(
                models.InviteRecord.recipient_email == email,
                models.InviteRecord.routine_key == (ROUTINE if not uid else "case"),
            )
        ).first()
        assert record is not None
        session.add(
            models.Answer(
                municipality_id=record.municipality_id,
                uid=uid or record.uid,
                routine_key=record.routine_key,
                occurrence=record.occurrence,
                attendee_email=email,
                person_id=record.person_id,
                partstat=partstat,
                sequence=sequence,
                dtstamp=NOW,
                received_at=NOW,
            )
        )


def booking(sessions: sessionmaker[Session]) -> tuple[dt.datetime, int, dt.datetime | None]:
    with sessions() as session:
        row = session.scalars(
            select(models.Booking)
            .join(models.Routine, models.Routine.id == models.Booking.routine_id)
            .where(models.Routine.key == ROUTINE, models.Booking.occurrence == OCCURRENCE)
            .where(models.Routine.municipality_id == municipality_id(session, "exempel"))
        ).one()
        return row.starts_at, row.sequence, row.cancelled_at


def outbox_state(sessions: sessionmaker[Session]) -> list[tuple[Any, ...]]:
    with sessions() as session:
        n = models.Notification
        return [
            (r.id, r.idempotency_key, r.status, r.due_at, r.cancel_reason)
            for r in session.scalars(select(n).order_by(n.id))
        ]


def meeting_rows(sessions: sessionmaker[Session], status: models.Status) -> list[dict[str, Any]]:
    with sessions() as session:
        n = models.Notification
        return [
            {"to": r.recipient_email, **r.context["meeting"]}
            for r in session.scalars(
                select(n).where(
                    n.routine_key == ROUTINE, n.occurrence == OCCURRENCE, n.status == status
                )
            )
            if (r.context.get("meeting") or {}).get("uid")
        ]


def audits(sessions: sessionmaker[Session], action: str) -> list[dict[str, Any]]:
    with sessions() as session:
        return [
            a.detail
            for a in session.scalars(
                select(models.WebAudit).where(models.WebAudit.action == action)
            )
        ]


def post(client: TestClient, path: str, **form: str) -> Any:
    token = csrf_of(client.get("/logga-in").text)
    return client.post(path, data={"csrf": token, **form})


def book_other_town(world: World) -> None:
    """Lilla kommunen books its own April meeting (on 14 April)."""
    with transaction(world.sessions) as session:
        book_routine_meeting(
            session,
            municipality_id(session, "liten"),
            ROUTINE,
            "2027-04-14",
            "10:00",
            None,
            NOW,
            120,
        )


def book_case_meeting(world: World) -> None:
    with transaction(world.sessions) as session:
        desk = Desk.open(session, municipality_id(session, "exempel"), "ingrid-mattsson", NOW)
        cases.record_consent(
            desk, world.case, cases.ConsentRequest("vårdnadshavarna", "samverkansmöte")
        )
        cases.book_meeting(desk, world.case, cases.BookingRequest("2027-03-10", "09:00"))


# --- the list ------------------------------------------------------------------------------------


def test_the_list_is_narrowed_to_the_meetings_one_convenes_or_is_invited_to(
    world: World, clients: dict[str, TestClient]
) -> None:
    book_other_town(world)
    seen = {kind: client.get("/moten") for kind, client in clients.items()}
    assert seen["ingenroll"].status_code == 403
    title = "Samverkansmöte skola–socialtjänst i april"
    # The coordinator: all; the convener; those invited (a rektor, the family worker).
    for kind in ("samordnare", "sammankallande", "rektor", "familj"):
        assert seen[kind].status_code == 200
        assert title in seen[kind].text and PAGE in seen[kind].text, kind
        assert "2027-04-13 kl. 13.00–15.00" in seen[kind].text
        assert "Stadshuset" in seen[kind].text  # the place by name
        assert "2027-04-14" not in seen[kind].text  # not the other municipality's
    # The intake officer is neither invited nor convener.
    assert PAGE not in seen["mottagning"].text
    # The other municipality's coordinator sees its own meeting only.
    assert "2027-04-14 kl. 10.00" in seen["annan"].text
    assert "2027-04-13" not in seen["annan"].text


def test_a_meeting_page_is_refused_to_those_who_may_not_see_it(
    world: World, clients: dict[str, TestClient]
) -> None:
    status = {kind: client.get(PAGE).status_code for kind, client in clients.items()}
    assert status == {
        "samordnare": 200,
        "sammankallande": 200,
        "rektor": 200,
        "familj": 200,
        "mottagning": 404,
        "ingenroll": 403,
        "annan": 404,
    }
    assert world.client().get(PAGE).status_code == 303  # not signed in


def test_case_meetings_are_shown_by_reference_to_those_entitled_and_audited(
    world: World, clients: dict[str, TestClient]
) -> None:
    book_case_meeting(world)
    path = f"/moten/arende/{world.case}/1"
    send_invitations(world.sessions, "case", world.case)
    for kind, client in clients.items():
        listed = client.get("/moten")
        page = client.get(path)
        if kind in ("samordnare", "rektor", "familj"):  # coordinator, owner, family worker
            assert path in listed.text, kind
            assert page.status_code == 200, kind
            assert f"Ärende {world.case}, möte 1" in page.text
            assert "Vårdnadshavare" in page.text  # the guardian by role only
            assert GUARDIAN not in page.text and "hem.example" not in page.text
            assert "Ingrid Mattsson (processbärare)" in page.text
        else:
            assert path not in listed.text, kind
            assert page.status_code in (403, 404), kind
    with world.sessions() as session:
        a = models.CaseAudit
        rows = session.execute(
            select(a.actor, a.action).where(a.reference == world.case, a.action.like("web.%"))
        ).all()
    for person in ("elin-bergstrom", "ingrid-mattsson", "emma-sandberg"):
        assert (person, "web.listed") in rows and (person, "web.viewed") in rows
    assert {actor for actor, _ in rows} == {"elin-bergstrom", "ingrid-mattsson", "emma-sandberg"}


# --- answers ------------------------------------------------------------------------------------


def test_everyone_sent_an_invitation_is_shown_with_their_answer(
    world: World, clients: dict[str, TestClient]
) -> None:
    before = clients["samordnare"].get(PAGE).text
    assert "Inga inbjudningar har skickats ännu" in before
    assert send_invitations(world.sessions, ROUTINE, OCCURRENCE) == 19
    answer(world.sessions, "ingrid.mattsson@exempelby.se", "ACCEPTED")
    answer(world.sessions, "per.sundberg@exempelby.se", "DECLINED")
    answer(world.sessions, "karin.ek@exempelby.se", "TENTATIVE")
    answer(world.sessions, "johan.berg@exempelby.se", "DELEGATED")
    text = clients["samordnare"].get(PAGE).text
    rows = dict(re.findall(r"<td>([^<]+)</td>\s*<td>[^<]*</td>\s*<td>([^<]+)</td>", text))
    assert rows["Ingrid Mattsson"] == "kommer"
    assert rows["Per Sundberg"] == "kommer inte"
    assert rows["Karin Ek"] == "kanske"
    assert rows["Johan Berg"] == "delegerat"
    assert rows["Emma Sandberg"] == "inget svar"
    # 19 sent: 18 invitees and the convener's own copy, who is not asked to answer.
    assert len(rows) == 18 and "Eva Sjöberg" not in rows
    assert "4 av 18 inbjudna har svarat" in text
    assert "Eva Sjöberg, Sara Lundqvist" in text  # the conveners


def test_an_answer_to_an_earlier_version_is_marked_and_not_counted(
    world: World, clients: dict[str, TestClient]
) -> None:
    send_invitations(world.sessions, ROUTINE, OCCURRENCE)
    answer(world.sessions, "ingrid.mattsson@exempelby.se", "ACCEPTED")
    moved = post(clients["sammankallande"], f"{PAGE}/flytta", datum="2027-04-14", tid="13:00")
    assert moved.status_code == 303
    send_invitations(world.sessions, ROUTINE, OCCURRENCE)  # the update goes out
    text = clients["samordnare"].get(PAGE).text
    assert "kommer (svar på en tidigare tid)" in text
    assert "0 av 18 inbjudna har svarat" in text


# --- moving -------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["sammankallande", "samordnare"])
def test_moving_sends_the_update_with_a_higher_sequence(
    world: World, clients: dict[str, TestClient], who: str
) -> None:
    send_invitations(world.sessions, ROUTINE, OCCURRENCE)
    answer_page = clients[who].get(PAGE)
    assert 'action="/moten/rutin/samverkansmote-var/2027/flytta"' in answer_page.text
    moved = post(clients[who], f"{PAGE}/flytta", datum="2027-04-14", tid="14:30")
    assert moved.status_code == 303
    assert moved.headers["location"] == f"{PAGE}?klart=flyttat"
    start, sequence, cancelled = booking(world.sessions)
    assert start == dt.datetime(2027, 4, 14, 12, 30, tzinfo=dt.UTC) and sequence == 1
    assert cancelled is None
    pending = meeting_rows(world.sessions, models.Status.PENDING)
    # The update: a REQUEST with SEQUENCE 1 to everyone the invitation went to, at the new time.
    assert len(pending) == 19
    assert {(m.get("method", "REQUEST"), m["sequence"], m["start"][:16]) for m in pending} == {
        ("REQUEST", 1, "2027-04-14T14:30")
    }
    assert audits(world.sessions, "meeting.move") == [
        {"routine": ROUTINE, "occurrence": OCCURRENCE, "sequence": 1}
    ]
    assert "2027-04-14 kl. 14.30–16.30" in clients[who].get(moved.headers["location"]).text


@pytest.mark.parametrize(
    ("datum", "tid", "field", "message"),
    [
        ("", "13:00", "Datum", "Skriv datumet som ÅÅÅÅ-MM-DD"),
        ("13/4 2027", "13:00", "Datum", "Skriv datumet som ÅÅÅÅ-MM-DD"),
        ("2027-02-30", "13:00", "Datum", "Skriv datumet som ÅÅÅÅ-MM-DD"),
        ("2027-04-14", "", "Tid", "Skriv tiden som TT:MM"),
        ("2027-04-14", "25:00", "Tid", "Skriv tiden som TT:MM"),
        ("2027-04-14", "1300", "Tid", "Skriv tiden som TT:MM"),
        ("2027-04-14", "13:00+01:00", "Tid", "Skriv tiden som TT:MM"),
        ("2027-04-17", "13:00", "Datum", "2027-04-17 är inte en arbetsdag"),  # a Saturday
        ("2027-05-12", "13:00", "Datum", "2027-05-12 ligger utanför den månad"),
        ("2028-04-12", "13:00", "Datum", "Mötet för 2027 ska hållas under 2027"),
    ],
)
def test_bad_input_names_the_field_and_changes_nothing(
    world: World, clients: dict[str, TestClient], datum: str, tid: str, field: str, message: str
) -> None:
    send_invitations(world.sessions, ROUTINE, OCCURRENCE)
    before = (booking(world.sessions), outbox_state(world.sessions))
    answered = post(clients["sammankallande"], f"{PAGE}/flytta", datum=datum, tid=tid)
    assert answered.status_code == 400
    assert f"{field}: {message}" in answered.text
    assert 'aria-invalid="true"' in answered.text
    assert (booking(world.sessions), outbox_state(world.sessions)) == before
    assert audits(world.sessions, "meeting.move") == []


def test_a_time_already_passed_is_refused(world: World, clients: dict[str, TestClient]) -> None:
    world.clock.current = dt.datetime(2027, 4, 2, 9, 0, tzinfo=dt.UTC)
    before = (booking(world.sessions), outbox_state(world.sessions))
    answered = post(clients["samordnare"], f"{PAGE}/flytta", datum="2027-04-01", tid="13:00")
    assert answered.status_code == 400
    assert "Tid: 2027-04-01 kl. 13:00 har redan varit" in answered.text
    assert (booking(world.sessions), outbox_state(world.sessions)) == before


# --- calling off --------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["sammankallande", "samordnare"])
def test_calling_off_cancels_everyone_in_the_record(
    world: World, clients: dict[str, TestClient], who: str
) -> None:
    send_invitations(world.sessions, ROUTINE, OCCURRENCE)
    confirm = clients[who].get(f"{PAGE}/stall-in")
    assert confirm.status_code == 200 and "Ja, ställ in mötet" in confirm.text
    assert booking(world.sessions)[2] is None  # asking is not doing
    done = post(clients[who], f"{PAGE}/stall-in")
    assert done.status_code == 303 and done.headers["location"] == f"{PAGE}?klart=installt"
    _start, sequence, cancelled = booking(world.sessions)
    assert cancelled == NOW and sequence == 1
    pending = meeting_rows(world.sessions, models.Status.PENDING)
    with world.sessions() as session:
        record = session.scalars(
            select(models.InviteRecord.recipient_email).where(
                models.InviteRecord.routine_key == ROUTINE
            )
        ).all()
    assert sorted(m["to"] for m in pending) == sorted(record)
    assert {(m.get("method", "REQUEST"), m["sequence"]) for m in pending} == {("CANCEL", 1)}
    assert audits(world.sessions, "meeting.cancel") == [
        {"routine": ROUTINE, "occurrence": OCCURRENCE, "sequence": 1}
    ]
    page = clients[who].get(PAGE).text
    assert "Inställt" in page and "Flytta mötet" not in page
    # A second call-off changes nothing.
    again = post(clients[who], f"{PAGE}/stall-in")
    assert again.status_code == 409
    assert len(meeting_rows(world.sessions, models.Status.PENDING)) == len(pending)


# --- refusals -----------------------------------------------------------------------------------


def test_only_the_convener_or_a_coordinator_may_move_or_call_off(
    world: World, clients: dict[str, TestClient]
) -> None:
    send_invitations(world.sessions, ROUTINE, OCCURRENCE)
    before = (booking(world.sessions), outbox_state(world.sessions))
    expected = {"rektor": 403, "familj": 403, "mottagning": 404, "ingenroll": 403, "annan": 404}
    for kind, status in expected.items():
        client = clients[kind]
        page = client.get(PAGE).text
        assert "Flytta mötet" not in page and "/stall-in" not in page
        assert client.get(f"{PAGE}/stall-in").status_code == status, kind
        moved = post(client, f"{PAGE}/flytta", datum="2027-04-14", tid="13:00")
        assert moved.status_code == status, kind
        assert post(client, f"{PAGE}/stall-in").status_code == status, kind
    assert (booking(world.sessions), outbox_state(world.sessions)) == before
    assert audits(world.sessions, "meeting.move") == audits(world.sessions, "meeting.cancel") == []


def test_every_change_needs_the_csrf_token(world: World, clients: dict[str, TestClient]) -> None:
    before = (booking(world.sessions), outbox_state(world.sessions))
    client = clients["samordnare"]
    for token in (None, "fel", csrf_of(clients["rektor"].get("/moten").text)):
        form = {"datum": "2027-04-14", "tid": "13:00"} | ({"csrf": token} if token else {})
        assert client.post(f"{PAGE}/flytta", data=form).status_code == 403
        stop = {"csrf": token} if token else {}
        assert client.post(f"{PAGE}/stall-in", data=stop).status_code == 403
    assert (booking(world.sessions), outbox_state(world.sessions)) == before


def test_another_municipalitys_meeting_is_not_found_by_its_address(
    world: World, clients: dict[str, TestClient]
) -> None:
    """The same routine key and year exist in both: each sees only its own booking."""
    book_other_town(world)
    annan = clients["annan"]
    text = annan.get(PAGE).text
    assert "2027-04-14 kl. 10.00" in text and "2027-04-13" not in text
    ours = clients["samordnare"].get(PAGE).text
    assert "2027-04-13 kl. 13.00" in ours and "2027-04-14" not in ours
    with world.sessions() as session:
        count = session.scalar(select(func.count()).select_from(models.Booking))
    assert count == 2


# --- booking a meeting not yet booked ------------------------------------------------------------

OCTOBER = "samverkansmote-host"
OCTOBER_PAGE = f"/moten/rutin/{OCTOBER}/2027"
BOOK = f"{OCTOBER_PAGE}/boka"
# With the clock at 1 March 2027: the October meeting of 2027 and both of 2028 have no booking
# (the April meeting of 2027 is booked by the profile); the steering group's meetings follow a
# rule at a standing time and are never booked.
TO_BOOK = {f"{OCTOBER}/2027", f"{OCTOBER}/2028", f"{ROUTINE}/2028"}
FORM_ACTION = re.compile(r'action="/moten/rutin/([^"/]+/[^"/]+)/boka"')


def listed_to_book(client: TestClient) -> set[str]:
    return set(FORM_ACTION.findall(client.get("/moten").text))


def routine_state(
    sessions: sessionmaker[Session], town: str = "exempel"
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The bookings and the routine messages of `town`, without their ids and clock stamps."""
    with sessions() as session:
        town_id = municipality_id(session, town)
        b, r, n = models.Booking, models.Routine, models.Notification
        bookings = session.execute(
            select(r.key, b.occurrence, b.starts_at, b.ends_at, b.location, b.sequence)
            .join(r, r.id == b.routine_id)
            .where(r.municipality_id == town_id)
            .order_by(r.key, b.occurrence)
        ).all()
        messages = session.execute(
            select(n.idempotency_key, n.recipient_email, n.status, n.due_at, n.cancel_reason)
            .where(n.municipality_id == town_id, n.routine_key.in_([ROUTINE, OCTOBER]))
            .order_by(n.idempotency_key)
        ).all()
    return [tuple(x) for x in bookings], [tuple(x) for x in messages]


def invitations(sessions: sessionmaker[Session], routine: str, occurrence: str) -> list[Any]:
    with sessions() as session:
        n = models.Notification
        return [
            (r.recipient_email, r.due_at, r.context["meeting"]["start"][:16])
            for r in session.scalars(
                select(n)
                .where(n.routine_key == routine, n.occurrence == occurrence)
                .where(n.municipality_id == municipality_id(session, "exempel"))
                .where(n.status == models.Status.PENDING)
            )
            if (r.context.get("meeting") or {}).get("uid")
        ]


def test_the_meetings_to_book_are_listed_to_their_conveners_and_the_coordinator(
    world: World, clients: dict[str, TestClient]
) -> None:
    listed = {kind: listed_to_book(client) for kind, client in clients.items()}
    assert listed["samordnare"] == listed["sammankallande"] == TO_BOOK
    for kind in ("rektor", "familj", "mottagning", "ingenroll"):
        assert listed[kind] == set(), kind
        assert "Att boka" not in clients[kind].get("/moten").text
    # The other municipality's coordinator: its own (it has the April meeting only, with no
    # booking).
    assert listed["annan"] == {f"{ROUTINE}/2027", f"{ROUTINE}/2028"}
    page = clients["samordnare"].get("/moten").text
    assert "Samverkansmöte skola–socialtjänst i oktober, oktober 2027" in page
    assert "mellan 2027-10-01 – 2027-10-29" in page  # its month's working days
    assert '<option value="stadshuset-linnen" selected>' in page  # the routine's place
    assert 'id="tid-samverkansmote-host-2027"' in page and 'value="13:00"' in page


def test_a_meeting_whose_month_has_ended_is_no_longer_to_book(
    world: World, clients: dict[str, TestClient]
) -> None:
    world.clock.current = dt.datetime(2027, 10, 29, 12, 0, tzinfo=dt.UTC)  # its last working day
    assert f"{OCTOBER}/2027" in listed_to_book(clients["samordnare"])
    world.clock.current = dt.datetime(2027, 10, 30, 12, 0, tzinfo=dt.UTC)
    # This and the next occurrence of each: those of 2028 and 2029.
    assert listed_to_book(clients["samordnare"]) == {
        f"{key}/{year}" for key in (OCTOBER, ROUTINE) for year in (2028, 2029)
    }


@pytest.mark.parametrize("who", ["sammankallande", "samordnare"])
def test_booking_plans_the_invitations_as_the_command_does(
    world: World,
    clients: dict[str, TestClient],
    who: str,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = str(world.sessions.kw["bind"].url)
    twin = None
    if url.startswith("sqlite:///"):  # a twin of the database, booked by `samverkan book`
        twin = tmp_path_factory.mktemp("twin") / "samverkan.db"
        shutil.copyfile(url.removeprefix("sqlite:///"), twin)
    assert invitations(world.sessions, OCTOBER, "2027") == []
    booked_now = post(
        clients[who], BOOK, datum="2027-10-12", tid="13:00", plats="stadshuset-linnen"
    )
    assert booked_now.status_code == 303
    assert booked_now.headers["location"] == f"{OCTOBER_PAGE}?klart=bokat"
    planned = invitations(world.sessions, OCTOBER, "2027")
    # To the elevhälsan, every rektor, the social secretaries, the family team and the
    # conveners, three weeks before the meeting (the profile's "kallelse").
    assert len(planned) == 19
    assert {(due.date() if due else None, start) for _to, due, start in planned} == {
        (dt.date(2027, 9, 21), "2027-10-12T13:00")
    }
    assert audits(world.sessions, "meeting.book") == [
        {"routine": OCTOBER, "occurrence": "2027", "sequence": 0}
    ]
    page = clients[who].get(booked_now.headers["location"]).text
    assert "Mötet är bokat" in page and "2027-10-12 kl. 13.00–15.00" in page
    assert f"{OCTOBER}/2027" not in listed_to_book(clients[who])
    if twin is not None:
        import worker.runtime
        from samverkan import cli

        monkeypatch.setattr(worker.runtime, "_settings", None)
        monkeypatch.setattr(worker.runtime, "_runtime", None)
        env = {"SAMVERKAN_DATABASE_URL": f"sqlite:///{twin}", "COLUMNS": "200"}
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        args = [OCTOBER, "2027-10-12", "13:00", "--place", "stadshuset-linnen"]
        args += ["--municipality", "exempel", "--now", NOW.isoformat()]
        root = logging.getLogger()
        handlers, level = root.handlers[:], root.level
        try:  # the command sets up its own logging: pytest's is put back afterwards
            result = CliRunner().invoke(cli.app, ["book", *args], env=env)
        finally:
            root.handlers[:] = handlers
            root.setLevel(level)
        assert result.exit_code == 0, result.stdout
        engine = make_engine(f"sqlite:///{twin}")
        try:
            assert routine_state(make_sessionmaker(engine)) == routine_state(world.sessions)
        finally:
            engine.dispose()


@pytest.mark.parametrize(
    ("datum", "tid", "plats", "field", "message"),
    [
        ("", "13:00", "", "Datum", "Skriv datumet som ÅÅÅÅ-MM-DD"),
        ("12/10 2027", "13:00", "", "Datum", "Skriv datumet som ÅÅÅÅ-MM-DD"),
        ("2027-10-32", "13:00", "", "Datum", "Skriv datumet som ÅÅÅÅ-MM-DD"),
        ("2027-10-12", "", "", "Tid", "Skriv tiden som TT:MM"),
        ("2027-10-12", "24:00", "", "Tid", "Skriv tiden som TT:MM"),
        ("2027-10-12", "13.00", "", "Tid", "Skriv tiden som TT:MM"),
        ("2027-10-12", "13:00Z", "", "Tid", "Skriv tiden som TT:MM"),
        ("2027-10-16", "13:00", "", "Datum", "2027-10-16 är inte en arbetsdag"),  # a Saturday
        ("2027-11-09", "13:00", "", "Datum", "2027-11-09 ligger utanför den månad"),
        ("2028-10-10", "13:00", "", "Datum", "Mötet för 2027 ska hållas under 2027"),
        ("2027-10-12", "13:00", "kafeet", "Plats", "Välj en av platserna i listan"),
    ],
)
def test_bad_input_to_a_booking_names_the_field_and_changes_nothing(
    world: World,
    clients: dict[str, TestClient],
    datum: str,
    tid: str,
    plats: str,
    field: str,
    message: str,
) -> None:
    before = routine_state(world.sessions)
    answered = post(clients["sammankallande"], BOOK, datum=datum, tid=tid, plats=plats)
    assert answered.status_code == 400
    assert f"{field}: {message}" in answered.text
    assert answered.text.count('aria-invalid="true"') == 1  # on the field, of this form only
    assert 'id="fel-samverkansmote-host-2027"' in answered.text
    if plats:
        assert plats not in answered.text  # what was typed is not echoed as a choice
    assert routine_state(world.sessions) == before
    assert audits(world.sessions, "meeting.book") == []


def test_booking_a_time_already_passed_is_refused(
    world: World, clients: dict[str, TestClient]
) -> None:
    world.clock.current = dt.datetime(2027, 10, 5, 12, 0, tzinfo=dt.UTC)
    before = routine_state(world.sessions)
    answered = post(clients["samordnare"], BOOK, datum="2027-10-04", tid="13:00")
    assert answered.status_code == 400
    assert "Tid: 2027-10-04 kl. 13:00 har redan varit" in answered.text
    assert routine_state(world.sessions) == before


def test_only_a_convener_or_a_coordinator_may_book(
    world: World, clients: dict[str, TestClient]
) -> None:
    before = routine_state(world.sessions)
    for kind in ("rektor", "familj", "mottagning", "ingenroll"):
        answered = post(clients[kind], BOOK, datum="2027-10-12", tid="13:00")
        assert answered.status_code == 403, kind
    assert routine_state(world.sessions) == before
    assert audits(world.sessions, "meeting.book") == []


@pytest.mark.parametrize(
    ("path", "status"),
    [
        (f"/moten/rutin/{ROUTINE}/2027/boka", 409),  # booked already: moved, not booked
        (f"/moten/rutin/{OCTOBER}/2029/boka", 404),  # not this or the next occurrence
        (f"/moten/rutin/{OCTOBER}/2026/boka", 404),  # its month has passed
        ("/moten/rutin/styrgruppsmote/2027/boka", 404),  # held by its rule, never booked
        ("/moten/rutin/utvardering/2027/boka", 404),  # a deadline, not a meeting
        ("/moten/rutin/finns-inte/2027/boka", 404),
    ],
)
def test_only_a_meeting_to_book_can_be_booked(
    world: World, clients: dict[str, TestClient], path: str, status: int
) -> None:
    before = routine_state(world.sessions)
    assert post(clients["samordnare"], path, datum="2027-10-12", tid="13:00").status_code == status
    assert routine_state(world.sessions) == before
    assert audits(world.sessions, "meeting.book") == []


def test_a_meeting_called_off_can_be_booked_again(
    world: World, clients: dict[str, TestClient]
) -> None:
    assert post(clients["samordnare"], f"{PAGE}/stall-in").status_code == 303
    assert f"{ROUTINE}/2027" in listed_to_book(clients["sammankallande"])
    again = post(clients["sammankallande"], f"{PAGE}/boka", datum="2027-04-20", tid="09:00")
    assert again.status_code == 303
    start, sequence, cancelled = booking(world.sessions)
    assert start == dt.datetime(2027, 4, 20, 7, 0, tzinfo=dt.UTC) and cancelled is None
    assert sequence == 2  # a new invitation after the CANCEL of sequence 1
    assert audits(world.sessions, "meeting.book") == [
        {"routine": ROUTINE, "occurrence": "2027", "sequence": 2}
    ]


def test_booking_needs_the_csrf_token(world: World, clients: dict[str, TestClient]) -> None:
    before = routine_state(world.sessions)
    client = clients["samordnare"]
    for token in (None, "fel", csrf_of(clients["rektor"].get("/moten").text)):
        form = {"datum": "2027-10-12", "tid": "13:00"} | ({"csrf": token} if token else {})
        assert client.post(BOOK, data=form).status_code == 403
    assert routine_state(world.sessions) == before
    assert audits(world.sessions, "meeting.book") == []


def test_another_municipality_books_only_its_own_meeting(
    world: World, clients: dict[str, TestClient]
) -> None:
    """The same address in both: the other coordinator finds no October meeting (Lilla
    kommunen has none), and booking the April meeting books Lilla kommunen's."""
    before = routine_state(world.sessions)
    annan = clients["annan"]
    assert post(annan, BOOK, datum="2027-10-12", tid="10:00").status_code == 404
    booked_there = post(annan, f"{PAGE}/boka", datum="2027-04-14", tid="10:00")
    assert booked_there.status_code == 303
    assert routine_state(world.sessions) == before
    assert listed_to_book(clients["samordnare"]) == TO_BOOK
    assert listed_to_book(annan) == {f"{ROUTINE}/2028"}
    bookings, _messages = routine_state(world.sessions, "liten")
    assert [(k, o, start) for k, o, start, *_rest in bookings] == [
        (ROUTINE, "2027", dt.datetime(2027, 4, 14, 8, 0, tzinfo=dt.UTC))
    ]
