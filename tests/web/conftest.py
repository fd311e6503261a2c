"""A web app on a real database (SQLite, and PostgreSQL when SAMVERKAN_TEST_DATABASE_URL is
set) holding two municipalities: Exempelby (the example profile) and Lilla kommunen, with a
report and a case in Exempelby and an account for each kind of user the permission test needs.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import models
from models.db import make_engine, make_sessionmaker, transaction
from samverkan.cli.webapp import set_password
from service import cases
from service.desk import Desk
from tests.fixtures.services import DATABASES, PostgresSchema, create_schema
from tests.profiles import EXAMPLE, load, write_variant
from web import auth
from web.app import create_app
from web.config import WebConfig

NOW = dt.datetime(2027, 3, 1, 9, 0, tzinfo=dt.UTC)
BASE = "https://samverkan.test"

# user name -> (municipality key, person key): one of each kind the permission matrix names.
USERS = {
    "samordnare": ("exempel", "elin-bergstrom"),  # coordinator
    "rektor": ("exempel", "ingrid-mattsson"),  # rektor of one school (Kyrkbacksskolan)
    "familj": ("exempel", "emma-sandberg"),  # family worker
    "mottagning": ("exempel", "linda-karlsson"),  # intake officer, district Norr
    "ingenroll": ("exempel", "anders-holm"),  # on leave on NOW: no role that day
    "annan": ("liten", "anna"),  # coordinator of another municipality
}


@pytest.fixture(scope="session", autouse=True)
def cheap_hashes() -> Iterator[None]:
    """argon2 at its smallest cost: the tests check what is hashed and checked, not its cost
    (the service's default takes seconds on a busy two-core machine)."""
    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(auth, "_hasher", cheap)
        patch.setattr(auth, "_DUMMY_HASH", cheap.hash("dummy"))
        yield


@dataclass
class Clock:
    current: dt.datetime

    def now(self) -> dt.datetime:
        return self.current


@dataclass
class World:
    sessions: sessionmaker[Session]
    passwords: dict[str, str]
    clock: Clock
    report: str
    case: str

    def client(self, **config: object) -> TestClient:
        app = create_app(self.sessions, WebConfig(clock=self.clock, **config))  # type: ignore[arg-type]
        return TestClient(app, base_url=BASE, follow_redirects=False)


def municipality_id(session: Session, key: str) -> int:
    return session.scalars(
        select(models.Municipality.id).where(models.Municipality.key == key)
    ).one()


def build(sessions: sessionmaker[Session], folder: Path) -> tuple[dict[str, str], str, str]:
    """Load both municipalities, make the accounts, a report and a case; (passwords, refs)."""
    load(sessions, EXAMPLE, NOW - dt.timedelta(days=30), horizon_days=120)
    other = write_variant(
        folder,
        "      - role: elevhalsochef\n",
        "      - role: elevhalsochef\n      - role: samordnare\n",
    )
    load(sessions, other, NOW - dt.timedelta(days=30), horizon_days=120)
    passwords = {}
    with transaction(sessions) as session:
        for username, (town, key) in USERS.items():
            person = session.scalars(
                select(models.Person).where(
                    models.Person.municipality_id == municipality_id(session, town),
                    models.Person.key == key,
                )
            ).one()
            passwords[username] = set_password(session, person, username, NOW, reset=False)
        exempel = municipality_id(session, "exempel")
        report = cases.register_report(
            Desk.open(session, exempel, "per-sundberg", NOW - dt.timedelta(days=3)),
            cases.ReportRequest(unit="bjorkhagsskolan", reporter="per-sundberg", district="norr"),
        ).reference
        case = cases.open_case(
            Desk.open(session, exempel, "ingrid-mattsson", NOW - dt.timedelta(days=20)),
            cases.CaseRequest(
                owner="ingrid-mattsson",
                school="kyrkbacksskolan",
                family_worker="emma-sandberg",
                guardians=("vh.hemma@hem.example",),
                known_on=(NOW - dt.timedelta(days=20)).date(),
            ),
        ).reference
    return passwords, report, case


@pytest.fixture(scope="session")
def sqlite_template(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, tuple[dict[str, str], str, str]]:
    """The world built once in a SQLite file; each test gets its own copy (building takes
    seconds: two profiles planned, six argon2 hashes)."""
    folder = tmp_path_factory.mktemp("web-world")
    url = f"sqlite:///{folder / 'samverkan.db'}"
    create_schema(url)
    engine = make_engine(url)
    try:
        built = build(make_sessionmaker(engine), folder)
    finally:
        engine.dispose()
    return folder / "samverkan.db", built


@pytest.fixture(params=DATABASES)
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    if request.param == "sqlite":
        template, built = request.getfixturevalue("sqlite_template")
        shutil.copyfile(template, tmp_path / "samverkan.db")
        url = f"sqlite:///{tmp_path / 'samverkan.db'}"
    else:
        schema: PostgresSchema = request.getfixturevalue("postgres_schema")
        url = schema.url
        create_schema(url)
        built = None
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    if built is None:
        built = build(sessions, tmp_path)
    passwords, report, case = built
    try:
        yield World(sessions, passwords, Clock(NOW), report, case)
    finally:
        engine.dispose()


CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def sign_in(client: TestClient, username: str, password: str) -> None:
    form = client.get("/logga-in")
    answer = client.post(
        "/logga-in",
        data={"anvandarnamn": username, "losenord": password, "csrf": csrf_of(form.text)},
    )
    assert answer.status_code == 303, answer.text


@pytest.fixture
def signed_in(world: World) -> Iterator[dict[str, TestClient]]:
    clients = {}
    for username in USERS:
        client = world.client()
        sign_in(client, username, world.passwords[username])
        clients[username] = client
    yield clients
    for client in clients.values():
        client.close()


REPLY = "550 5.1.1 mailbox unavailable"


def failed_row(sessions: sessionmaker[Session], town: str = "exempel") -> int:
    """Make one routine message of `town` a permanent failure (as the worker would); its id."""
    with transaction(sessions) as session:
        n = models.Notification
        row = session.scalars(
            select(n)
            .where(n.municipality_id == municipality_id(session, town), n.routine_key != "case")
            .where(n.routine_key != "report")
            .order_by(n.id)
        ).first()
        assert row is not None
        row.status = models.Status.FAILED
        row.attempts = 1
        row.smtp_reply = REPLY
        row.last_error = REPLY
        session.add(
            models.DeliveryAttempt(
                notification_id=row.id,
                number=1,
                at=NOW - dt.timedelta(hours=2),
                duration_ms=5,
                outcome="permanent",
                smtp_code=550,
                reply=REPLY,
                worker="test",
            )
        )
        return row.id
