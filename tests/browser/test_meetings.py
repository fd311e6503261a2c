"""Möten in a real Chromium: the coordinator opens the meetings, moves the October meeting
with the form (a refused date first, then a good one), opens the call-off confirmation and
keeps the meeting, and finds the moved meeting's invitations in the delivery log at their new
due day. Then, from the wheel, the coordinator books the April meeting of 2028 (not yet
booked) with the form under "Att boka" (a refused date first) and finds its invitations
planned in the delivery log. axe-core checks every page and state reached (WCAG 2.1 A and AA:
no violations).

The October meeting (`samverkansmote-host`) is booked for 12 October 2027 at 13:00 before the
first test, as its convener would with `samverkan book`; a meeting's invitation ("kallelse")
is due three weeks before it. The app and its data: tests/browser/conftest.py.
"""

from __future__ import annotations

from typing import Any

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import select

import models
from models.db import make_engine, make_sessionmaker, transaction
from service.booking import book_routine_meeting
from tests.browser.conftest import COORDINATOR, NOW, Site
from tests.fixtures.browser import axe_violations

ROUTINE = "samverkansmote-host"
PAGE = f"/moten/rutin/{ROUTINE}/2027"


def book_october(site: Site) -> None:
    engine = make_engine(site.server.env["SAMVERKAN_DATABASE_URL"])
    try:
        with transaction(make_sessionmaker(engine)) as session:
            exempel = session.scalars(
                select(models.Municipality.id).where(models.Municipality.key == "exempel")
            ).one()
            book_routine_meeting(session, exempel, ROUTINE, "2027-10-12", "13:00", None, NOW, 400)
    finally:
        engine.dispose()


def sign_in(page: Any, site: Site) -> None:
    page.get(site.url + "/logga-in")
    page.find_element(By.ID, "anvandarnamn").send_keys(COORDINATOR)
    page.find_element(By.ID, "losenord").send_keys(site.password)
    page.find_element(By.CSS_SELECTOR, "form.signin button[type=submit]").click()
    WebDriverWait(page, 20).until(expected_conditions.url_to_be(site.url + "/att-gora"))


def alert(page: Any) -> str:
    """The text of the page's alert, once the answer to the form has loaded."""
    found = WebDriverWait(page, 20).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "[role=alert]"))
    )
    return str(found.text)


def shown(page: Any, tag: str, text: str) -> None:
    """Wait until the page that a click loads shows `text` in its `tag`."""
    WebDriverWait(page, 20).until(
        expected_conditions.text_to_be_present_in_element((By.TAG_NAME, tag), text)
    )


def move(page: Any, day: str, time: str) -> None:
    for name, value in (("datum", day), ("tid", time)):
        field = page.find_element(By.ID, name)
        field.clear()
        field.send_keys(value)
    page.find_element(By.XPATH, "//button[normalize-space()='Flytta mötet']").click()


def invitations_in_log(
    page: Any, site: Site, due: str, meeting: str = f"{ROUTINE} 2027"
) -> list[str]:
    """The planned rows of a meeting's invitation due on `due` (by default the October
    meeting's), page by page."""
    found: list[str] = []
    for number in range(30):
        page.get(f"{site.url}/leveranslogg?visa=planerade&sida={number}")
        for row in page.find_elements(By.CSS_SELECTOR, "table.log tbody tr"):
            text = row.text
            if meeting in text and "kallelse" in text and text.startswith(due):
                found.append(text)
        if not page.find_elements(By.LINK_TEXT, "Äldre →"):
            break
    return found


def test_a_coordinator_moves_a_meeting_and_finds_its_invitations_in_the_log(
    page: Any, site: Site
) -> None:
    book_october(site)
    assert invitations_in_log(page, site, "2027-09-21") == []  # not signed in: nothing
    sign_in(page, site)
    assert len(invitations_in_log(page, site, "2027-09-21")) > 1

    page.get(site.url + "/moten")
    assert page.find_element(By.TAG_NAME, "h1").text == "Möten"
    assert axe_violations(page) == []
    page.find_element(By.PARTIAL_LINK_TEXT, "i oktober").click()
    WebDriverWait(page, 20).until(expected_conditions.url_to_be(site.url + PAGE))
    assert "2027-10-12 kl. 13.00–15.00" in page.find_element(By.TAG_NAME, "main").text
    assert axe_violations(page) == []

    move(page, "2027-10-16", "13:00")  # a Saturday: refused, nothing changed
    problem = alert(page)
    assert "Datum: 2027-10-16 är inte en arbetsdag" in problem
    assert page.find_element(By.ID, "datum").get_attribute("aria-invalid") == "true"
    assert axe_violations(page) == []

    move(page, "2027-10-19", "10:00")
    WebDriverWait(page, 20).until(expected_conditions.url_contains("klart=flyttat"))
    main = page.find_element(By.TAG_NAME, "main").text
    assert "Mötet är flyttat" in main and "2027-10-19 kl. 10.00–12.00" in main
    assert axe_violations(page) == []

    page.find_element(By.PARTIAL_LINK_TEXT, "Ställ in mötet").click()
    shown(page, "h1", "Ställa in mötet?")
    assert page.find_element(By.TAG_NAME, "h1").text == "Ställa in mötet?"
    assert axe_violations(page) == []
    page.find_element(By.LINK_TEXT, "Nej, behåll det").click()
    shown(page, "main", "Bokat")

    # The invitations now go out three weeks before the new day, not the old one.
    moved = invitations_in_log(page, site, "2027-09-28")
    assert len(moved) > 1
    assert invitations_in_log(page, site, "2027-09-21") == []


APRIL_2028 = "samverkansmote-var-2028"  # the ids of its booking form's parts on /moten
BOOK_APRIL_2028 = "/moten/rutin/samverkansmote-var/2028/boka"


def book(page: Any, day: str, time: str) -> None:
    for name, value in (("datum", day), ("tid", time)):
        field = page.find_element(By.ID, f"{name}-{APRIL_2028}")
        field.clear()
        field.send_keys(value)
    form = page.find_element(By.CSS_SELECTOR, f"form[action='{BOOK_APRIL_2028}']")
    form.find_element(By.XPATH, ".//button[normalize-space()='Boka mötet']").click()


def test_a_coordinator_books_a_meeting_and_finds_its_invitations_in_the_log(
    page: Any, site: Site
) -> None:
    sign_in(page, site)
    meeting = "samverkansmote-var 2028"
    assert invitations_in_log(page, site, "2028-03-21", meeting) == []  # not booked: none

    page.get(site.url + "/arshjul")
    assert page.find_element(By.TAG_NAME, "h1").text.startswith("Årshjul")
    page.find_element(By.LINK_TEXT, "Möten").click()
    WebDriverWait(page, 20).until(expected_conditions.url_to_be(site.url + "/moten"))
    heading = page.find_element(By.ID, f"boka-{APRIL_2028}").text
    assert heading == "Samverkansmöte skola–socialtjänst i april, april 2028"
    assert axe_violations(page) == []

    book(page, "2028-04-15", "13:00")  # a Saturday: refused, nothing booked
    problem = alert(page)
    assert "Datum: 2028-04-15 är inte en arbetsdag" in problem
    field = page.find_element(By.ID, f"datum-{APRIL_2028}")
    assert field.get_attribute("aria-invalid") == "true"
    assert axe_violations(page) == []

    book(page, "2028-04-11", "13:00")
    WebDriverWait(page, 20).until(expected_conditions.url_contains("klart=bokat"))
    main = page.find_element(By.TAG_NAME, "main").text
    assert "Mötet är bokat" in main and "2028-04-11 kl. 13.00–15.00" in main
    assert axe_violations(page) == []
    page.get(site.url + "/moten")
    assert not page.find_elements(By.ID, f"boka-{APRIL_2028}")  # no longer to book

    # Its invitations are planned, three weeks before the meeting.
    assert len(invitations_in_log(page, site, "2028-03-21", meeting)) > 1
