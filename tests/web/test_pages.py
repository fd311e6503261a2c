"""What each page shows to whom: narrowed to the viewer's units and cases, audited when a case
or report is listed, and the coordinator's resend through the outbox."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select

import models
from tests.web.conftest import NOW, REPLY, World, csrf_of, failed_row


def test_to_do_lists_each_case_and_report_only_to_those_in_it(
    world: World, signed_in: dict
) -> None:
    shown = {
        kind: signed_in[kind].get("/att-gora").text for kind in signed_in if kind != "ingenroll"
    }
    case, report = f"Ärende {world.case}", f"Anmälan {world.report}"
    assert case in shown["samordnare"] and report in shown["samordnare"]
    assert case in shown["rektor"] and report not in shown["rektor"]  # rektor of the case's school
    assert case in shown["familj"] and report not in shown["familj"]  # the case's family worker
    assert report in shown["mottagning"] and case not in shown["mottagning"]  # intake, norr
    assert case not in shown["annan"] and report not in shown["annan"]


def test_the_first_meeting_deadline_passed_shows_as_overdue(world: World, signed_in: dict) -> None:
    text = signed_in["rektor"].get("/att-gora").text
    overdue = text[text.index("Försenat") : text.index("De kommande")]
    assert "Möte 1 ska hållas senast denna dag" in overdue


def test_every_listing_of_a_case_is_audited_with_who_saw_it(world: World, signed_in: dict) -> None:
    signed_in["familj"].get("/att-gora")
    with world.sessions() as session:
        rows = session.scalars(
            select(models.CaseAudit).where(models.CaseAudit.action == "web.listed")
        ).all()
    assert [(r.series, r.reference, r.actor) for r in rows] == [
        ("case", world.case, "emma-sandberg")
    ]


def test_people_shows_a_rektor_her_own_school_and_a_coordinator_every_unit(
    world: World, signed_in: dict
) -> None:
    rektor = signed_in["rektor"].get("/personer").text
    assert "Kyrkbacksskolan" in rektor and "Centralskolan" not in rektor
    coordinator = signed_in["samordnare"].get("/personer").text
    assert "Kyrkbacksskolan" in coordinator and "Centralskolan" in coordinator
    assert "Karin Ek" in coordinator and "2027-02-01 – 2027-06-30" in coordinator


def test_the_wheel_draws_each_occurrence_with_a_legend_in_words_and_a_list(
    world: World, signed_in: dict
) -> None:
    text = signed_in["samordnare"].get("/arshjul?ar=2027").text
    assert text.count('class="month m') == 12
    marks = len(re.findall(r'class="mark (planned|due|done|missed)"', text))
    listed = text.count('<li class="state-')
    assert listed > 0 and marks == listed + 4  # + the four shapes of the legend
    for word in ("Planerad", "Aktuell", "Klar", "Missad"):
        assert word in text
    assert "Samverkansmöte" in text


def test_a_rektor_sees_on_the_wheel_only_what_she_takes_part_in(
    world: World, signed_in: dict
) -> None:
    every = signed_in["samordnare"].get("/arshjul?ar=2027").text.count('<li class="state-')
    own = signed_in["rektor"].get("/arshjul?ar=2027").text.count('<li class="state-')
    assert 0 < own < every


def test_the_printable_wheel_is_a_page_of_its_own(world: World, signed_in: dict) -> None:
    text = signed_in["rektor"].get("/arshjul/utskrift?ar=2027").text
    assert "print.css" in text and "<svg" in text and "Huvudmeny" not in text


def test_a_year_out_of_range_is_refused_with_its_name(world: World, signed_in: dict) -> None:
    answer = signed_in["rektor"].get("/arshjul?ar=99999")
    assert answer.status_code == 400 and "ar" in answer.text


def test_the_log_shows_a_failure_with_its_smtp_reply(world: World, signed_in: dict) -> None:
    failed_row(world.sessions)
    text = signed_in["samordnare"].get("/leveranslogg?visa=misslyckade").text
    assert "Misslyckad" in text and REPLY in text and "Skicka igen" in text


def test_a_coordinator_resends_a_failed_message_once_audited(world: World, signed_in: dict) -> None:
    row = failed_row(world.sessions)
    client = signed_in["samordnare"]
    token = csrf_of(client.get("/leveranslogg").text)
    assert client.post(f"/leveranslogg/{row}/skicka-igen", data={"csrf": token}).status_code == 303
    with world.sessions() as session:
        found = session.get_one(models.Notification, row)
        assert (found.status, found.due_at, found.attempts) == ("pending", NOW, 1)
        audit = session.scalars(select(models.WebAudit)).one()
        assert (audit.action, audit.detail["notification"]) == ("message.resend", row)
    # A second click finds nothing failed: refused, nothing more written.
    assert client.post(f"/leveranslogg/{row}/skicka-igen", data={"csrf": token}).status_code == 404
    with world.sessions() as session:
        assert len(session.scalars(select(models.WebAudit)).all()) == 1


def test_the_log_pages_are_filtered_by_state(world: World, signed_in: dict) -> None:
    failed_row(world.sessions)
    client = signed_in["samordnare"]
    assert REPLY not in client.get("/leveranslogg?visa=planerade").text
    assert REPLY in client.get("/leveranslogg?visa=misslyckade").text
    assert client.get("/leveranslogg?visa=nonsense").status_code == 400


def test_a_person_with_no_role_is_told_so(world: World, signed_in: dict) -> None:
    text = signed_in["ingenroll"].get("/").text
    assert "ingen roll" in text


def test_times_are_shown_in_stockholm_time(world: World, signed_in: dict) -> None:
    row = failed_row(world.sessions)
    with world.sessions.begin() as session:
        found = session.get_one(models.Notification, row)
        found.due_at = dt.datetime(2027, 7, 1, 6, 0, tzinfo=dt.UTC)
    text = signed_in["samordnare"].get("/leveranslogg?visa=misslyckade").text
    assert "2027-07-01 08:00" in text
