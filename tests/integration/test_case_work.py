"""Case work against a real database (SQLite and PostgreSQL), delivered through the real
outbox path (claim → deliver_one → render → compose) into an in-memory mailer."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import icalendar
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

import models
from core.errors import ConfidentialityError, NotFoundError, SamverkanError
from core.settings import ROOT
from models import Status
from models.db import transaction
from scheduler.calendar import STOCKHOLM
from scheduler.cases import CaseRuleError
from scheduler.cases.outbox import CaseRow, insert_case_rows
from scheduler.cases.subjects import Subject
from scheduler.outbox import claim_due
from scheduler.planner import replan
from service import cases
from tests.profiles import load, snapshot
from worker.delivery import Delivery, DeliveryOutcome, RetryPolicy, deliver_one
from worker.mailers import MemoryMailer
from worker.render import Renderer

pytestmark = pytest.mark.integration

CASES = Path(__file__).parent.parent / "data" / "cases.yaml"
CHILD = "Lisa Exempelsson"
PIN = "150312-1234"


def at(text: str) -> dt.datetime:
    """A local Stockholm moment, as aware UTC."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=STOCKHOLM).astimezone(dt.UTC)


LOADED = at("2027-03-01T07:00")


@pytest.fixture
def sessions(session_factory: sessionmaker[Session]) -> sessionmaker[Session]:
    load(session_factory, CASES, LOADED)
    return session_factory


@pytest.fixture
def mailer() -> MemoryMailer:
    return MemoryMailer()


@pytest.fixture
def delivery(sessions: sessionmaker[Session], mailer: MemoryMailer) -> Delivery:
    return Delivery(sessions, mailer, Renderer(ROOT / "templates"), RetryPolicy())


def run(
    sessions: sessionmaker[Session],
    work: Callable[..., Any],
    *args: Any,
    by: str | None,
    now: dt.datetime,
) -> Any:
    """Call a service function at a desk for `by` at `now`, in its own transaction, as the CLI
    does (`by` None: the console)."""
    with transaction(sessions) as session:
        municipality_id = session.scalars(select(models.Municipality.id)).one()
        return work(cases.Desk.open(session, municipality_id, by, now), *args)


def rows(sessions: sessionmaker[Session], reference: str) -> list[models.Notification]:
    with sessions() as session:
        found = list(
            session.scalars(
                select(models.Notification)
                .where(models.Notification.occurrence == reference)
                .order_by(models.Notification.due_at, models.Notification.id)
            )
        )
        session.expunge_all()
        return found


def by_purpose(sessions: sessionmaker[Session], reference: str) -> dict[str, list[str]]:
    """purpose → recipients' addresses of the rows still to be sent or sent."""
    found: dict[str, list[str]] = {}
    for row in rows(sessions, reference):
        if row.status != Status.CANCELLED:
            found.setdefault(row.purpose, []).append(row.recipient_email)
    return {k: sorted(v) for k, v in found.items()}


def deliver_until(delivery: Delivery, moment: dt.datetime) -> list[DeliveryOutcome]:
    with transaction(delivery.sessions) as session:
        ids = claim_due(session, moment, 10_000)
    return [deliver_one(delivery, i, moment) for i in ids]


def sent_to(mailer: MemoryMailer, address: str) -> list[EmailMessage]:
    return [m for m in mailer.messages if m["To"].addresses[0].addr_spec == address]


def audit(sessions: sessionmaker[Session], reference: str) -> list[tuple[str, str, dict[str, Any]]]:
    with sessions() as session:
        return [
            (a.actor, a.action, a.detail)
            for a in session.scalars(
                select(models.CaseAudit)
                .where(models.CaseAudit.reference == reference)
                .order_by(models.CaseAudit.id)
            )
        ]


def report(**changes: Any) -> cases.ReportRequest:
    values: dict[str, Any] = {"unit": "ekskolan", "reporter": "rut", "district": "norr"}
    values.update(changes)
    return cases.ReportRequest(**values)


def open_case(sessions: sessionmaker[Session], now: dt.datetime, **changes: Any) -> str:
    values: dict[str, Any] = {
        "owner": "rut",
        "by": "rut",
        "school": "ekskolan",
        "family_worker": "fia",
        "guardians": ("vh1@hem.se", "vh2@hem.se"),
    }
    values.update(changes)
    by = values.pop("by")
    outcome = run(sessions, cases.open_case, cases.CaseRequest(**values), by=by, now=now)
    return str(outcome.reference)


def consent(sessions: sessionmaker[Session], reference: str, now: dt.datetime) -> None:
    request = cases.ConsentRequest("vårdnadshavarna", "samverkansmöte", None, False)
    run(sessions, cases.record_consent, reference, request, by="rut", now=now)


def book(
    sessions: sessionmaker[Session], reference: str, day: str, now: dt.datetime, **kw: Any
) -> cases.Outcome:
    by = kw.pop("by", "rut")
    request = cases.BookingRequest(day, kw.pop("time", "13:00"), **kw)
    outcome: cases.Outcome = run(sessions, cases.book_meeting, reference, request, by=by, now=now)
    return outcome


# --- reports ------------------------------------------------------------------------------------


def test_report_tells_reporter_and_intake_then_names_the_receiver_and_reminds_after_two_weeks(
    sessions: sessionmaker[Session], delivery: Delivery, mailer: MemoryMailer
) -> None:
    registered = at("2027-03-01T10:00")
    outcome = run(
        sessions,
        cases.register_report,
        report(acute=True, wants_feedback=True, guardians=("vh@hem.se",)),
        by="rut",
        now=registered,
    )
    ref = outcome.reference
    assert ref == "2027-0001"
    assert "ring Mottagningsenheten Norr på 0123-11 00 10" in str(outcome)
    assert by_purpose(sessions, ref) == {
        "registrerad": ["rut@fallby.se"],
        "mottagning": ["mona@fallby.se"],
        "vardnadshavare": ["vh@hem.se"],
        "aterkoppling": ["rut@fallby.se"],
    }
    feedback = next(r for r in rows(sessions, ref) if r.purpose == "aterkoppling")
    # 1 March + two weeks = Monday 15 March, at the municipality's send time.
    assert feedback.due_at == at("2027-03-15T08:00")

    deliver_until(delivery, registered)
    (urgent,) = sent_to(mailer, "mona@fallby.se")
    assert str(urgent["Subject"]).startswith("Brådskande: ny anmälan 2027-0001")
    (told,) = sent_to(mailer, "rut@fallby.se")
    assert "ring Mottagningsenheten Norr först" in str(told["Subject"])

    with pytest.raises(CaseRuleError, match="only the intake unit"):
        run(sessions, cases.receive_report, ref, by="rut", now=at("2027-03-01T11:00"))
    run(sessions, cases.receive_report, ref, by="mona", now=at("2027-03-01T11:00"))
    deliver_until(delivery, at("2027-03-15T08:00"))
    later = {str(m["Subject"]).split(" ")[0]: m for m in sent_to(mailer, "rut@fallby.se")[1:]}
    received, reminder = later["Anmälan"], later["Återkoppling"]
    assert str(received["Subject"]) == "Anmälan 2027-0001 är mottagen av Mona Mottagning"
    assert "kontakta Mona Mottagning på Mottagningsenheten Norr" in _text(reminder)
    assert [a[1] for a in audit(sessions, ref)] == ["registered", "received"]


def test_references_run_per_municipality_and_year(sessions: sessionmaker[Session]) -> None:
    first = run(sessions, cases.register_report, report(), by="rut", now=at("2027-12-31T10:00"))
    second = open_case(sessions, at("2027-12-31T11:00"))
    third = run(sessions, cases.register_report, report(), by="rut", now=at("2028-01-03T10:00"))
    assert (first.reference, second, third.reference) == ("2027-0001", "2027-0002", "2028-0001")


def test_abuse_report_with_a_guardian_is_refused_logged_and_changes_nothing(
    sessions: sessionmaker[Session], engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    before = snapshot(engine)
    with (
        caplog.at_level(logging.WARNING, logger="samverkan.cases"),
        pytest.raises(ConfidentialityError, match="suspected violence or sexual abuse"),
    ):
        run(
            sessions,
            cases.register_report,
            report(suspected_abuse=True, guardians=("vh@hem.se",)),
            by="rut",
            now=at("2027-03-01T10:00"),
        )
    assert snapshot(engine) == before
    (record,) = caplog.records
    assert record.action == "case.confidentiality_refused"  # type: ignore[attr-defined]
    assert "vh@hem.se" not in caplog.text


def test_abuse_report_plans_nothing_for_guardians_and_its_case_cannot_invite_them(
    sessions: sessionmaker[Session], engine: Engine
) -> None:
    outcome = run(
        sessions,
        cases.register_report,
        report(suspected_abuse=True),
        by="rut",
        now=at("2027-03-01T10:00"),
    )
    assert "BRÅDSKANDE" in str(outcome)
    assert set(by_purpose(sessions, outcome.reference)) == {"registrerad", "mottagning"}
    before = snapshot(engine)
    with pytest.raises(ConfidentialityError):
        open_case(sessions, at("2027-03-02T09:00"), report=outcome.reference)
    with pytest.raises(ConfidentialityError):
        open_case(sessions, at("2027-03-02T09:00"), report=outcome.reference, guardians=(),
                  pupil="elev@hem.se")  # fmt: skip
    assert snapshot(engine) == before
    # Without external participants the case opens; nothing ever reaches an address outside.
    ref = open_case(sessions, at("2027-03-02T09:00"), report=outcome.reference, guardians=())
    consent(sessions, ref, at("2027-03-02T10:00"))
    book(sessions, ref, "2027-03-10", at("2027-03-02T11:00"))
    assert all(r.person_id is not None for r in rows(sessions, ref))


def test_the_one_insert_refuses_an_external_row_on_an_abuse_subject(
    sessions: sessionmaker[Session],
) -> None:
    outcome = run(
        sessions,
        cases.register_report,
        report(suspected_abuse=True),
        by="rut",
        now=at("2027-03-01T10:00"),
    )
    with transaction(sessions) as session:
        municipality_id = session.scalars(select(models.Municipality.id)).one()
        subject = Subject(municipality_id, "report", outcome.reference, suspected_abuse=True)
        row = CaseRow(
            key="fall/report/x/vardnadshavare/vh", purpose="vardnadshavare",
            template="anmalan-vardnadshavare", context={}, person_id=None, roles=(),
            email="vh@hem.se", name="Vårdnadshavare", due_at=LOADED, late="send",
            message_id="<x@fallby.se>", external="guardian",
        )  # fmt: skip
        with pytest.raises(ConfidentialityError):
            insert_case_rows(session, subject, LOADED, [row])


def test_at_send_time_a_guardian_row_on_an_abuse_report_is_cancelled_not_sent(
    sessions: sessionmaker[Session], delivery: Delivery, mailer: MemoryMailer
) -> None:
    outcome = run(
        sessions,
        cases.register_report,
        report(suspected_abuse=True),
        by="rut",
        now=at("2027-03-01T10:00"),
    )
    # A row that got in some other way (a bug, a hand-edited database): defence in depth.
    with transaction(sessions) as session:
        template = session.scalars(
            select(models.Notification).where(models.Notification.purpose == "registrerad")
        ).one()
        session.add(
            models.Notification(
                idempotency_key="fall/report/smuggled/vardnadshavare/vh",
                municipality_id=template.municipality_id,
                routine_key="report",
                occurrence=outcome.reference,
                purpose="vardnadshavare",
                template="anmalan-vardnadshavare",
                context=template.context,
                person_id=None,
                roles=[],
                recipient_email="vh@hem.se",
                recipient_name="Vårdnadshavare",
                due_at=template.due_at,
                status=Status.PENDING,
                attempts=0,
                message_id="<smuggled@fallby.se>",
                created_at=LOADED,
                updated_at=LOADED,
            )
        )
    outcomes = deliver_until(delivery, at("2027-03-01T10:00"))
    assert sorted(outcomes) == sorted(
        [DeliveryOutcome.SENT, DeliveryOutcome.SENT, DeliveryOutcome.CANCELLED]
    )
    assert sent_to(mailer, "vh@hem.se") == []
    smuggled = next(r for r in rows(sessions, outcome.reference) if r.person_id is None)
    assert smuggled.status == Status.CANCELLED
    assert smuggled.cancel_reason is not None and smuggled.cancel_reason.startswith("refused")


# --- cases --------------------------------------------------------------------------------------


def test_case_deadlines_reminders_and_overdue_notice_to_the_owners_manager(
    sessions: sessionmaker[Session],
) -> None:
    ref = open_case(sessions, at("2027-03-02T09:00"))  # known Tuesday 2 March
    planned = {r.purpose: r for r in rows(sessions, ref)}
    # Deadline: 2 March + two weeks = Tuesday 16 March. Reminders a week and two working
    # days before; the overdue notice the working day after, to the owner and their manager.
    assert planned["frist1-1v"].due_at == at("2027-03-09T08:00")
    assert planned["frist1-2ad"].due_at == at("2027-03-12T08:00")
    assert planned["frist1-forsenad"].due_at == at("2027-03-17T08:00")
    assert planned["frist1-forsenad-chef"].recipient_email == "vera@fallby.se"
    assert planned["frist1-forsenad-chef"].roles == ["verksamhetschef"]
    assert planned["oppnat"].recipient_email == "rut@fallby.se"


def test_booking_needs_consent_and_cancels_the_reminders_that_no_longer_apply(
    sessions: sessionmaker[Session], engine: Engine, delivery: Delivery, mailer: MemoryMailer
) -> None:
    ref = open_case(sessions, at("2027-03-02T09:00"), pupil="elev@hem.se")
    before = snapshot(engine)
    with pytest.raises(CaseRuleError, match="consent must be recorded"):
        book(sessions, ref, "2027-03-10", at("2027-03-02T10:00"))
    assert snapshot(engine) == before
    consent(sessions, ref, at("2027-03-03T09:00"))
    book(sessions, ref, "2027-03-10", at("2027-03-03T10:00"), place="ekskolan-rum-12")
    planned = by_purpose(sessions, ref)
    assert "frist1-1v" not in planned and "frist1-forsenad-chef" not in planned
    # Always called: guardians, pupil, school (its rektor: here the owner), family worker.
    assert planned["kallelse-m1"] == [
        "elev@hem.se", "fia@fallby.se", "rut@fallby.se", "vh1@hem.se", "vh2@hem.se",
    ]  # fmt: skip
    # The second meeting: within two weeks of the first (10 March → Wednesday 24 March).
    assert "frist2-forsenad" in planned
    cancelled = [a for a in audit(sessions, ref) if a[1] == "reminders_cancelled"]
    assert cancelled[0][2]["purposes"] == sorted(
        ["frist1-1v", "frist1-2ad", "frist1-forsenad", "frist1-forsenad-chef"]
    )

    deliver_until(delivery, at("2027-03-03T10:00"))
    invites = [m for m in mailer.messages if str(m["Subject"]).startswith("Kallelse")]
    assert len(invites) == 5
    for message in invites:
        recipient = message["To"].addresses[0].addr_spec
        event = _event(message)
        # The convener (organizer) gets a copy without herself as attendee (see below).
        attendees = [f"mailto:{recipient}"] if recipient != "rut@fallby.se" else []
        assert [str(a) for a in _list(event.get("ATTENDEE", []))] == attendees
        assert str(event["ORGANIZER"]) == "mailto:rut@fallby.se"
        raw = bytes(message)
        others = {"vh1@hem.se", "vh2@hem.se", "elev@hem.se"} - {recipient}
        assert not any(o.encode() in raw for o in others), f"{recipient} sees another address"
    assert "Ekskolan, rum 12" in str(_event(invites[0])["LOCATION"])


def test_a_meeting_booked_after_the_deadline_is_still_reported_overdue(
    sessions: sessionmaker[Session],
) -> None:
    ref = open_case(sessions, at("2027-03-02T09:00"))
    consent(sessions, ref, at("2027-03-02T10:00"))
    outcome = book(sessions, ref, "2027-03-18", at("2027-03-02T11:00"))
    assert "fristen för möte 1 går ut 2027-03-16" in str(outcome)
    planned = by_purpose(sessions, ref)
    assert "frist1-1v" not in planned
    assert planned["frist1-forsenad-chef"] == ["vera@fallby.se"]


def test_withdrawn_consent_cancels_everything_pending_and_calls_the_meeting_off(
    sessions: sessionmaker[Session], delivery: Delivery, mailer: MemoryMailer
) -> None:
    ref = open_case(sessions, at("2027-03-02T09:00"))
    consent(sessions, ref, at("2027-03-02T10:00"))
    book(sessions, ref, "2027-03-10", at("2027-03-02T11:00"))
    deliver_until(delivery, at("2027-03-02T11:00"))
    run(sessions, cases.withdraw_consent, ref, by="rut", now=at("2027-03-04T09:00"))
    pending = [r.purpose for r in rows(sessions, ref) if r.status == Status.PENDING]
    assert sorted(pending) == sorted(["samtycke-aterkallat-r1"] + ["installt-m1-v1"] * 4)
    deliver_until(delivery, at("2027-03-04T09:00"))
    cancels = [m for m in mailer.messages if str(m["Subject"]).startswith("Inställt")]
    assert len(cancels) == 4
    event = _event(cancels[0])
    assert str(event["STATUS"]) == "CANCELLED" and int(event["SEQUENCE"]) == 1
    with pytest.raises(CaseRuleError, match="consent must be recorded"):
        book(sessions, ref, "2027-03-11", at("2027-03-04T10:00"))
    # Consent again: a new round of reminders, under new keys (the cancelled are not revived).
    consent(sessions, ref, at("2027-03-05T09:00"))
    assert "frist1-2ad-r1" in by_purpose(sessions, ref)


def test_hold_minutes_follow_up_and_close_by_the_owner_only(
    sessions: sessionmaker[Session], delivery: Delivery, mailer: MemoryMailer
) -> None:
    ref = open_case(sessions, at("2027-03-02T09:00"))
    consent(sessions, ref, at("2027-03-02T10:00"))
    book(sessions, ref, "2027-03-10", at("2027-03-02T11:00"))
    with pytest.raises(CaseRuleError, match="future"):
        run(sessions, cases.hold_meeting, ref, None, None, by="rut", now=at("2027-03-09T09:00"))
    run(sessions, cases.hold_meeting, ref, None, None, by="rut", now=at("2027-03-10T16:00"))
    run(
        sessions,
        cases.record_minutes,
        ref,
        [dt.date(2027, 4, 20)],
        by="rut",
        now=at("2027-03-10T16:05"),
    )
    planned = by_purpose(sessions, ref)
    assert planned["minnesanteckningar-m1"] == ["rut@fallby.se"]
    assert planned["uppfoljning-2027-04-20"] == ["rut@fallby.se"]
    deliver_until(delivery, at("2027-03-10T16:05"))
    (minutes,) = [m for m in mailer.messages if "minnesanteckningar" in str(m["Subject"])]
    body = _text(minutes)
    assert "Sekreterare utses" in body and "Mål | Insats | Ansvar | Tid" in body
    assert "senast onsdag 24 mars 2027" in body  # the second meeting's deadline

    with pytest.raises(CaseRuleError, match="only the case owner"):
        run(sessions, cases.close_case, ref, by="fia", now=at("2027-03-11T09:00"))
    run(sessions, cases.close_case, ref, by="rut", now=at("2027-03-11T09:00"))
    pending = {r.purpose for r in rows(sessions, ref) if r.status == Status.PENDING}
    assert pending == {"avslutat"}
    actions = [(a[0], a[1]) for a in audit(sessions, ref)]
    assert actions[-2:] == [("rut", "closed"), ("rut", "reminders_cancelled")]
    with transaction(sessions) as session:
        case = session.scalars(select(models.Case)).one()
        assert case.closed_by_id is not None and case.closed_at == at("2027-03-11T09:00")


def test_an_administrator_may_close_a_case(sessions: sessionmaker[Session]) -> None:
    ref = open_case(sessions, at("2027-03-02T09:00"))
    run(sessions, cases.close_case, ref, by="ada", now=at("2027-03-03T09:00"))
    assert audit(sessions, ref)[-2][:2] == ("ada", "closed")


def test_sip_items_remind_the_responsible_role_and_the_follow_up_everyone(
    sessions: sessionmaker[Session],
) -> None:
    ref = open_case(sessions, at("2027-03-02T09:00"), owner="sam", by="sam", sip=True)
    planned = {r.purpose: r for r in rows(sessions, ref)}
    # A SIP's first meeting here is within three weeks (the profile says so): 23 March.
    assert planned["frist1-forsenad"].due_at == at("2027-03-24T08:00")
    assert planned["frist1-forsenad-chef"].recipient_email == "eje@fallby.se"
    request = cases.ConsentRequest("vårdnadshavarna", "SIP", None, False)
    run(sessions, cases.record_consent, ref, request, by="sam", now=at("2027-03-02T10:00"))
    item = cases.SipItemRequest("mål", "insats", "familjebehandlare@ifo", dt.date(2027, 5, 3))
    run(sessions, cases.add_sip_item, ref, item, by="sam", now=at("2027-03-03T09:00"))
    run(sessions, cases.mark_sip, ref, dt.date(2027, 6, 1), by="sam", now=at("2027-03-03T09:00"))
    planned = {r.purpose: r for r in rows(sessions, ref)}
    assert planned["sip-1"].recipient_email == "fia@fallby.se"
    assert planned["sip-1"].due_at == at("2027-04-26T08:00")  # a week before 3 May
    follow_up = by_purpose(sessions, ref)["sip-uppfoljning-2027-06-01"]
    assert follow_up == ["fia@fallby.se", "sam@fallby.se"]
    bad = cases.SipItemRequest("mål", "insats", "ingen-roll", dt.date(2027, 5, 3))
    with pytest.raises(SamverkanError, match="unknown role"):
        run(sessions, cases.add_sip_item, ref, bad, by="sam", now=at("2027-03-03T09:00"))


def test_the_nightly_replan_leaves_case_rows_alone(sessions: sessionmaker[Session]) -> None:
    ref = open_case(sessions, at("2027-03-02T09:00"))
    before = [(r.id, r.status) for r in rows(sessions, ref)]
    with transaction(sessions) as session:
        municipality_id = session.scalars(select(models.Municipality.id)).one()
        replan(session, municipality_id, at("2027-03-03T02:30"), 400)
    assert [(r.id, r.status) for r in rows(sessions, ref)] == before


def test_a_typed_location_is_refused_and_changes_nothing(
    sessions: sessionmaker[Session], engine: Engine
) -> None:
    # A meeting's place is chosen by key from the profile: typed text, with or without an
    # identity number, is refused, and the error does not repeat it.
    ref = open_case(sessions, at("2027-03-02T09:00"))
    consent(sessions, ref, at("2027-03-02T10:00"))
    before = snapshot(engine)
    for typed in (f"Rum 3, {PIN}", "Rum 201503121234", "Rum 150312+1234", "Ekskolan, rum 12"):
        with pytest.raises(cases.CaseInputError, match="--place") as refused:
            book(sessions, ref, "2027-03-10", at("2027-03-02T11:00"), place=typed)
        assert "Rum" not in str(refused.value) and "Ekskolan" not in str(refused.value)
    with pytest.raises(ConfidentialityError):
        open_case(sessions, at("2027-03-02T09:00"), guardians=(f"{PIN}@hem.se",))
    assert snapshot(engine) == before


def test_free_text_stays_with_staff_never_in_messages_or_the_audit(
    sessions: sessionmaker[Session], delivery: Delivery, mailer: MemoryMailer, engine: Engine
) -> None:
    secret = f"{CHILD} {PIN}"
    ref = open_case(sessions, at("2027-03-02T09:00"), sip=True)
    run(sessions, cases.add_note, ref, secret, by="rut", now=at("2027-03-02T09:30"))
    request = cases.ConsentRequest(secret, secret, None, False)
    run(sessions, cases.record_consent, ref, request, by="rut", now=at("2027-03-02T10:00"))
    item = cases.SipItemRequest(secret, secret, "familjebehandlare", dt.date(2027, 5, 3))
    run(sessions, cases.add_sip_item, ref, item, by="rut", now=at("2027-03-02T10:30"))
    book(sessions, ref, "2027-03-10", at("2027-03-02T11:00"))
    deliver_until(delivery, at("2027-05-31T00:00"))
    assert len(mailer.messages) > 5
    for message in mailer.messages:
        raw = bytes(message).decode("ascii", "replace") + str(message["Subject"]) + _text(message)
        assert CHILD not in raw and "150312" not in raw
    with transaction(sessions) as session:
        notes = run(sessions, cases.show, ref, True, by=None, now=at("2027-05-31T00:00"))["notes"]
        assert notes[0]["text"] == secret  # kept for signed-in staff
        for row in session.scalars(select(models.Notification)):
            assert CHILD not in json.dumps(row.context, ensure_ascii=False)
        for entry in session.scalars(select(models.CaseAudit)):
            assert CHILD not in json.dumps(entry.detail, ensure_ascii=False)


def test_unknown_references_and_people_are_clear_errors(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(NotFoundError, match="no case with that reference") as unknown:
        run(sessions, cases.withdraw_consent, "2027-9999", by="rut", now=at("2027-03-02T09:00"))
    assert "9999" not in str(unknown.value)  # what was typed is never repeated
    with pytest.raises(SamverkanError, match="--owner: no active person with that key") as nobody:
        open_case(sessions, at("2027-03-02T09:00"), owner="nobody")
    assert "nobody" not in str(nobody.value)
    with pytest.raises(CaseRuleError, match="must hold one of the roles"):
        open_case(sessions, at("2027-03-02T09:00"), owner="mona", by="mona")


# --- helpers ------------------------------------------------------------------------------------


def _text(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())  # type: ignore[attr-defined]


def _event(message: EmailMessage) -> Any:
    (part,) = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
    calendar = icalendar.Calendar.from_ical(part.get_content())  # type: ignore[attr-defined]
    (event,) = calendar.walk("VEVENT")
    return event


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_every_case_and_report_template_renders_from_a_planned_context(
    sessions: sessionmaker[Session], delivery: Delivery
) -> None:
    outcome = run(
        sessions,
        cases.register_report,
        report(wants_feedback=True, guardians=("vh@hem.se",)),
        by="rut",
        now=at("2027-03-01T10:00"),
    )
    run(sessions, cases.receive_report, outcome.reference, by="mona", now=at("2027-03-01T11:00"))
    ref = open_case(sessions, at("2027-03-02T09:00"), sip=True)
    consent(sessions, ref, at("2027-03-02T10:00"))
    book(sessions, ref, "2027-03-10", at("2027-03-02T11:00"))
    outcomes = deliver_until(delivery, at("2027-03-02T11:00"))
    run(sessions, cases.withdraw_consent, ref, by="rut", now=at("2027-03-03T09:00"))
    outcomes += deliver_until(delivery, at("2027-03-03T09:00"))
    consent(sessions, ref, at("2027-03-04T09:00"))
    book(sessions, ref, "2027-03-24", at("2027-03-04T10:00"))  # late: overdue notices go out
    outcomes += deliver_until(delivery, at("2027-03-24T12:00"))
    run(sessions, cases.hold_meeting, ref, None, None, by="rut", now=at("2027-03-24T16:00"))
    run(
        sessions,
        cases.record_minutes,
        ref,
        [dt.date(2027, 4, 20)],
        by="rut",
        now=at("2027-03-24T16:05"),
    )
    item = cases.SipItemRequest("mål", "insats", "familjebehandlare", dt.date(2027, 5, 3))
    run(sessions, cases.add_sip_item, ref, item, by="rut", now=at("2027-03-24T16:10"))
    run(sessions, cases.mark_sip, ref, dt.date(2027, 5, 20), by="rut", now=at("2027-03-24T16:15"))
    outcomes += deliver_until(delivery, at("2027-05-19T12:00"))
    run(sessions, cases.close_case, ref, by="rut", now=at("2027-05-19T12:00"))
    outcomes += deliver_until(delivery, at("2027-05-19T12:00"))
    assert set(outcomes) == {DeliveryOutcome.SENT}
    with sessions() as session:
        used = set(
            session.scalars(
                select(models.Notification.template).where(
                    models.Notification.status == Status.SENT
                )
            )
        )
    templates = {p.stem for p in (ROOT / "templates" / "email").glob("a*.subject")}
    # A participant handing over is not part of this run: tests/integration/test_case_handover.py
    # sends and reads that template.
    assert used == templates - {"arende-avbokad"}


def test_a_case_meeting_at_a_local_time_that_does_not_exist_is_refused(
    sessions: sessionmaker[Session], engine: Engine
) -> None:
    """The local-time rule of every booking: 02:30 on the spring change is not 03:30."""
    ref = open_case(sessions, at("2027-03-02T09:00"))
    consent(sessions, ref, at("2027-03-02T10:00"))
    before = snapshot(engine)
    with pytest.raises(cases.CaseInputError, match="does not exist in Stockholm time"):
        book(sessions, ref, "2027-03-28", at("2027-03-02T11:00"), time="02:30")
    assert snapshot(engine) == before


def test_the_case_invite_names_the_case_and_the_convener_gets_her_own_copy(
    sessions: sessionmaker[Session], delivery: Delivery, mailer: MemoryMailer
) -> None:
    ref = open_case(sessions, at("2027-03-02T09:00"))
    consent(sessions, ref, at("2027-03-03T09:00"))
    book(sessions, ref, "2027-03-10", at("2027-03-03T10:00"))
    deliver_until(delivery, at("2027-03-03T10:00"))
    invites = [m for m in mailer.messages if str(m["Subject"]).startswith("Kallelse")]
    assert len(invites) == 4
    for message in invites:
        recipient = message["To"].addresses[0].addr_spec
        (part,) = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
        calendar = icalendar.Calendar.from_ical(part.get_content())  # type: ignore[attr-defined]
        (event,) = calendar.walk("VEVENT")
        assert ref in str(event["DESCRIPTION"]), "the description names the case reference"
        if recipient == "rut@fallby.se":  # the owner convenes: organizer, not attendee
            assert str(calendar["METHOD"]) == "PUBLISH" == part.get_param("method")
            assert "ATTENDEE" not in event
        else:
            assert str(calendar["METHOD"]) == "REQUEST" == part.get_param("method")
            assert [str(a) for a in _list(event["ATTENDEE"])] == [f"mailto:{recipient}"]
