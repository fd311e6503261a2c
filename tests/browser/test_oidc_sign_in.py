"""Sign-in through OpenID Connect in a real Chromium: the provider's own login and consent
pages, then back to the web app; axe-core checks the app's pages on the way."""

from __future__ import annotations

from typing import Any

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser.conftest import Site
from tests.fixtures.browser import axe_violations


def sign_in_at_provider(page: Any, email: str) -> None:
    wait = WebDriverWait(page, 20)
    wait.until(expected_conditions.presence_of_element_located((By.NAME, "login")))
    page.find_element(By.NAME, "login").send_keys(email)
    page.find_element(By.NAME, "password").send_keys("vilket-som-helst")
    page.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    consent = (By.CSS_SELECTOR, "input[value=consent]")
    wait.until(expected_conditions.presence_of_element_located(consent))
    page.find_element(By.CSS_SELECTOR, "button[type=submit]").click()


def test_a_coordinator_signs_in_with_the_municipality_account(page: Any, site: Site) -> None:
    page.get(site.url + "/oidc/login?next=/arshjul")
    sign_in_at_provider(page, "elin.bergstrom@exempelby.se")
    WebDriverWait(page, 20).until(expected_conditions.url_to_be(site.url + "/arshjul"))
    assert "Elin Bergström" in page.find_element(By.TAG_NAME, "header").text
    assert axe_violations(page) == []


def test_an_unknown_address_gets_an_accessible_refusal(page: Any, site: Site) -> None:
    page.get(site.url + "/oidc/login?next=/")
    sign_in_at_provider(page, "okand@exempelby.se")
    WebDriverWait(page, 20).until(expected_conditions.url_contains("/oidc/callback"))
    assert page.find_element(By.TAG_NAME, "h1").text == "Det gick inte"
    assert "okand" not in page.page_source
    assert axe_violations(page) == []
