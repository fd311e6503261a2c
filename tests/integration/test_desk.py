"""The desk against a real database: who acts is resolved (or refused) once, the permission
rules of service/permissions.py are what the service functions apply, and a refusal changes
nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

import models
from models.db import transaction
from service import cases
from tests.integration.test_case_work import at, consent, open_case, run
from tests.integration.test_case_work import sessions as sessions  # the fixture
from tests.profiles import snapshot

pytestmark = pytest.mark.integration


@pytest.fixture
def nils(sessions: sessionmaker[Session]) -> str:
    """A person of the profile who holds no role."""
    with transaction(sessions) as session:
        municipality_id = session.scalars(select(models.Municipality.id)).one()
        session.add(
            models.Person(
                municipality_id=municipality_id, key="nils", name="Nils", email="nils@fallby.se"
            )
        )
    return "nils"


def test_an_unknown_person_acting_is_refused_without_repeating_the_key(
    sessions: sessionmaker[Session], engine: Engine
) -> None:
    ref = open_case(sessions, at("2027-03-02T09:00"))
    before = snapshot(engine)
    with pytest.raises(cases.CaseInputError, match="--by: no active person") as refused:
        run(
            sessions, cases.withdraw_consent, ref, by="Lisa Exempelsson", now=at("2027-03-03T09:00")
        )
    assert "Lisa" not in str(refused.value)
    assert snapshot(engine) == before


def test_a_person_removed_from_the_profile_may_not_act(
    sessions: sessionmaker[Session], engine: Engine
) -> None:
    ref = open_case(sessions, at("2027-03-02T09:00"))
    with transaction(sessions) as session:
        session.scalars(
            select(models.Person).where(models.Person.key == "rut")
        ).one().active = False
    before = snapshot(engine)
    with pytest.raises(cases.CaseInputError, match="--by: no active person"):
        run(sessions, cases.add_note, ref, "anteckning", by="rut", now=at("2027-03-03T09:00"))
    assert snapshot(engine) == before


def test_notes_are_read_by_the_case_parties_an_administrator_and_the_console(
    sessions: sessionmaker[Session], nils: str
) -> None:
    ref = open_case(sessions, at("2027-03-02T09:00"))  # owner rut, family worker fia
    run(sessions, cases.add_note, ref, "Mentorn deltar", by="rut", now=at("2027-03-02T09:30"))
    later = at("2027-03-02T10:00")
    for reader in ("rut", "fia", "ada", None):
        notes = run(sessions, cases.show, ref, True, by=reader, now=later)["notes"]
        assert [n["text"] for n in notes] == ["Mentorn deltar"]
    for outsider in (nils, "mona", "sam"):
        with pytest.raises(cases.PermissionRefused, match="only the parties of Ärende"):
            run(sessions, cases.show, ref, True, by=outsider, now=later)


def test_a_person_with_no_role_may_register_but_not_receive_or_book(
    sessions: sessionmaker[Session], engine: Engine, nils: str
) -> None:
    ref = open_case(sessions, at("2027-03-02T09:00"))
    consent(sessions, ref, at("2027-03-02T10:00"))
    request = cases.ReportRequest(unit="ekskolan", reporter="rut", district="norr")
    # Anyone may register a report (the duty is personal)...
    reported = run(sessions, cases.register_report, request, by=nils, now=at("2027-03-02T11:00"))
    before = snapshot(engine)
    # ...but only the intake unit receives it, and only the owner books the case's meeting.
    with pytest.raises(cases.PermissionRefused, match="only the intake unit"):
        run(sessions, cases.receive_report, reported.reference, by=nils, now=at("2027-03-02T12:00"))
    booking = cases.BookingRequest("2027-03-10", "13:00")
    with pytest.raises(cases.PermissionRefused, match="only the case owner"):
        run(sessions, cases.book_meeting, ref, booking, by=nils, now=at("2027-03-02T12:00"))
    assert snapshot(engine) == before
