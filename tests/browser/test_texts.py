"""Texter in a real Chromium: the list and a text's page meet WCAG 2.1 AA (axe-core), and
typing in the form shows the live preview (htmx) on sample data; saving keeps the text."""

from __future__ import annotations

from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser.conftest import Site
from tests.browser.test_pages import sign_in
from tests.fixtures.browser import axe_violations

NAME = "utvardering-underlag"


@pytest.fixture(scope="module")
def coordinator(browser: Any, site: Site) -> Any:
    browser.delete_all_cookies()
    sign_in(browser, site)
    return browser


def test_the_list_of_texts_meets_wcag_21_aa(coordinator: Any, site: Site) -> None:
    coordinator.get(site.url + "/texter")
    assert coordinator.find_element(By.TAG_NAME, "h1").text == "Texter"
    assert coordinator.find_elements(By.CSS_SELECTOR, f'a[href="/texter/{NAME}"]')
    assert axe_violations(coordinator) == []


def test_a_text_s_page_previews_as_one_types_and_meets_wcag_21_aa(
    coordinator: Any, site: Site
) -> None:
    coordinator.get(site.url + f"/texter/{NAME}")
    assert axe_violations(coordinator) == []
    subject = coordinator.find_element(By.ID, "falt-subject")
    subject.clear()
    subject.send_keys("Vår rubrik {{ occurrence.key }}")
    WebDriverWait(coordinator, 20).until(
        expected_conditions.text_to_be_present_in_element(
            (By.CSS_SELECTOR, "#forhandsvisning .preview-subject"), "Vår rubrik 20"
        )
    )
    assert axe_violations(coordinator) == []
    subject.send_keys(" {{ barnets_namn }}")
    WebDriverWait(coordinator, 20).until(
        expected_conditions.text_to_be_present_in_element(
            (By.CSS_SELECTOR, "#forhandsvisning .problems"), "okänt fält ”barnets_namn”"
        )
    )
    assert axe_violations(coordinator) == []
    subject.send_keys("\b" * len(" {{ barnets_namn }}"))
    coordinator.find_element(By.CSS_SELECTOR, "#textform button[type=submit]").click()
    WebDriverWait(coordinator, 20).until(expected_conditions.url_contains("klart=sparat"))
    assert "Texten är sparad" in coordinator.find_element(By.TAG_NAME, "main").text
    assert axe_violations(coordinator) == []
