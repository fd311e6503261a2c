"""OpenID Connect sign-in installed in the web app (web.app.create_app + web.oidc.install),
against the real provider: the person gets a session of the app, and the app's own rules
(a disabled account) still hold."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import models
from models.db import make_engine, make_sessionmaker, transaction
from tests.clocks import FixedClock
from tests.fixtures.oidc import (
    TESTSERVER_CALLBACK,
    OidcProvider,
    ProviderLogin,
    callback_parameters,
    people_database,
)
from web.app import create_app
from web.config import WebConfig
from web.oidc import OidcConfig, install

NOW = dt.datetime(2027, 3, 1, 9, 0, tzinfo=dt.UTC)
ELIN = "elin.bergstrom@exempelby.se"  # samordnare in Exempelby


@pytest.fixture
def sessions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(people_database(tmp_path_factory.mktemp("oidc-web")))
    try:
        yield make_sessionmaker(engine)
    finally:
        engine.dispose()


@pytest.fixture
def client(oidc_provider: OidcProvider, sessions: sessionmaker[Session]) -> Iterator[TestClient]:
    app = create_app(sessions, WebConfig(secure_cookies=False, clock=FixedClock(NOW)))
    install(
        app,
        OidcConfig(
            issuer=oidc_provider.issuer,
            client_id=oidc_provider.client_id,
            client_secret=oidc_provider.client_secret,
            redirect_url=TESTSERVER_CALLBACK,
            municipality="exempel",
        ),
    )
    with TestClient(app, follow_redirects=False) as test_client:
        yield test_client


@pytest.fixture
def person(oidc_provider: OidcProvider) -> Iterator[ProviderLogin]:
    login = ProviderLogin(oidc_provider)
    try:
        yield login
    finally:
        login.close()


def through_provider(client: TestClient, person: ProviderLogin, email: str) -> int:
    start = client.get("/oidc/login", params={"next": "/att-gora"})
    assert start.status_code == 303
    back = person.authorize(start.headers["location"], email)
    answer = client.get(callback_parameters(back))
    return answer.status_code


def test_a_coordinator_signs_in_to_the_app(client: TestClient, person: ProviderLogin) -> None:
    assert client.get("/att-gora").status_code != 200
    assert through_provider(client, person, ELIN) == 303
    page = client.get("/att-gora")
    assert page.status_code == 200
    assert "Elin Bergström" in page.text


def test_a_disabled_account_is_refused(
    client: TestClient, person: ProviderLogin, sessions: sessionmaker[Session]
) -> None:
    assert through_provider(client, person, ELIN) == 303
    with transaction(sessions) as session:
        account = session.scalars(
            select(models.Account).where(models.Account.username == ELIN)
        ).one()
        account.disabled = True
    client.cookies.clear()
    assert through_provider(client, person, ELIN) == 403
    assert client.get("/att-gora").status_code != 200


def test_an_unknown_address_is_refused_in_the_app_layout(
    client: TestClient, person: ProviderLogin
) -> None:
    start = client.get("/oidc/login")
    back = person.authorize(start.headers["location"], "okand@exempelby.se")
    answer = client.get(callback_parameters(back))
    assert answer.status_code == 403
    assert "<h1>Det gick inte</h1>" in answer.text
    assert "okand" not in answer.text
