"""Sign-in through OpenID Connect in a real Chromium: the provider's own login and consent
pages, then back to the app, which says who is signed in; axe-core checks the app's pages."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from tests.fixtures.browser import LiveServer, axe_violations
from tests.fixtures.oidc import OidcProvider, people_database


@pytest.fixture(scope="module")
def app(
    oidc_provider: OidcProvider, web_port: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    directory = tmp_path_factory.mktemp("oidc-app")
    env = {
        "SAMVERKAN_DATABASE_URL": people_database(directory),
        "SAMVERKAN_VAR_DIR": str(directory),
        "SAMVERKAN_OIDC_ISSUER": oidc_provider.issuer,
        "SAMVERKAN_OIDC_CLIENT_ID": oidc_provider.client_id,
        "SAMVERKAN_OIDC_CLIENT_SECRET": oidc_provider.client_secret,
        "SAMVERKAN_OIDC_REDIRECT_URL": f"http://127.0.0.1:{web_port}/oidc/callback",
        "SAMVERKAN_OIDC_MUNICIPALITY": "exempel",
        "SAMVERKAN_TEST_WEB_SECRET": "webbtestets-hemlighet",
    }
    with LiveServer(
        "tests.browser.oidc_app:create_app", web_port, directory, env, factory=True
    ) as server:
        yield server


def sign_in_at_provider(page: Any, email: str) -> None:
    wait = WebDriverWait(page, 20)
    wait.until(expected_conditions.presence_of_element_located((By.NAME, "login")))
    page.find_element(By.NAME, "login").send_keys(email)
    page.find_element(By.NAME, "password").send_keys("vilket-som-helst")
    page.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "input[value=consent]"))
    )
    page.find_element(By.CSS_SELECTOR, "button[type=submit]").click()


def test_a_coordinator_signs_in_with_the_municipality_account(page: Any, app: LiveServer) -> None:
    page.get(app.url + "/")
    assert axe_violations(page) == []
    page.find_element(By.LINK_TEXT, "Logga in med kommunens konto").click()
    sign_in_at_provider(page, "elin.bergstrom@exempelby.se")
    WebDriverWait(page, 20).until(expected_conditions.url_to_be(app.url + "/"))
    assert "Inloggad som Elin Bergström." in page.find_element(By.TAG_NAME, "main").text
    assert axe_violations(page) == []


def test_an_unknown_address_gets_an_accessible_refusal(page: Any, app: LiveServer) -> None:
    page.get(app.url + "/oidc/login?next=/")
    sign_in_at_provider(page, "okand@exempelby.se")
    WebDriverWait(page, 20).until(expected_conditions.url_contains("/oidc/callback"))
    assert page.find_element(By.TAG_NAME, "h1").text == "Inloggningen nekades"
    assert axe_violations(page) == []
