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
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

import models
from models.db import transaction
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
