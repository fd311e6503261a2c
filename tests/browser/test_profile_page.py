"""Profil in a real Chromium: a coordinator opens the page, uploads a changed profile and
sees the preview; a bad file shows its problems. axe-core checks each page (WCAG 2.1 A and
AA: no violations). Nothing is applied: the site is shared with the other browser tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser.conftest import Site
from tests.browser.test_pages import sign_in
from tests.fixtures.browser import axe_violations, screenshot
from tests.profiles import EXAMPLE

KARIN = "    name: Karin Ek\n"


@pytest.fixture(scope="module")
def coordinator(browser: Any, site: Site) -> Any:
    browser.delete_all_cookies()
    sign_in(browser, site)
    return browser


def upload(driver: Any, site: Site, path: Path) -> None:
    driver.get(site.url + "/profil")
    driver.find_element(By.ID, "fil").send_keys(str(path))
    driver.find_element(By.CSS_SELECTOR, "form.upload button[type=submit]").click()
    WebDriverWait(driver, 60).until(expected_conditions.url_to_be(site.url + "/profil/granska"))


def test_the_profile_page_meets_wcag_21_aa(coordinator: Any, site: Site) -> None:
    coordinator.get(site.url + "/profil")
    assert coordinator.find_element(By.TAG_NAME, "h1").text == "Profil"
    assert axe_violations(coordinator) == []


def test_the_preview_of_a_changed_profile_meets_wcag_21_aa(
    coordinator: Any, site: Site, tmp_path: Path
) -> None:
    changed = tmp_path / "exempel.yaml"
    text = EXAMPLE.read_text(encoding="utf-8")
    # A routine no other browser test books (a booked meeting keeps its day whatever the
    # profile says, and the site is shared with tests/browser/test_meetings.py).
    deadline = "when: {date: {month: 6, day: 30}}"
    assert text.count(deadline) == 1
    changed.write_text(text.replace(deadline, "when: {date: {month: 6, day: 15}}"), "utf-8")
    upload(coordinator, site, changed)
    assert coordinator.find_element(By.TAG_NAME, "h1").text == "Granska profilen"
    moved = coordinator.find_element(By.CSS_SELECTOR, "section[aria-labelledby=flyttade]").text
    assert "Utvärdering av samverkan" in moved
    assert coordinator.find_element(By.XPATH, "//button[text()='Verkställ']")
    # axe-core takes about a minute over this page's tables on a busy two-core machine.
    coordinator.set_script_timeout(180)
    try:
        assert axe_violations(coordinator) == []
    finally:
        coordinator.set_script_timeout(30)
    screenshot(coordinator, "profil-granska")


def test_a_bad_profile_shows_its_problems_accessibly(
    coordinator: Any, site: Site, tmp_path: Path
) -> None:
    bad = tmp_path / "exempel.yaml"
    bad.write_text(EXAMPLE.read_text(encoding="utf-8").replace(KARIN, "    nam: Karin Ek\n"))
    upload(coordinator, site, bad)
    alert = coordinator.find_element(By.CSS_SELECTOR, "[role=alert]").text
    assert "Inget har ändrats" in alert and "exempel.yaml:173" in alert
    assert axe_violations(coordinator) == []
