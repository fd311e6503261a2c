"""Profil: a coordinator uploads a new version of the profile, sees what it would change,
and applies exactly what was previewed. Other roles and other municipalities are refused,
both POSTs check the CSRF token, the preview writes nothing, and an apply whose text or
database is not the previewed one is refused."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

import models
from service.profilepreview import AUDIT_ACTION
from tests.profiles import EXAMPLE, load, snapshot
from tests.web.conftest import NOW, World, csrf_of

KARIN = (
    "  - key: karin-ek  # tillförordnad rektor på Centralskolan under Anders Holms ledighet\n"
    "    name: Karin Ek\n"
    "    email: karin.ek@exempelby.se\n"
    "    roles:\n"
    "      - {role: rektor, unit: centralskolan, from: 2027-02-01, to: 2027-06-30}\n"
)
ORIGINAL = EXAMPLE.read_bytes()
WITHOUT_KARIN = ORIGINAL.decode().replace(KARIN, "").encode()
HIDDEN = re.compile(r'<input type="hidden" name="(text|sha256|state)" value="([^"]*)">')


@pytest.fixture(autouse=True)
def horizon(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAMVERKAN_HORIZON_DAYS", "120")  # as the world was loaded


def engine_of(world: World) -> Engine:
    engine = world.sessions.kw["bind"]
    assert isinstance(engine, Engine)
    return engine


def upload(client: TestClient, raw: bytes, with_csrf: bool = True) -> tuple[int, str]:
    form = {"csrf": csrf_of(client.get("/logga-in").text)} if with_csrf else {}
    answer = client.post(
        "/profil/granska", data=form, files={"fil": ("exempel.yaml", raw, "application/yaml")}
    )
    return answer.status_code, answer.text


def apply_form(html: str) -> dict[str, str]:
    fields = dict(HIDDEN.findall(html))
    assert set(fields) == {"text", "sha256", "state"}, "the preview has no apply form"
    return fields | {"csrf": csrf_of(html)}


def audits(world: World) -> list[models.WebAudit]:
    with world.sessions() as session:
        return list(
            session.scalars(select(models.WebAudit).where(models.WebAudit.action == AUDIT_ACTION))
        )


def test_a_coordinator_previews_then_applies_what_was_previewed(
    world: World, signed_in: dict[str, TestClient]
) -> None:
    client = signed_in["samordnare"]
    page = client.get("/profil")
    assert page.status_code == 200 and 'type="file"' in page.text
    before = snapshot(engine_of(world))
    status, html = upload(client, WITHOUT_KARIN)
    assert status == 200, html
    assert "Ändrade mottagare" in html and "Faller bort: Karin Ek" in html
    assert "Karin Ek: borttagen" in html
    assert snapshot(engine_of(world)) == before  # the preview wrote nothing
    done = client.post("/profil/verkstall", data=apply_form(html))
    assert done.status_code == 303 and done.headers["location"] == "/profil?klart=1"
    assert "Den nya profilen är inläst" in client.get("/profil?klart=1").text
    with world.sessions() as session:
        karin = session.scalars(select(models.Person).where(models.Person.key == "karin-ek"))
        assert not karin.one().active
    (audit,) = audits(world)
    assert audit.detail["sha256"] == hashlib.sha256(WITHOUT_KARIN).hexdigest()
    with world.sessions() as session:
        elin = session.get_one(models.Person, audit.actor_id)
    assert elin.key == "elin-bergstrom" and audit.at == NOW
    # The same file again now changes nothing.
    status, html = upload(client, WITHOUT_KARIN)
    assert status == 200 and "ändrar ingenting" in html


def test_an_unchanged_profile_shows_no_changes(
    world: World, signed_in: dict[str, TestClient]
) -> None:
    world.clock.current = NOW - dt.timedelta(days=30)  # the moment the world was loaded
    status, html = upload(signed_in["samordnare"], ORIGINAL)
    assert status == 200 and "ändrar ingenting" in html


@pytest.mark.parametrize("kind", ["rektor", "familj", "mottagning", "ingenroll"])
def test_other_roles_are_refused_both_steps(
    world: World, signed_in: dict[str, TestClient], kind: str
) -> None:
    client = signed_in[kind]
    before = snapshot(engine_of(world))
    assert client.get("/profil").status_code == 403
    assert upload(client, WITHOUT_KARIN)[0] == 403
    preview = upload(signed_in["samordnare"], WITHOUT_KARIN)[1]
    form = apply_form(preview) | {"csrf": csrf_of(client.get("/logga-in").text)}
    assert client.post("/profil/verkstall", data=form).status_code == 403
    assert snapshot(engine_of(world)) == before


def test_another_municipalitys_coordinator_may_not_load_this_profile(
    world: World, signed_in: dict[str, TestClient]
) -> None:
    client = signed_in["annan"]
    before = snapshot(engine_of(world))
    status, html = upload(client, WITHOUT_KARIN)
    assert status == 403 and "inte din kommun" in html
    assert "Karin" not in html and "Exempelby" not in html
    preview = upload(signed_in["samordnare"], WITHOUT_KARIN)[1]
    form = apply_form(preview) | {"csrf": csrf_of(client.get("/profil").text)}
    assert client.post("/profil/verkstall", data=form).status_code == 403
    assert snapshot(engine_of(world)) == before and not audits(world)


def test_both_posts_check_the_csrf_token(world: World, signed_in: dict[str, TestClient]) -> None:
    client = signed_in["samordnare"]
    before = snapshot(engine_of(world))
    assert upload(client, WITHOUT_KARIN, with_csrf=False)[0] == 403
    form = apply_form(upload(client, WITHOUT_KARIN)[1])
    assert client.post("/profil/verkstall", data=form | {"csrf": "x" * 43}).status_code == 403
    del form["csrf"]
    assert client.post("/profil/verkstall", data=form).status_code == 403
    assert snapshot(engine_of(world)) == before


def test_an_apply_of_other_text_than_previewed_is_refused(
    world: World, signed_in: dict[str, TestClient]
) -> None:
    client = signed_in["samordnare"]
    before = snapshot(engine_of(world))
    form = apply_form(upload(client, WITHOUT_KARIN)[1])
    other = base64.b64encode(ORIGINAL.replace(b"Karin Ek", b"Karin Eke")).decode()
    answer = client.post("/profil/verkstall", data=form | {"text": other})
    assert answer.status_code == 409 and "granska ändringarna på nytt" in answer.text
    assert client.post("/profil/verkstall", data=form | {"text": "@@"}).status_code == 400
    assert snapshot(engine_of(world)) == before and not audits(world)


def test_an_apply_after_the_database_changed_is_refused(
    world: World, signed_in: dict[str, TestClient], tmp_path: object
) -> None:
    client = signed_in["samordnare"]
    form = apply_form(upload(client, WITHOUT_KARIN)[1])
    # Another load in between (the same profile, at a later moment: the plan moves on).
    load(world.sessions, EXAMPLE, NOW, horizon_days=200)
    between = snapshot(engine_of(world))
    answer = client.post("/profil/verkstall", data=form)
    assert answer.status_code == 409 and "ändrats sedan granskningen" in answer.text
    assert snapshot(engine_of(world)) == between and not audits(world)


BAD = [
    (
        "unknown role",
        b"      - {role: rektor, unit: kyrkbacksskolan}\n",
        b"      - {role: rektorn, unit: kyrkbacksskolan}\n",
        "exempel.yaml:181: people[",
    ),
    (
        "personal number",
        b"    name: Karin Ek\n",
        b"    name: Karin 191212121212\n",
        "exempel.yaml:173:",
    ),
    (
        "not yaml",
        b"    name: Karin Ek\n",
        b"    name: [Karin Ek\n",
        "exempel.yaml:174: YAML syntax",
    ),
    (
        "not utf-8",
        b"    name: Karin Ek\n",
        b"    name: Karin \xff\n",
        "exempel.yaml:173: the file is not UTF-8",
    ),
]


@pytest.mark.parametrize(("what", "old", "new", "where"), BAD, ids=[b[0] for b in BAD])
def test_a_bad_profile_is_refused_with_file_and_line(
    world: World, signed_in: dict[str, TestClient], what: str, old: bytes, new: bytes, where: str
) -> None:
    before = snapshot(engine_of(world))
    assert ORIGINAL.count(old) == 1
    status, html = upload(signed_in["samordnare"], ORIGINAL.replace(old, new))
    assert status == 400 and where in html and "Inget har ändrats" in html
    assert str(EXAMPLE.parent) not in html  # no folder of the server
    assert "191212121212" not in html
    assert snapshot(engine_of(world)) == before


def test_an_empty_or_too_large_file_is_refused(
    world: World, signed_in: dict[str, TestClient]
) -> None:
    client = signed_in["samordnare"]
    assert upload(client, b"") == (400, upload(client, b"")[1])
    status, html = upload(client, b"#" * (2 * 1024 * 1024 + 1))
    assert status == 413 and "högst 2 MB" in html
