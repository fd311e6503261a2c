"""Reports and cases in a real Chromium: a rektor signs in with the password form, registers a
report with the form, sees the command's lines (the acute advice among them) and the report in
the list; axe-core checks every report and case page (WCAG 2.1 A and AA: no violations),
including the case page with all of its owner's forms.
The app and its data: tests/browser/conftest.py (the rektor's account is made here).
"""

from __future__ import annotations

from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select, WebDriverWait
from sqlalchemy import select

import models
from models.db import make_engine, make_sessionmaker, transaction
from samverkan.cli.webapp import set_password
from tests.browser.conftest import NOW, Site
from tests.fixtures.browser import axe_violations

RECTOR = "ingrid"  # Ingrid Mattsson, rektor of Kyrkbacksskolan, owner of the site's case


@pytest.fixture(scope="module")
def rektor(browser: Any, site: Site) -> Any:
    """The browser, signed in as the rektor (an account made for this module)."""
    engine = make_engine(site.server.env["SAMVERKAN_DATABASE_URL"])
    try:
        with transaction(make_sessionmaker(engine)) as session:
            person = session.scalars(
                select(models.Person).where(models.Person.key == "ingrid-mattsson")
            ).one()
            account = session.scalars(
                select(models.Account).where(models.Account.person_id == person.id)
            ).first()
            password = set_password(session, person, RECTOR, NOW, reset=account is not None)
    finally:
        engine.dispose()
    browser.delete_all_cookies()
    browser.get(site.url + "/logga-in")
    browser.find_element(By.ID, "anvandarnamn").send_keys(RECTOR)
    browser.find_element(By.ID, "losenord").send_keys(password)
    browser.find_element(By.CSS_SELECTOR, "form.signin button[type=submit]").click()
    WebDriverWait(browser, 20).until(expected_conditions.url_to_be(site.url + "/att-gora"))
    return browser


def test_a_rektor_registers_a_report_and_sees_it_listed(rektor: Any, site: Site) -> None:
    rektor.get(site.url + "/anmalningar/ny")
    assert axe_violations(rektor) == []
    Select(rektor.find_element(By.ID, "f-enhet")).select_by_value("kyrkbacksskolan")
    Select(rektor.find_element(By.ID, "f-distrikt")).select_by_value("norr")
    rektor.find_element(By.ID, "f-akut").click()
    rektor.find_element(By.CSS_SELECTOR, "form.case-form button[type=submit]").click()
    WebDriverWait(rektor, 20).until(
        expected_conditions.text_to_be_present_in_element((By.TAG_NAME, "h1"), "Klart")
    )
    reference = rektor.find_element(By.TAG_NAME, "h1").text.split()[-1]
    outcome = rektor.find_element(By.CSS_SELECTOR, "[role=status]").text
    assert f"Anmälan {reference} registrerad" in outcome
    assert "BRÅDSKANDE: ring" in outcome
    assert axe_violations(rektor) == []
    rektor.get(site.url + "/anmalningar")
    assert reference in rektor.find_element(By.TAG_NAME, "table").text
    assert axe_violations(rektor) == []
    rektor.find_element(By.LINK_TEXT, reference).click()
    WebDriverWait(rektor, 20).until(
        expected_conditions.text_to_be_present_in_element((By.TAG_NAME, "h1"), reference)
    )
    assert rektor.find_element(By.TAG_NAME, "h1").text == f"Anmälan {reference}"
    assert axe_violations(rektor) == []


@pytest.mark.parametrize("path", ["/arenden", "/arenden/ny", "/arenden/{case}"])
def test_the_case_pages_meet_wcag_21_aa(rektor: Any, site: Site, path: str) -> None:
    rektor.get(site.url + path.replace("{case}", site.case))
    if path == "/arenden/{case}":  # the owner's forms are on the page
        assert rektor.find_elements(By.CSS_SELECTOR, f"form[action='/arenden/{site.case}/boka']")
    assert axe_violations(rektor) == []


def test_a_refused_form_meets_wcag_21_aa(rektor: Any, site: Site) -> None:
    rektor.get(site.url + f"/arenden/{site.case}")
    form = rektor.find_element(By.CSS_SELECTOR, f"form[action='/arenden/{site.case}/hallet']")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    alert = WebDriverWait(rektor, 20).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "[role=alert]"))
    )
    assert "Möte:" in alert.text
    assert axe_violations(rektor) == []
