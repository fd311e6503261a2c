"""The web app in a real Chromium: a coordinator signs in with the password form and opens
the year wheel, the to-do list, the delivery log and the people page. axe-core checks every
page reached (WCAG 2.1 A and AA: no violations). The wheel and the to-do list (with what is
overdue) are kept as screenshots in var/screenshots/.
The app and its data: tests/browser/conftest.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser.conftest import COORDINATOR, Site
from tests.fixtures.browser import axe_violations, screenshot


def sign_in(page: Any, site: Site) -> None:
    page.get(site.url + "/logga-in")
    page.find_element(By.ID, "anvandarnamn").send_keys(COORDINATOR)
    page.find_element(By.ID, "losenord").send_keys(site.password)
    page.find_element(By.CSS_SELECTOR, "form.signin button[type=submit]").click()
    WebDriverWait(page, 20).until(expected_conditions.url_to_be(site.url + "/att-gora"))


@pytest.fixture(scope="module")
def coordinator(browser: Any, site: Site) -> Any:
    """The browser, signed in once as the coordinator for the tests of this module."""
    browser.delete_all_cookies()
    sign_in(browser, site)
    return browser


def test_the_sign_in_page_meets_wcag_21_aa(page: Any, site: Site) -> None:
    page.get(site.url + "/logga-in")
    assert page.find_element(By.TAG_NAME, "h1").text
    assert axe_violations(page) == []


def test_signing_in_leads_a_coordinator_to_the_to_do_list(page: Any, site: Site) -> None:
    sign_in(page, site)
    assert page.find_element(By.TAG_NAME, "h1").text == "Att göra"


def test_a_coordinator_sees_what_is_overdue(coordinator: Any, site: Site) -> None:
    coordinator.get(site.url + "/att-gora")
    overdue = coordinator.find_element(By.CSS_SELECTOR, "section[aria-labelledby=forsenat]").text
    assert site.case in overdue
    assert axe_violations(coordinator) == []
    screenshot(coordinator, "att-gora")


def test_the_year_wheel_shows_the_year(coordinator: Any, site: Site) -> None:
    coordinator.get(site.url + "/arshjul")
    assert coordinator.find_element(By.TAG_NAME, "h1").text == "Årshjul 2027"
    assert coordinator.find_elements(By.CSS_SELECTOR, "section[aria-labelledby=hjulet] svg")
    assert axe_violations(coordinator) == []
    screenshot(coordinator, "arshjul")


@pytest.mark.parametrize("path", ["/arshjul/utskrift", "/leveranslogg", "/personer"])
def test_the_other_pages_meet_wcag_21_aa(coordinator: Any, site: Site, path: str) -> None:
    coordinator.get(site.url + path)
    assert coordinator.current_url == site.url + path
    assert axe_violations(coordinator) == []
