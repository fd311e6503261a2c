"""The web app in a real Chromium: a coordinator signs in with the password form and opens
the year wheel, the to-do list, the delivery log and the people page. axe-core checks every
page reached (WCAG 2.1 A and AA: no violations). The wheel and the to-do list (with what is
overdue) are kept as screenshots in var/screenshots/.

The database holds the example municipality (profiles/exempel.yaml) loaded on 21 March 2027,
a report and a case; the app's clock stands at 20 May 2027, so the spring meeting (April) was
never booked and the case's first meeting is late.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import select

import models
from models import Base
from models.db import make_engine, make_sessionmaker, transaction
from samverkan import cases
from samverkan.cli_web import set_password
from tests.fixtures.browser import LiveServer, axe_violations, screenshot
from tests.fixtures.services import free_port
from tests.profiles import EXAMPLE, load

NOW = dt.datetime(2027, 5, 20, 7, 0, tzinfo=dt.UTC)
COORDINATOR = "elin"  # Elin Bergström, samordnare


@dataclass
class Site:
    server: LiveServer
    password: str
    case: str

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    directory = tmp_path_factory.mktemp("web-app")
    url = f"sqlite:///{directory / 'samverkan.db'}"
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    sessions = make_sessionmaker(engine)
    load(sessions, EXAMPLE, NOW - dt.timedelta(days=60))
    with transaction(sessions) as session:
        exempel = session.scalars(
            select(models.Municipality.id).where(models.Municipality.key == "exempel")
        ).one()
        elin = session.scalars(
            select(models.Person).where(
                models.Person.municipality_id == exempel, models.Person.key == "elin-bergstrom"
            )
        ).one()
        password = set_password(session, elin, COORDINATOR, NOW, reset=False)
        cases.register_report(
            session,
            exempel,
            cases.ReportRequest(unit="bjorkhagsskolan", reporter="per-sundberg", district="norr"),
            NOW - dt.timedelta(days=3),
        )
        case = cases.open_case(
            session,
            exempel,
            cases.CaseRequest(
                owner="ingrid-mattsson",
                by="ingrid-mattsson",
                school="kyrkbacksskolan",
                family_worker="emma-sandberg",
                known_on=(NOW - dt.timedelta(days=20)).date(),
            ),
            NOW - dt.timedelta(days=20),
        ).reference
    engine.dispose()
    env = {
        "SAMVERKAN_DATABASE_URL": url,
        "SAMVERKAN_VAR_DIR": str(directory),
        "SAMVERKAN_TEST_WEB_NOW": NOW.isoformat(),
    }
    server = LiveServer("tests.browser.web_app:create_app", free_port(), directory, env, True)
    with server:
        yield Site(server, password, case)


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
