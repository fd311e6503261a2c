"""The JSON API (/api/): per-system tokens, each endpoint against the CLI, bad input, privacy,
and municipalities kept apart. On the web tests' world (tests/web/conftest.py): Exempelby with
a report and a case, and Lilla kommunen.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import shutil
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

import models
from models.db import make_engine, transaction
from samverkan import cli
from service import apitokens
from tests.profiles import snapshot
from tests.web.conftest import NOW, World, municipality_id

NAME = "Lisa Exempelsson"
DIGITS = "1203151236"  # a valid personnummer (real date, right check digit)
CANARY = f"{NAME} 120315-1236"
CANARY_ADDRESS = "lisa.120315.1236@hem.se"


def new_token(world: World, person: str, town: str = "exempel", system: str = "arende") -> str:
    with transaction(world.sessions) as session:
        return apitokens.new_token(session, municipality_id(session, town), person, system, NOW)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def engine_of(world: World) -> Engine:
    bind = world.sessions.kw["bind"]
    assert isinstance(bind, Engine)
    return bind


def rows(world: World) -> dict[str, list[tuple[object, ...]]]:
    return snapshot(engine_of(world))


REPORT_BODY = {"unit": "bjorkhagsskolan", "reporter": "per-sundberg", "district": "norr"}
CASE_BODY = {"owner": "ingrid-mattsson", "school": "kyrkbacksskolan"}
CONSENT_BODY = {"given_by": "vårdnadshavarna", "scope": "samverkansmöte om skolgången"}
BOOKING_BODY = {"date": "2027-03-05", "time": "13:00", "place": "stadshuset-linnen"}


# --- tokens -------------------------------------------------------------------------------------


def test_a_request_without_a_token_or_with_a_wrong_one_is_refused_with_401(world: World) -> None:
    client = world.client()
    new_token(world, "ingrid-mattsson")
    before = rows(world)
    for headers in [
        {},
        bearer("x" * 43),
        bearer(""),
        {"Authorization": "Basic dXNlcjpwYXNz"},
        bearer("y" * 5000),
    ]:
        for method, path in [("GET", f"/api/cases/{world.case}"), ("POST", "/api/reports")]:
            answer = client.request(method, path, headers=headers, json=REPORT_BODY)
            assert answer.status_code == 401, (headers, path)
            assert answer.headers["content-type"] == "application/json"
            assert answer.headers["www-authenticate"] == "Bearer"
            assert set(answer.json()) == {"error", "field"}
    assert rows(world) == before


def test_a_valid_token_acts_and_a_revoked_one_is_refused(world: World) -> None:
    token = new_token(world, "ingrid-mattsson")
    client = world.client()
    assert client.get(f"/api/cases/{world.case}", headers=bearer(token)).status_code == 200
    with transaction(world.sessions) as session:
        revoked = apitokens.revoke_tokens(
            session, municipality_id(session, "exempel"), "arende", NOW
        )
    assert revoked == 1
    answer = client.get(f"/api/cases/{world.case}", headers=bearer(token))
    assert answer.status_code == 401
    assert answer.json()["field"] is None


def test_the_token_is_kept_only_as_its_digest(world: World) -> None:
    token = new_token(world, "ingrid-mattsson")
    dump = repr(rows(world))
    assert token not in dump
    assert apitokens.digest(token) in dump


def test_a_token_of_a_person_who_left_the_profile_is_refused(world: World) -> None:
    token = new_token(world, "ingrid-mattsson")
    with transaction(world.sessions) as session:
        person = session.scalars(
            select(models.Person).where(models.Person.key == "ingrid-mattsson")
        ).one()
        person.active = False
    assert world.client().get(f"/api/cases/{world.case}", headers=bearer(token)).status_code == 401


def test_a_person_not_entitled_gets_403_and_nothing_changes(world: World) -> None:
    # Per Sundberg is neither the case's owner, party nor the report's intake unit.
    token = new_token(world, "emma-sandberg")
    client = world.client()
    before = rows(world)
    for path, body in [
        (f"/api/cases/{world.case}/consent", CONSENT_BODY),
        (f"/api/cases/{world.case}/close", None),
        (f"/api/reports/{world.report}/receipt", None),
    ]:
        answer = client.post(path, headers=bearer(token), json=body)
        assert answer.status_code == 403, path
        assert answer.json()["error"]
    assert client.get(f"/api/reports/{world.report}", headers=bearer(token)).status_code == 403
    assert rows(world) == before


def test_a_token_of_one_municipality_never_sees_or_touches_another(world: World) -> None:
    """Lilla kommunen's coordinator's token: Exempelby's report and case do not exist for it."""
    token = new_token(world, "anna", town="liten")
    client = world.client()
    before = rows(world)
    for method, path, body in [
        ("GET", f"/api/cases/{world.case}", None),
        ("GET", f"/api/reports/{world.report}", None),
        ("POST", f"/api/reports/{world.report}/receipt", None),
        ("POST", f"/api/cases/{world.case}/consent", CONSENT_BODY),
        ("POST", f"/api/cases/{world.case}/meetings", BOOKING_BODY),
        ("POST", f"/api/cases/{world.case}/close", None),
    ]:
        answer = client.request(method, path, headers=bearer(token), json=body)
        assert answer.status_code == 404, path
        assert answer.json()["field"] == "reference"
    # Exempelby's units and people are unknown to it too.
    answer = client.post("/api/reports", headers=bearer(token), json=REPORT_BODY)
    assert answer.status_code == 422
    assert answer.json()["field"] == "unit"
    answer = client.post("/api/cases", headers=bearer(token), json=CASE_BODY)
    assert answer.status_code == 422
    assert answer.json()["field"] == "owner"
    assert rows(world) == before


def test_the_audit_names_the_system_and_the_person(world: World) -> None:
    token = new_token(world, "ingrid-mattsson", system="e-tjanst")
    client = world.client()
    assert client.get(f"/api/cases/{world.case}", headers=bearer(token)).status_code == 200
    with world.sessions() as session:
        audit = session.scalars(
            select(models.CaseAudit).order_by(models.CaseAudit.id.desc()).limit(1)
        ).one()
    assert (audit.reference, audit.action, audit.actor) == (
        world.case,
        "api.viewed",
        "ingrid-mattsson",
    )
    assert audit.detail == {"via": "api", "system": "e-tjanst"}


def test_the_api_takes_no_session_cookie_and_no_csrf_token(world: World) -> None:
    from tests.web.conftest import sign_in

    client = world.client()
    sign_in(client, "samordnare", world.passwords["samordnare"])
    assert client.get(f"/api/cases/{world.case}").status_code == 401
    answer = client.post("/api/reports", json=REPORT_BODY)
    assert answer.status_code == 401


def test_the_openapi_document_describes_every_api_route_and_nothing_else(world: World) -> None:
    document = world.client().get("/openapi.json").json()
    paths = document["paths"]
    assert set(paths) == {
        "/api/reports",
        "/api/reports/{reference}",
        "/api/reports/{reference}/receipt",
        "/api/cases",
        "/api/cases/{reference}",
        "/api/cases/{reference}/consent",
        "/api/cases/{reference}/meetings",
        "/api/cases/{reference}/close",
    }
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    for operations in paths.values():
        for operation in operations.values():
            assert operation["security"] == [{"HTTPBearer": []}]
            assert {"401", "403", "404", "422"} <= set(operation["responses"])


# --- each endpoint does what the CLI does -------------------------------------------------------

# (CLI arguments, API method and path, body, person acting, moment): the docs' worked example.
Step = tuple[list[str], str, dict[str, Any] | None, str, dt.datetime]


def _at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(dt.UTC)


def steps(report: str, case: str) -> list[Step]:
    """The flow, where `report` and `case` are the references the flow allocates."""
    return [
        (
            [
                *("report", "register", "--unit", "bjorkhagsskolan", "--reporter", "per-sundberg"),
                *("--district", "norr", "--wants-feedback", "--guardian", "vh@hem.example"),
            ],
            f"POST /api/reports {report}",
            REPORT_BODY | {"wants_feedback": True, "guardians": ["vh@hem.example"]},
            "per-sundberg",
            _at("2027-03-01T10:00+01:00"),
        ),
        (
            ["report", "receive", report, "--by", "linda-karlsson"],
            f"POST /api/reports/{report}/receipt",
            None,
            "linda-karlsson",
            _at("2027-03-01T11:00+01:00"),
        ),
        (
            [
                *("case", "open", "--owner", "per-sundberg", "--by", "per-sundberg"),
                *("--school", "bjorkhagsskolan", "--family-worker", "emma-sandberg"),
                *("--guardian", "vh@hem.example", "--report", report, "--known-on", "2027-03-01"),
            ],
            f"POST /api/cases {case}",
            {
                "owner": "per-sundberg",
                "school": "bjorkhagsskolan",
                "family_worker": "emma-sandberg",
                "guardians": ["vh@hem.example"],
                "report": report,
                "known_on": "2027-03-01",
            },
            "per-sundberg",
            _at("2027-03-02T09:00+01:00"),
        ),
        (
            [
                *("case", "consent", case, "--by", "per-sundberg"),
                *("--given-by", CONSENT_BODY["given_by"], "--scope", CONSENT_BODY["scope"]),
            ],
            f"POST /api/cases/{case}/consent",
            CONSENT_BODY,
            "per-sundberg",
            _at("2027-03-02T10:00+01:00"),
        ),
        (
            [
                *("case", "book", case, "2027-03-10", "13:00", "--by", "per-sundberg"),
                *("--place", "stadshuset-linnen"),
            ],
            f"POST /api/cases/{case}/meetings",
            {"date": "2027-03-10", "time": "13:00", "place": "stadshuset-linnen"},
            "per-sundberg",
            _at("2027-03-02T11:00+01:00"),
        ),
        (
            ["case", "close", case, "--by", "per-sundberg"],
            f"POST /api/cases/{case}/close",
            None,
            "per-sundberg",
            _at("2027-03-05T12:00+01:00"),
        ),
    ]


@pytest.fixture
def cli_world(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_template: Any
) -> Iterator[str]:
    """A second copy of the world's database (SQLite), with `samverkan` pointed at it."""
    import worker.runtime

    if engine_of(world).dialect.name != "sqlite":
        pytest.skip("the CLI's copy is made from the SQLite template")
    template, _ = sqlite_template
    shutil.copyfile(template, tmp_path / "cli.db")
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    for key in [k for k in os.environ if k.startswith("SAMVERKAN_")]:
        if not key.startswith("SAMVERKAN_TEST_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("SAMVERKAN_DATABASE_URL", url)
    monkeypatch.setenv("SAMVERKAN_LOG_LEVEL", "WARNING")
    monkeypatch.setattr(worker.runtime, "_settings", None)
    monkeypatch.setattr(worker.runtime, "_runtime", None)
    yield url
    if worker.runtime._runtime is not None:
        worker.runtime._runtime.close()


def run_cli(*args: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli.invoke(list(args))
    return code, out.getvalue() + err.getvalue()


# What differs by construction: the API's tokens, the web app's cookie key (made by the app),
# the audit's naming of the system, and each message's random Message-ID.
def comparable(found: dict[str, list[tuple[object, ...]]]) -> dict[str, list[tuple[object, ...]]]:
    found = {n: table for n, table in found.items() if n not in {"api_token", "web_secret"}}
    found["case_audit"] = sorted(
        (
            tuple(
                {k: v for k, v in c.items() if k not in {"via", "system"}}
                if isinstance(c, dict)
                else c
                for c in row
            )
            for row in found["case_audit"]
        ),
        key=repr,
    )
    return found


def message_ids(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.scalars(select(models.Notification.message_id)))


def test_each_endpoint_does_exactly_what_the_cli_command_does(world: World, cli_world: str) -> None:
    report, case = "2027-0003", "2027-0004"  # the world holds 2027-0001 and -0002
    client = world.client()
    tokens = {
        person: new_token(world, person) for person in {step[3] for step in steps(report, case)}
    }
    cli_engine = make_engine(cli_world)
    try:
        for args, target, body, person, moment in steps(report, case):
            code, printed = run_cli(*args, "-m", "exempel", "--now", moment.isoformat())
            assert code == 0, printed
            world.clock.current = moment
            method, path, *made = target.split()
            answer = client.request(method, path, headers=bearer(tokens[person]), json=body)
            assert answer.status_code in (200, 201), answer.text
            assert answer.json()["reference"] == (made[0] if made else path.split("/")[3])
            assert answer.json()["lines"] == printed.strip().splitlines()
        assert _without_message_ids(comparable(rows(world))) == _without_message_ids(
            comparable(snapshot(cli_engine))
        )
    finally:
        cli_engine.dispose()


def _without_message_ids(found: dict[str, list[tuple[object, ...]]]) -> dict[str, Any]:
    """Every row, with strings that look like a Message-ID (<…@…>) blanked."""

    def blank(value: object) -> object:
        if isinstance(value, str) and value.startswith("<") and value.endswith(">"):
            return "<message-id>"
        return value

    return {
        name: sorted((tuple(blank(v) for v in row) for row in table), key=repr)
        for name, table in found.items()
    }


def test_the_status_routes_show_state_and_messages_but_no_notes_and_no_addresses(
    world: World,
) -> None:
    token = new_token(world, "ingrid-mattsson")
    client = world.client()
    with transaction(world.sessions) as session:
        from service import cases
        from service.desk import Desk

        desk = Desk.open(session, municipality_id(session, "exempel"), "ingrid-mattsson", NOW)
        cases.add_note(desk, world.case, "Hemlig anteckning om hemmet")
    answer = client.get(f"/api/cases/{world.case}", headers=bearer(token))
    assert answer.status_code == 200
    body = answer.json()
    assert body["reference"] == world.case and body["state"] == "open"
    assert body["owner"] == "ingrid-mattsson" and body["messages"]
    assert "notes" not in body
    assert "Hemlig" not in answer.text and "hem.example" not in answer.text
    # A case's reference is not a report's, and the other way round.
    assert client.get(f"/api/reports/{world.case}", headers=bearer(token)).status_code == 404
    report_token = new_token(world, "linda-karlsson", system="mottagning")
    answer = client.get(f"/api/reports/{world.report}", headers=bearer(report_token))
    assert answer.status_code == 200
    assert set(answer.json()) == {"reference", "state", "messages"}
    assert client.get(f"/api/cases/{world.report}", headers=bearer(report_token)).status_code == 404


# --- bad input ----------------------------------------------------------------------------------

# (path, body, field named): each refused with 422, nothing changed.
BAD = [
    ("/api/reports", {**REPORT_BODY, "unit": "ingen-skola"}, "unit"),
    ("/api/reports", {**REPORT_BODY, "reporter": "ingen"}, "reporter"),
    ("/api/reports", {**REPORT_BODY, "district": "ingenstans"}, "district"),
    ("/api/reports", {**REPORT_BODY, "guardians": ["inte en adress"]}, "guardians"),
    ("/api/reports", {"unit": "bjorkhagsskolan", "district": "norr"}, "reporter"),
    ("/api/reports", {**REPORT_BODY, "acute": "kanske"}, "acute"),
    ("/api/reports", {**REPORT_BODY, "okänt": 1}, "okänt"),
    ("/api/reports", {**REPORT_BODY, "unit": ""}, "unit"),
    ("/api/reports", {**REPORT_BODY, "unit": "a\x00b"}, "unit"),
    ("/api/cases", {**CASE_BODY, "owner": "ingen"}, "owner"),
    ("/api/cases", {**CASE_BODY, "owner": "emma-sandberg", "owner_role": "rektor"}, "owner"),
    ("/api/cases", {**CASE_BODY, "school": "ifo"}, "school"),
    ("/api/cases", {**CASE_BODY, "family_worker": "ingen"}, "family_worker"),
    ("/api/cases", {**CASE_BODY, "staff": ["ingen"]}, "staff"),
    ("/api/cases", {**CASE_BODY, "pupil": "inte en adress"}, "pupil"),
    ("/api/cases", {**CASE_BODY, "known_on": "2027-02-30"}, "known_on"),
    ("/api/cases", {**CASE_BODY, "known_on": "9999-01-01"}, "known_on"),
    ("/api/cases", {**CASE_BODY, "known_on": "2027-12-01"}, "known_on"),
    ("/api/cases", {**CASE_BODY, "report": "2099-0001"}, "report"),
    ("/api/cases/{case}/consent", {"scope": "x"}, "given_by"),
    ("/api/cases/{case}/consent", {**CONSENT_BODY, "given_by": "  "}, "given_by"),
    ("/api/cases/{case}/consent", {**CONSENT_BODY, "given_on": "2027-05-01"}, "given_on"),
    ("/api/cases/{case}/meetings", {**BOOKING_BODY, "time": "25:00"}, "time"),
    ("/api/cases/{case}/meetings", {**BOOKING_BODY, "date": "1999-01-01"}, "date"),
    ("/api/cases/{case}/meetings", {**BOOKING_BODY, "place": "kafeet"}, "place"),
    ("/api/cases/{case}/meetings", {**BOOKING_BODY, "meeting": 0}, "meeting"),
    ("/api/cases/2027-x/close", None, "reference"),
]


@pytest.mark.parametrize(("path", "body", "field"), BAD, ids=[f"{b[0]}:{b[2]}" for b in BAD])
def test_bad_input_is_refused_with_422_naming_the_field_and_changes_nothing(
    world: World, path: str, body: dict[str, Any] | None, field: str
) -> None:
    token = new_token(world, "ingrid-mattsson")
    client = world.client()
    before = rows(world)
    answer = client.post(path.format(case=world.case), headers=bearer(token), json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == field
    assert rows(world) == before


def test_a_booking_before_consent_is_a_conflict_and_changes_nothing(world: World) -> None:
    token = new_token(world, "ingrid-mattsson")
    client = world.client()
    before = rows(world)
    answer = client.post(
        f"/api/cases/{world.case}/meetings", headers=bearer(token), json=BOOKING_BODY
    )
    assert answer.status_code == 409
    assert "consent" in answer.json()["error"] and answer.json()["field"] is None
    assert rows(world) == before


def test_a_body_that_is_not_json_is_refused_with_422(world: World) -> None:
    token = new_token(world, "ingrid-mattsson")
    answer = world.client().post(
        "/api/reports",
        headers=bearer(token) | {"content-type": "application/json"},
        content=b"{not json",
    )
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/json"


# --- privacy: the canary in every string field --------------------------------------------------


def string_fields() -> list[tuple[str, str, dict[str, Any]]]:
    """(path, field, body) for every string field of every request body, from the OpenAPI
    document, so a new field is covered without touching this test."""
    from web.api import openapi_document

    document = openapi_document()
    schemas = document["components"]["schemas"]
    valid = {
        "ReportIn": REPORT_BODY,
        "CaseIn": CASE_BODY,
        "ConsentIn": CONSENT_BODY,
        "BookingIn": BOOKING_BODY,
    }
    found = []
    for path, operations in document["paths"].items():
        body = operations.get("post", {}).get("requestBody")
        if body is None:
            continue
        name = body["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
        for field, schema in schemas[name]["properties"].items():
            if "string" in repr(schema):
                found.append((path, field, valid[name]))
    return found


def canary_for(field: str, schema_is_list: bool) -> Any:
    value = CANARY_ADDRESS if field in {"guardians", "pupil"} else CANARY
    return [value] if schema_is_list else value


FIELDS = string_fields()


def test_every_string_field_is_known() -> None:
    assert len(FIELDS) == 19  # 4 of a report, 9 of a case, 3 of consent, 3 of a booking
    assert {f for _, f, _ in FIELDS} >= {"given_by", "scope", "guardians", "place", "date"}


@pytest.mark.parametrize(("path", "field", "valid"), FIELDS, ids=[f"{p}:{f}" for p, f, _ in FIELDS])
def test_a_canary_identity_number_in_any_string_field_is_refused_and_not_echoed(
    world: World, path: str, field: str, valid: dict[str, Any]
) -> None:
    token = new_token(world, "ingrid-mattsson")
    client = world.client()
    before = rows(world)
    body = valid | {field: canary_for(field, field in {"guardians", "staff"})}
    answer = client.post(path.format(reference=world.case), headers=bearer(token), json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == field
    text = answer.text
    assert NAME not in text and DIGITS not in text.replace("-", "").replace(".", "")
    assert rows(world) == before


def test_a_canary_in_the_reference_is_refused_and_not_echoed(world: World) -> None:
    token = new_token(world, "ingrid-mattsson")
    client = world.client()
    for path in ["/api/cases/120315-1236", "/api/reports/20120315-1236/receipt"]:
        method = "GET" if path.count("/") == 3 else "POST"
        answer = client.request(method, path, headers=bearer(token))
        assert answer.status_code == 422
        assert answer.json()["field"] == "reference"
        assert "1236" not in answer.text


# --- the commands -------------------------------------------------------------------------------


@pytest.fixture
def shell(world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """`samverkan` commands pointed at the world's own database."""
    import worker.runtime

    url = engine_of(world).url.render_as_string(hide_password=False)
    for key in [k for k in os.environ if k.startswith("SAMVERKAN_")]:
        if not key.startswith("SAMVERKAN_TEST_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("SAMVERKAN_DATABASE_URL", url)
    monkeypatch.setenv("SAMVERKAN_LOG_LEVEL", "WARNING")
    monkeypatch.setattr(worker.runtime, "_settings", None)
    monkeypatch.setattr(worker.runtime, "_runtime", None)
    yield world
    if worker.runtime._runtime is not None:
        worker.runtime._runtime.close()


def test_api_token_new_prints_a_token_once_that_works_until_revoked(shell: World) -> None:
    code, printed = run_cli(
        "api-token", "new", "e-tjanst", "--as", "linda-karlsson", "-m", "exempel"
    )
    assert code == 0, printed
    token = printed.strip().splitlines()[-1]
    assert len(token) >= 43
    assert token not in repr(rows(shell))
    client = shell.client()
    answer = client.get(f"/api/reports/{shell.report}", headers=bearer(token))
    assert answer.status_code == 200
    code, printed = run_cli("api-token", "revoke", "e-tjanst", "-m", "exempel")
    assert code == 0 and "1 API token(s) revoked" in printed
    assert client.get(f"/api/reports/{shell.report}", headers=bearer(token)).status_code == 401


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["new", "Lisa 120315-1236", "--as", "linda-karlsson"], "SYSTEM-NAME"),
        (["new", "e-tjanst", "--as", "lisa-120315-1236"], "--as"),
        (["new", "e-tjanst", "--as", "anna"], "--as"),  # a person of the other municipality
        (["revoke", "ingen-sadan"], "SYSTEM-NAME"),
    ],
)
def test_api_token_refuses_what_names_nothing_without_repeating_it(
    shell: World, args: list[str], named: str
) -> None:
    before = rows(shell)
    code, printed = run_cli("api-token", *args, "-m", "exempel")
    assert code == 2
    assert named in printed
    assert "1236" not in printed and "Lisa" not in printed and "ingen-sadan" not in printed
    assert rows(shell) == before
