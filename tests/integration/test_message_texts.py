"""The words of every message, rendered from contexts the planners really write.

Every row the routine planner and the case planner put in the outbox for a year of the example
profile and a run of case work is rendered: no subject repeats a word back to back or starts
in lower case, a role's name is lower case mid-sentence, and a case that is not a SIP case is
never called one.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import models
from core.settings import ROOT
from scheduler.spec import BUILTIN_ROLES
from service import cases
from tests.integration.test_case_work import (
    CASES,
    at,
    book,
    consent,
    open_case,
    report,
    run,
)
from tests.profiles import EXAMPLE, load
from worker.render import Rendered, Renderer

pytestmark = pytest.mark.integration

RENDERER = Renderer(ROOT / "templates")
DOUBLED = re.compile(r"\b(\w+)\W+\1\b", re.IGNORECASE)
# A role's name in parentheses after a person's name, as the templates write it.
ROLE_IN_PARENTHESES = re.compile(
    r"\w \((" + "|".join(map(re.escape, BUILTIN_ROLES.values())) + r")\)"
)


def rendered(sessions: sessionmaker[Session]) -> Iterator[tuple[models.Notification, Rendered]]:
    with sessions() as session:
        for row in session.scalars(select(models.Notification).order_by(models.Notification.id)):
            yield row, RENDERER.render(row.template, row.context)


def subject_problems(subject: str) -> list[str]:
    problems = []
    doubled = DOUBLED.search(subject)
    if doubled:
        problems.append(f"repeats {doubled.group(1)!r}")
    first = next((c for c in subject if c.isalpha()), "")
    if first and not first.isupper():
        problems.append("starts in lower case")
    return problems


def check_texts(sessions: sessionmaker[Session]) -> set[str]:
    templates = set()
    for row, message in rendered(sessions):
        templates.add(row.template)
        assert not subject_problems(message.subject), (row.template, message.subject)
        for part in (message.text, message.html):
            found = ROLE_IN_PARENTHESES.search(part)
            assert found is None, (row.template, found.group(0) if found else "")
    return templates


def test_routine_messages_of_a_year(session_factory: sessionmaker[Session]) -> None:
    load(session_factory, EXAMPLE, at("2026-12-01T07:00"), horizon_days=400)
    used = check_texts(session_factory)
    assert {"samverkansmote-boka", "foraldramote-ifo", "styrning-paminnelse"} <= used


def test_case_and_report_messages_and_sip_only_for_sip_cases(
    session_factory: sessionmaker[Session],
) -> None:
    load(session_factory, CASES, at("2027-03-01T07:00"))
    sessions = session_factory
    for acute in (False, True):
        outcome = run(
            sessions,
            cases.register_report,
            report(acute=acute, wants_feedback=True, guardians=("vh@hem.se",)),
            at("2027-03-01T10:00"),
        )
        run(sessions, cases.receive_report, outcome.reference, "mona", at("2027-03-01T11:00"))
    plain = open_case(sessions, at("2027-03-02T09:00"))
    consent(sessions, plain, at("2027-03-02T10:00"))
    book(sessions, plain, "2027-03-10", at("2027-03-02T11:00"))
    run(sessions, cases.hold_meeting, plain, "rut", None, None, at("2027-03-10T16:00"))
    run(
        sessions, cases.record_minutes, plain, "rut", [dt.date(2027, 4, 20)], at("2027-03-10T17:00")
    )
    used = check_texts(sessions)
    assert {"arende-minnesanteckningar", "arende-kallelse", "anmalan-mottagning"} <= used
    for row, message in rendered(sessions):
        if row.occurrence == plain:
            for part in (message.subject, message.text, message.html):
                assert "SIP" not in part and "samordnad individuell" not in part, row.template

    sip = open_case(sessions, at("2027-03-11T09:00"), sip=True)
    consent(sessions, sip, at("2027-03-11T10:00"))
    book(sessions, sip, "2027-03-18", at("2027-03-11T11:00"))
    run(sessions, cases.hold_meeting, sip, "rut", None, None, at("2027-03-18T16:00"))
    minutes = [
        message.text
        for row, message in rendered(sessions)
        if row.occurrence == sip and row.template == "arende-minnesanteckningar"
    ]
    assert minutes and all("(SIP)" in text for text in minutes)
    check_texts(sessions)


@pytest.mark.parametrize(
    ("subject", "problem"),
    [
        ("ny anmälan från Ekskolan", "starts in lower case"),
        ("Påminnelse: påminnelse om mötet", "repeats"),
        ("SIP SIP: insats 1", "repeats"),
        ("Kallelse: samverkansmöte tisdag 13 april 2027 kl. 13.00", None),
    ],
)
def test_the_subject_rules_themselves(subject: str, problem: str | None) -> None:
    found = subject_problems(subject)
    assert (problem is None and not found) or any(problem in p for p in found if problem)


def test_the_convener_of_a_routine_meeting_is_not_invited_as_an_attendee(
    session_factory: sessionmaker[Session],
) -> None:
    """Rule: every recipient gets the message; the organizer's copy is METHOD:PUBLISH without
    ATTENDEE (nothing to accept or decline), everyone else a REQUEST naming only themselves."""
    import icalendar

    from models.db import transaction
    from scheduler.outbox import claim_due
    from service.booking import book_meeting
    from tests.profiles import MINIMAL
    from worker.delivery import Delivery, Outcome, deliver_one
    from worker.mailers import MemoryMailer

    now = at("2027-01-10T07:00")
    load(session_factory, MINIMAL, now)
    with transaction(session_factory) as session:
        municipality_id = session.scalars(select(models.Municipality.id)).one()
        book_meeting(
            session, municipality_id, "samverkansmote-var", "2027-04-13", "13:00", None, now, 400
        )
        due = at("2027-04-01T07:00")
        ids = claim_due(session, due, 100)
    mailer = MemoryMailer()
    delivery = Delivery(session_factory, mailer, RENDERER)
    assert {deliver_one(delivery, i, due) for i in ids} == {Outcome.SENT}
    invites = {
        m["To"].addresses[0].addr_spec: m
        for m in mailer.messages
        if any(p.get_content_type() == "text/calendar" for p in m.walk())
    }
    assert set(invites) == {"anna@liten.se", "cecilia@liten.se"}
    for address, message in invites.items():
        (part,) = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
        calendar = icalendar.Calendar.from_ical(part.get_content())
        (event,) = calendar.walk("VEVENT")
        assert str(event["ORGANIZER"]) == "mailto:anna@liten.se"
        assert "2027" in str(event["DESCRIPTION"])  # names the occurrence, as the summary does
        if address == "anna@liten.se":
            assert str(calendar["METHOD"]) == "PUBLISH" and "ATTENDEE" not in event
        else:
            assert str(calendar["METHOD"]) == "REQUEST"
            assert str(event["ATTENDEE"]) == f"mailto:{address}"


STAGE_WORDS = {
    "forskola": "förskolan",
    "forskoleklass": "förskoleklass",
    "lagstadiet": "lågstadiet",
    "mellanstadiet": "mellanstadiet",
    "hogstadiet": "högstadiet",
    "gymnasiet": "gymnasiet",
}


def test_the_parent_meeting_reminder_names_only_the_stages_each_school_has(
    session_factory: sessionmaker[Session],
) -> None:
    """Seed 004: one parent meeting per stage, so each unit's list is its own stages."""
    from service.profiles import validate_profile

    profile = validate_profile(EXAMPLE, dt.date(2027, 1, 1)).profile
    stages = {u.name: u.school_stages() for u in profile.units}
    load(session_factory, EXAMPLE, at("2027-06-01T07:00"), horizon_days=400)
    checked = 0
    for row, message in rendered(session_factory):
        if row.template != "foraldramote-ifo":
            continue
        for unit in row.context["recipient"]["units"]:
            assert unit["stages"] == stages[unit["name"]]
            if not unit["stages"]:
                continue
            block = message.text.split(unit["name"] + "\n", 1)[1].split("\n\n", 1)[0]
            named = {key for key, word in STAGE_WORDS.items() if word in block}
            assert named == set(unit["stages"]), (unit["name"], block)
            checked += 1
    assert checked >= len([s for s in stages.values() if s])
    centralskolan = [
        m.text
        for row, m in rendered(session_factory)
        if row.template == "foraldramote-ifo"
        and [u["name"] for u in row.context["recipient"]["units"]] == ["Centralskolan 7–9"]
    ]
    assert centralskolan
    for text in centralskolan:
        assert "förskoleklass" not in text and "årskurs 7 (högstadiet)" in text
