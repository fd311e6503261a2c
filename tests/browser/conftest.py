"""The web app the browser tests drive, started once for the session: the real app
(`tests/browser/web_app.py`) under uvicorn on `web_port`, with OpenID Connect sign-in through
the test provider (tests/fixtures/oidc.py).

The database holds the example municipality (profiles/exempel.yaml) loaded on 21 March 2027,
a report and a case, and an account for the coordinator; the app's clock stands at 20 May 2027,
so the spring meeting (April) was never booked and the case's first meeting is late.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import select

import models
from models import Base
from models.db import make_engine, make_sessionmaker, transaction
from samverkan.cli.webapp import set_password
from service import cases
from service.desk import Desk
from tests.fixtures.browser import LiveServer
from tests.fixtures.oidc import OidcProvider
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


@pytest.fixture(scope="session")
def site(
    tmp_path_factory: pytest.TempPathFactory, web_port: int, oidc_provider: OidcProvider
) -> Iterator[Site]:
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
            Desk.open(session, exempel, "per-sundberg", NOW - dt.timedelta(days=3)),
            cases.ReportRequest(unit="bjorkhagsskolan", reporter="per-sundberg", district="norr"),
        )
        case = cases.open_case(
            Desk.open(session, exempel, "ingrid-mattsson", NOW - dt.timedelta(days=20)),
            cases.CaseRequest(
                owner="ingrid-mattsson",
                school="kyrkbacksskolan",
                family_worker="emma-sandberg",
                known_on=(NOW - dt.timedelta(days=20)).date(),
            ),
        ).reference
    engine.dispose()
    env = {
        "SAMVERKAN_DATABASE_URL": url,
        "SAMVERKAN_VAR_DIR": str(directory),
        "SAMVERKAN_TEST_WEB_NOW": NOW.isoformat(),
        "SAMVERKAN_OIDC_ISSUER": oidc_provider.issuer,
        "SAMVERKAN_OIDC_CLIENT_ID": oidc_provider.client_id,
        "SAMVERKAN_OIDC_CLIENT_SECRET": oidc_provider.client_secret,
        "SAMVERKAN_OIDC_REDIRECT_URL": f"http://127.0.0.1:{web_port}/oidc/callback",
        "SAMVERKAN_OIDC_MUNICIPALITY": "exempel",
    }
    server = LiveServer("tests.browser.web_app:create_app", web_port, directory, env, True)
    with server:
        yield Site(server, password, case)
