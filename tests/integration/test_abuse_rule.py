"""The abuse rule is about the recipient, whatever the route (scheduler/confidential.py).

When a report concerns suspected violence or sexual abuse, no message about it or about a case
that follows it may reach a guardian, the pupil, or any address outside the municipality's staff
domains. Each test below takes one route a recipient can arrive by: a case participant, a
staff option, a SIP responsibility, a manager escalation, the new holder of a role at send time;
and a report flagged after registration. Every test ends with the same check of the class:
whatever was planned, and whatever the worker sent, reached staff only.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

import models
from core.errors import ConfidentialityError
from models import Status
from models.db import transaction
from scheduler.cases import CaseRuleError
from scheduler.confidential import StaffRule
from service import cases
from tests.integration.test_case_work import (
    CASES,
    LOADED,
    at,
    audit,
    consent,
    deliver_until,
    open_case,
    report,
    rows,
    run,
)
from tests.profiles import load, snapshot
from worker.delivery import Delivery
from worker.mailers import MemoryMailer

pytestmark = pytest.mark.integration

# Outside the staff: a guardian entered as a person, a consultant with an address of another
# domain, and a school nurse whose address is on a pupils' subdomain of the municipality's.
OUTSIDERS = {"greta@hem.se", "konrad@konsult.se", "nils@elev.fallby.se"}
FAMILY = """roles:
  - key: vardnadshavare
    name: Vårdnadshavare
people:
  - key: greta
    name: Greta Vårdnadshavare
    email: greta@hem.se
    roles: [{role: vardnadshavare}]
  - key: konrad
    name: Konrad Konsult
    email: konrad@konsult.se
    roles: [{role: verksamhetschef, unit: forvaltningen}]
  - key: nils
    name: Nils Skolsköterska
    email: nils@elev.fallby.se
    roles: [{role: familjebehandlare, unit: ifo}]
"""


@pytest.fixture
def sessions(session_factory: sessionmaker[Session], tmp_path: Path) -> sessionmaker[Session]:
    text = CASES.read_text(encoding="utf-8").replace("people:\n", FAMILY, 1)
    # Vera leaves: the only verksamhetschef (the rektor's manager) is now the consultant.
    text = text.replace("roles: [{role: verksamhetschef, unit: forvaltningen}]\n  - key: ada",
                        "roles: [{role: samordnare}]\n  - key: ada")  # fmt: skip
    profile = tmp_path / "cases.yaml"
    profile.write_text(text, encoding="utf-8")
    load(session_factory, profile, LOADED)
    return session_factory


@pytest.fixture
def mailer() -> MemoryMailer:
    return MemoryMailer()


@pytest.fixture
def delivery(sessions: sessionmaker[Session], mailer: MemoryMailer) -> Delivery:
    from core.settings import ROOT
    from worker.delivery import RetryPolicy
    from worker.render import Renderer

    return Delivery(sessions, mailer, Renderer(ROOT / "templates"), RetryPolicy())


def abuse_report(sessions: sessionmaker[Session], **changes: Any) -> str:
    outcome = run(
        sessions,
        cases.register_report,
        report(suspected_abuse=True, **changes),
        at("2027-03-01T10:00"),
    )
    return str(outcome.reference)


def abuse_case(sessions: sessionmaker[Session], **changes: Any) -> str:
    values: dict[str, Any] = {"guardians": (), "report": abuse_report(sessions)}
    values.update(changes)
    return open_case(sessions, at("2027-03-02T09:00"), **values)


def planned_to(sessions: sessionmaker[Session], reference: str) -> set[str]:
    return {r.recipient_email for r in rows(sessions, reference) if r.status != Status.CANCELLED}


def assert_staff_only(
    sessions: sessionmaker[Session], mailer: MemoryMailer, *references: str
) -> None:
    """The class: nothing planned, and nothing sent, to anyone outside the staff."""
    for reference in references:
        assert planned_to(sessions, reference).isdisjoint(OUTSIDERS)
        assert all("hem.se" not in r for r in planned_to(sessions, reference))
    sent = {m["To"].addresses[0].addr_spec for m in mailer.messages}
    assert sent.isdisjoint(OUTSIDERS)
    assert all(not a.endswith("@hem.se") for a in sent)


# --- the rule itself ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("email", "roles", "is_person", "staff"),
    [
        ("rut@fallby.se", ["rektor"], True, True),
        ("RUT@FALLBY.SE", ["rektor"], True, True),
        ("vh@hem.se", [], False, False),  # typed for the case: never staff
        ("rut@fallby.se", [], False, False),  # even with a staff address
        ("greta@fallby.se", ["vardnadshavare"], True, False),
        ("elin@fallby.se", ["elev", "elevhalsan"], True, False),
        ("nils@elev.fallby.se", ["familjebehandlare"], True, False),  # subdomains are not staff
        ("konrad@konsult.se", ["verksamhetschef"], True, False),
        ("x@fallby.se.evil.com", ["rektor"], True, False),
    ],
)
def test_staff_is_a_profile_person_without_a_family_role_in_a_staff_domain(
    email: str, roles: list[str], is_person: bool, staff: bool
) -> None:
    rule = StaffRule(domains=frozenset({"fallby.se"}))
    assert (rule.problem(email, roles, is_person) is None) is staff


# --- one route at a time ------------------------------------------------------------------------


def test_a_staff_option_naming_someone_outside_the_staff_is_refused_and_changes_nothing(
    sessions: sessionmaker[Session], engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    reference = abuse_report(sessions)
    before = snapshot(engine)
    for changes in ({"staff": ("greta",)}, {"staff": ("konrad",)}, {"family_worker": "nils"}):
        with caplog.at_level(logging.WARNING), pytest.raises(ConfidentialityError):
            open_case(sessions, at("2027-03-02T09:00"), guardians=(), report=reference, **changes)
        assert snapshot(engine) == before
    assert not OUTSIDERS.intersection(caplog.text.split())
    assert "hem.se" not in caplog.text and "konsult" not in caplog.text


def test_the_owners_manager_outside_the_staff_gets_no_overdue_notice(
    sessions: sessionmaker[Session], mailer: MemoryMailer, delivery: Delivery
) -> None:
    reference = abuse_case(sessions)
    purposes = {r.purpose for r in rows(sessions, reference)}
    assert "frist1-forsenad" in purposes  # the owner is told
    assert "frist1-forsenad-chef" not in purposes  # the manager (outside the staff) is not
    deliver_until(delivery, at("2027-04-30T08:00"))
    assert_staff_only(sessions, mailer, reference)
    # The same case without the abuse report does escalate to the consultant: the rule is
    # the subject's, not a general ban.
    plain = open_case(sessions, at("2027-03-02T09:00"), guardians=())
    assert "konrad@konsult.se" in planned_to(sessions, plain)


def test_a_sip_responsibility_held_by_a_guardian_plans_nothing_for_them(
    sessions: sessionmaker[Session], mailer: MemoryMailer, delivery: Delivery
) -> None:
    reference = abuse_case(sessions, owner="sam", by="sam", sip=True)
    request = cases.ConsentRequest("sam", "vårdnadshavarna", "SIP", None, False)
    run(sessions, cases.record_consent, reference, request, at("2027-03-02T10:00"))
    for responsible in ("vardnadshavare", "familjebehandlare@ifo"):
        item = cases.SipItemRequest("sam", "mål", "insats", responsible, dt.date(2027, 5, 3))
        run(sessions, cases.add_sip_item, reference, item, at("2027-03-03T09:00"))
    # Fia (staff) is reminded of her item; Greta and Nils are not.
    assert "fia@fallby.se" in planned_to(sessions, reference)
    deliver_until(delivery, at("2027-06-30T08:00"))
    assert_staff_only(sessions, mailer, reference)


def test_a_role_handed_to_someone_outside_the_staff_is_refused_at_send_time(
    sessions: sessionmaker[Session], mailer: MemoryMailer, delivery: Delivery
) -> None:
    # Sam owns the case, so the school is called through its rektor role (not as owner).
    reference = abuse_case(sessions, owner="sam", by="sam")
    request = cases.ConsentRequest("sam", "vårdnadshavarna", "samverkansmöte", None, False)
    run(sessions, cases.record_consent, reference, request, at("2027-03-02T10:00"))
    run(
        sessions,
        cases.book_meeting,
        reference,
        cases.BookingRequest("sam", "2027-03-10", "13:00"),
        at("2027-03-02T11:00"),
    )
    assert "rut@fallby.se" in planned_to(sessions, reference)
    # Before the invites leave, the school's rektor role passes to the consultant.
    with transaction(sessions) as session:
        rut = session.scalars(select(models.Person).where(models.Person.key == "rut")).one()
        konrad = session.scalars(select(models.Person).where(models.Person.key == "konrad")).one()
        for assignment in list(rut.roles):
            if assignment.role == "rektor":
                assignment.person_id = konrad.id
    deliver_until(delivery, at("2027-03-02T11:00"))
    deliver_until(delivery, at("2027-03-02T11:01"))  # the new holder's row, planned at send
    assert_staff_only(sessions, mailer, reference)
    refused = [
        r
        for r in rows(sessions, reference)
        if r.recipient_email == "konrad@konsult.se" and r.status == Status.CANCELLED
    ]
    assert refused and all(r.cancel_reason.startswith("refused") for r in refused)  # type: ignore[union-attr]


# --- flagging after registration ----------------------------------------------------------------


def _case_with_families(sessions: sessionmaker[Session]) -> tuple[str, str]:
    registered = run(
        sessions, cases.register_report, report(guardians=("vh@hem.se",)), at("2027-03-01T10:00")
    )
    ref = open_case(sessions, at("2027-03-02T09:00"), report=registered.reference,
                    staff=("greta",), pupil="elev@hem.se")  # fmt: skip
    consent(sessions, ref, at("2027-03-02T10:00"))
    run(
        sessions,
        cases.book_meeting,
        ref,
        cases.BookingRequest("rut", "2027-03-10", "13:00"),
        at("2027-03-02T11:00"),
    )
    return str(registered.reference), ref


def test_flagging_cancels_every_pending_external_message_at_once_and_is_audited(
    sessions: sessionmaker[Session], mailer: MemoryMailer, delivery: Delivery
) -> None:
    report_ref, case_ref = _case_with_families(sessions)
    outsiders = planned_to(sessions, case_ref) | planned_to(sessions, report_ref)
    assert {"vh1@hem.se", "elev@hem.se", "greta@hem.se", "vh@hem.se"} <= outsiders
    # Guardians' messages in a retry (attempts made, waiting) are cancelled as well: one of
    # the report's, one of the case's.
    with transaction(sessions) as session:
        for address in ("vh@hem.se", "vh1@hem.se"):
            retrying = session.scalars(
                select(models.Notification).where(models.Notification.recipient_email == address)
            ).first()
            assert retrying is not None
            retrying.attempts = 1
    outcome = run(sessions, cases.flag_suspected_abuse, report_ref, "mona", at("2027-03-02T12:00"))
    assert "stoppade" in str(outcome)
    assert_staff_only(sessions, mailer, report_ref, case_ref)
    with sessions() as session:
        flagged = session.scalars(select(models.Report)).one()
        case = session.scalars(select(models.Case)).one()
        assert flagged.suspected_abuse and flagged.guardian_emails == [] and case.externals == []
    actor, action, detail = audit(sessions, report_ref)[-1]
    assert (actor, action) == ("mona", "flagged_suspected_abuse")
    assert detail["cancelled"] >= 5 and detail["addresses_erased"] == 4
    assert "hem.se" not in repr(detail)
    # Later changes plan nothing for them, and the worker sends them nothing.
    run(
        sessions,
        cases.hold_meeting,
        case_ref,
        "rut",
        1,
        dt.date(2027, 3, 10),
        at("2027-03-10T15:00"),
    )
    deliver_until(delivery, at("2027-04-30T08:00"))
    assert_staff_only(sessions, mailer, report_ref, case_ref)
    assert mailer.messages  # staff still got theirs


def test_a_row_already_queued_when_the_report_is_flagged_is_refused_at_send_time(
    sessions: sessionmaker[Session], mailer: MemoryMailer, delivery: Delivery
) -> None:
    report_ref, case_ref = _case_with_families(sessions)
    from scheduler.outbox import claim_due

    with transaction(sessions) as session:
        queued = claim_due(session, at("2027-03-02T11:00"), 10_000)
    run(sessions, cases.flag_suspected_abuse, report_ref, "rut", at("2027-03-02T11:00"))
    from worker.delivery import deliver_one

    for notification_id in queued:
        deliver_one(delivery, notification_id, at("2027-03-02T11:00"))
    assert_staff_only(sessions, mailer, report_ref, case_ref)


def test_only_the_reporter_the_intake_or_an_administrator_may_flag(
    sessions: sessionmaker[Session], engine: Engine
) -> None:
    report_ref, _ = _case_with_families(sessions)
    before = snapshot(engine)
    with pytest.raises(CaseRuleError, match="only the reporter"):
        run(sessions, cases.flag_suspected_abuse, report_ref, "fia", at("2027-03-02T12:00"))
    assert snapshot(engine) == before
    run(sessions, cases.flag_suspected_abuse, report_ref, "ada", at("2027-03-02T12:00"))
    again = run(sessions, cases.flag_suspected_abuse, report_ref, "ada", at("2027-03-02T13:00"))
    assert "redan" in str(again)
