"""Reports and cases in the web app: the lists, the pages, and every form.

Each form's happy path is run twice from the same database: once through the web app as the
signed-in person, once through the command line itself (`samverkan …`, in this process) with
that person as `--by`. The page shows every line the command prints, and both databases end up
with the same rows (the web's own audit rows of listing and viewing aside). Errors are
answered in Swedish, naming the field, and change nothing; each role sees and does only what it
may; nobody reaches another municipality's reports or cases.
"""

from __future__ import annotations

import datetime as dt
import html
import os
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import models
from core.errors import CaseInputError
from core.settings import ROOT
from models.db import make_engine, make_sessionmaker
from tests.web.conftest import NOW, World, csrf_of
from web import case_messages as messages

Clients = dict[str, TestClient]
LATER = NOW + dt.timedelta(days=4)  # after the booked meeting, to record it as held


def post(client: TestClient, path: str, page: str, form: dict[str, Any]) -> Any:
    token = csrf_of(client.get(page).text)
    return client.post(path, data={"csrf": token, **form})


def text_of(answer: Any) -> str:
    return html.unescape(answer.text)


def audit(world: World, action: str) -> list[tuple[str, str, str]]:
    with world.sessions() as session:
        a = models.CaseAudit
        found = session.execute(
            select(a.actor, a.series, a.reference).where(a.action == action).order_by(a.id)
        )
        return [tuple(row) for row in found]  # type: ignore[misc]


def rows(sessions: sessionmaker[Session]) -> dict[str, list[tuple[Any, ...]]]:
    """What a case command writes, without the web's own audit of listing and viewing."""
    with sessions() as session:
        a, n = models.CaseAudit, models.Notification
        return {
            "audit": sorted(
                (r.actor, r.series, r.reference, r.action, repr(r.detail))
                for r in session.scalars(select(a).where(a.action.not_like("web.%")))
            ),
            "outbox": sorted(
                (r.idempotency_key, str(r.status), r.due_at.isoformat(), r.template)
                for r in session.scalars(select(n))
            ),
            "reports": sorted(
                (
                    r.reference,
                    r.state,
                    r.acute,
                    r.suspected_abuse,
                    r.received_by_id,
                    repr(r.guardian_emails),
                )
                for r in session.scalars(select(models.Report))
            ),
            "cases": sorted(
                (
                    c.reference,
                    c.state,
                    c.owner_id,
                    c.school_unit_id,
                    c.family_worker_id,
                    repr(c.externals),
                    c.consent_given_by,
                    c.consent_scope,
                    repr(c.follow_ups),
                    c.sip,
                    c.sip_follow_up,
                    c.closed_by_id,
                )
                for c in session.scalars(select(models.Case))
            ),
            "meetings": sorted(
                (m.case_id, m.number, m.state, m.starts_at.isoformat(), m.location, m.held_on)
                for m in session.scalars(select(models.CaseMeeting))
            ),
            "sip": sorted(
                (i.case_id, i.number, i.goal, i.action, i.responsible, i.due_on)
                for i in session.scalars(select(models.SipItem))
            ),
            "notes": sorted(
                (c.reference, c.author_id, c.text) for c in session.scalars(select(models.CaseNote))
            ),
        }


@pytest.fixture
def twin(
    world: World, sqlite_template: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[sessionmaker[Session]]:
    """A second copy of the same database, which the command line (`samverkan`) works on."""
    import logging

    from worker import runtime

    template, _ = sqlite_template
    shutil.copyfile(template, tmp_path / "twin.db")
    for key in list(os.environ):
        if key.startswith("SAMVERKAN_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("SAMVERKAN_DATABASE_URL", f"sqlite:///{tmp_path / 'twin.db'}")
    monkeypatch.setenv("SAMVERKAN_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setattr(runtime, "_runtime", None)
    monkeypatch.setattr(runtime, "_settings", None)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    engine = make_engine(f"sqlite:///{tmp_path / 'twin.db'}")
    yield make_sessionmaker(engine)
    engine.dispose()
    if runtime._runtime is not None:
        runtime._runtime.close()
    root.handlers[:] = handlers
    root.setLevel(level)


def samverkan(
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> str:
    """Run `samverkan ARGS` in this process (the console script's entry point); its output."""
    from samverkan import cli

    monkeypatch.setattr(sys, "argv", ["samverkan", *args])
    capfd.readouterr()
    try:
        cli.main()
    except SystemExit as exit_:
        assert exit_.code in (0, None), capfd.readouterr()
    out, _log = capfd.readouterr()  # the log lines go to stderr
    return out


# --- lists and pages ------------------------------------------------------------------------


@pytest.mark.parametrize("world", ["sqlite"], indirect=True)
def test_each_role_lists_the_reports_and_cases_it_may_see(world: World, signed_in: Clients) -> None:
    sees_report = {"samordnare", "mottagning"}  # a coordinator; the intake unit it went to
    sees_case = {"samordnare", "rektor", "familj"}  # coordinator, owner (rektor), family worker
    for kind, client in signed_in.items():
        if kind == "ingenroll":
            assert client.get("/anmalningar").status_code == 403
            continue
        reports_page = client.get("/anmalningar").text
        cases_page = client.get("/arenden").text
        assert (f"/anmalningar/{world.report}" in reports_page) == (kind in sees_report), kind
        assert (f"/arenden/{world.case}" in cases_page) == (kind in sees_case), kind
        shown = [client.get(f"/anmalningar/{world.report}"), client.get(f"/arenden/{world.case}")]
        assert [a.status_code for a in shown] == [
            200 if kind in sees_report else 404,
            200 if kind in sees_case else 404,
        ], kind
    listed = audit(world, "web.listed")
    assert ("linda-karlsson", "report", world.report) in listed
    assert ("ingrid-mattsson", "case", world.case) in listed
    assert not [row for row in listed if row[0] in ("anna", "per-sundberg")]
    viewed = audit(world, "web.viewed")
    assert ("emma-sandberg", "case", world.case) in viewed
    assert not [row for row in viewed if row[0] == "linda-karlsson" and row[1] == "case"]


@pytest.mark.parametrize("world", ["sqlite"], indirect=True)
def test_notes_are_shown_only_to_those_the_cli_lets_read_them(
    world: World, signed_in: Clients
) -> None:
    note = "Samtal med mentor"
    answer = post(
        signed_in["rektor"],
        f"/arenden/{world.case}/anteckning",
        f"/arenden/{world.case}",
        {"text": note},
    )
    assert answer.status_code == 200, answer.text
    # The owner and the family worker are parties; a coordinator sees the case but not notes.
    assert note in signed_in["rektor"].get(f"/arenden/{world.case}").text
    assert note in signed_in["familj"].get(f"/arenden/{world.case}").text
    coordinator = signed_in["samordnare"].get(f"/arenden/{world.case}")
    assert coordinator.status_code == 200 and note not in coordinator.text
    assert "Anteckningar" not in coordinator.text


@pytest.mark.parametrize("world", ["sqlite"], indirect=True)
def test_another_municipality_reaches_nothing(world: World, signed_in: Clients) -> None:
    other = signed_in["annan"]
    assert world.case not in other.get("/arenden").text
    assert world.report not in other.get("/anmalningar").text
    assert other.get(f"/arenden/{world.case}").status_code == 404
    before = rows(world.sessions)
    for path in (f"/arenden/{world.case}/avsluta", f"/anmalningar/{world.report}/misstankt-vald"):
        answer = post(other, path, "/arenden", {})
        assert answer.status_code == 404
    assert rows(world.sessions) == before


# --- the forms: the same as the CLI ---------------------------------------------------------


@pytest.mark.parametrize("world", ["sqlite"], indirect=True)
def test_every_form_does_what_its_command_does(
    world: World,
    signed_in: Clients,
    twin: sessionmaker[Session],
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each form, then its command with the same person as `--by`, from the same database:
    the page shows what the command prints, and both databases hold the same rows."""
    rektor, mottagning = signed_in["rektor"], signed_in["mottagning"]
    new_report, new_case, ref = "2027-0003", "2027-0004", world.case
    by_rektor, by_intake = ["--by", "ingrid-mattsson"], ["--by", "linda-karlsson"]
    page_of = {"r": f"/anmalningar/{new_report}", "c": f"/arenden/{ref}"}
    steps: list[tuple[TestClient, str, str, dict[str, Any], list[str], dt.datetime]] = [
        (
            rektor,
            "/anmalningar",
            "/anmalningar/ny",
            {
                "enhet": "kyrkbacksskolan",
                "distrikt": "norr",
                "akut": "ja",
                "aterkoppling": "ja",
                "vardnadshavare": "vh.ett@hem.example\nvh.tva@hem.example",
            },
            [
                "report",
                "register",
                "--unit",
                "kyrkbacksskolan",
                "--reporter",
                "ingrid-mattsson",
                "--district",
                "norr",
                "--acute",
                "--wants-feedback",
                "--guardian",
                "vh.ett@hem.example",
                "--guardian",
                "vh.tva@hem.example",
            ],
            NOW,
        ),
        (
            mottagning,
            f"/anmalningar/{new_report}/mottagen",
            page_of["r"],
            {},
            ["report", "receive", new_report, *by_intake],
            NOW,
        ),
        (
            rektor,
            f"/anmalningar/{new_report}/anteckning",
            page_of["r"],
            {"text": "Ringde mottagningen"},
            ["report", "note", new_report, "Ringde mottagningen", *by_rektor],
            NOW,
        ),
        (
            rektor,
            "/arenden",
            "/arenden/ny",
            {
                "skola": "kyrkbacksskolan",
                "familjebehandlare": "emma-sandberg",
                "sip": "ja",
                "kant_sedan": "2027-02-25",
                "anmalan": new_report,
                "vardnadshavare": "vh@hem.example",
            },
            [
                "case",
                "open",
                "--owner",
                "ingrid-mattsson",
                *by_rektor,
                "--school",
                "kyrkbacksskolan",
                "--family-worker",
                "emma-sandberg",
                "--sip",
                "--known-on",
                "2027-02-25",
                "--report",
                new_report,
                "--guardian",
                "vh@hem.example",
            ],
            NOW,
        ),
        (
            rektor,
            f"/arenden/{ref}/samtycke",
            page_of["c"],
            {
                "lamnat_av": "Båda vårdnadshavarna",
                "omfattning": "Skola och IFO",
                "lamnat_den": "2027-02-27",
            },
            [
                "case",
                "consent",
                ref,
                *by_rektor,
                "--given-by",
                "Båda vårdnadshavarna",
                "--scope",
                "Skola och IFO",
                "--given-on",
                "2027-02-27",
            ],
            NOW,
        ),
        (
            rektor,
            f"/arenden/{ref}/boka",
            page_of["c"],
            {"datum": "2027-03-04", "tid": "10:00", "plats": "ifo-samtal"},
            ["case", "book", ref, "2027-03-04", "10:00", *by_rektor, "--place", "ifo-samtal"],
            NOW,
        ),
        (
            rektor,
            f"/arenden/{ref}/hallet",
            page_of["c"],
            {"mote": "1"},
            ["case", "hold", ref, *by_rektor, "--meeting", "1"],
            LATER,
        ),
        (
            rektor,
            f"/arenden/{ref}/minnesanteckningar",
            page_of["c"],
            {"uppfoljning": ["2027-04-01", "", "2027-05-03"]},
            [
                "case",
                "minutes",
                ref,
                *by_rektor,
                "--follow-up",
                "2027-04-01",
                "--follow-up",
                "2027-05-03",
            ],
            LATER,
        ),
        (
            rektor,
            f"/arenden/{ref}/sip",
            page_of["c"],
            {"uppfoljning": "2027-06-01"},
            ["case", "sip", ref, *by_rektor, "--follow-up", "2027-06-01"],
            LATER,
        ),
        (
            rektor,
            f"/arenden/{ref}/sip-insats",
            page_of["c"],
            {
                "mal": "Närvaro",
                "insats": "Samtal varje vecka",
                "ansvar": "familjebehandlare@ifo",
                "klart_senast": "2027-05-01",
            },
            [
                "case",
                "sip-add",
                ref,
                *by_rektor,
                "--goal",
                "Närvaro",
                "--action",
                "Samtal varje vecka",
                "--responsible",
                "familjebehandlare@ifo",
                "--due",
                "2027-05-01",
            ],
            LATER,
        ),
        (
            rektor,
            f"/arenden/{ref}/anteckning",
            page_of["c"],
            {"text": "Bra möte"},
            ["case", "note", ref, "Bra möte", *by_rektor],
            LATER,
        ),
        (
            mottagning,
            f"/anmalningar/{new_report}/misstankt-vald",
            page_of["r"],
            {},
            ["report", "flag-abuse", new_report, *by_intake],
            LATER,
        ),
        (
            rektor,
            f"/arenden/{ref}/aterkalla-samtycke",
            page_of["c"],
            {},
            ["case", "withdraw-consent", ref, *by_rektor],
            LATER,
        ),
        (
            rektor,
            f"/arenden/{new_case}/avsluta",
            f"/arenden/{new_case}",
            {},
            ["case", "close", new_case, *by_rektor],
            LATER,
        ),
    ]
    for client, path, form_page, form, command, when in steps:
        world.clock.current = when
        answer = post(client, path, form_page, form)
        assert answer.status_code == 200, (path, text_of(answer))
        printed = samverkan(
            capfd, monkeypatch, [*command, "-m", "exempel", "--now", when.isoformat()]
        )
        lines = [line for line in printed.splitlines() if line.strip()]
        assert lines, command
        for line in lines:
            assert line in text_of(answer), (path, line)
        assert rows(world.sessions) == rows(twin), path


@pytest.mark.parametrize("world", ["sqlite"], indirect=True)
def test_an_acute_report_shows_the_advice_to_phone_first(world: World, signed_in: Clients) -> None:
    answer = post(
        signed_in["rektor"],
        "/anmalningar",
        "/anmalningar/ny",
        {"enhet": "kyrkbacksskolan", "distrikt": "norr", "misstankt_vald": "ja"},
    )
    page = text_of(answer)
    assert answer.status_code == 200
    assert "BRÅDSKANDE: ring Mottagningsenheten Norr på 0123-45 67 10 innan" in page, page
    assert "innan du skriver ner anmälan." in page
    assert "Ring mottagningsenheten först" in signed_in["rektor"].get("/anmalningar/ny").text


# --- errors ---------------------------------------------------------------------------------

BAD: list[tuple[str, str, dict[str, Any], str]] = [
    (
        "/anmalningar",
        "/anmalningar/ny",
        {"enhet": "", "distrikt": "norr"},
        "Anmälande enhet: måste fyllas i",
    ),
    (
        "/anmalningar",
        "/anmalningar/ny",
        {"enhet": "ingen-sadan", "distrikt": "norr"},
        "Anmälande enhet: ingen enhet",
    ),
    (
        "/anmalningar",
        "/anmalningar/ny",
        {"enhet": "kyrkbacksskolan", "distrikt": "x"},
        "Barnets distrikt: inget distrikt",
    ),
    (
        "/anmalningar",
        "/anmalningar/ny",
        {"enhet": "kyrkbacksskolan", "distrikt": "norr", "vardnadshavare": "inte en adress"},
        "Vårdnadshavares e-post: är inte en användbar e-postadress",
    ),
    (
        "/anmalningar",
        "/anmalningar/ny",
        {"enhet": "kyrkbacksskolan", "distrikt": "norr", "akut": "kanske"},
        "Akut:",
    ),
    ("/arenden", "/arenden/ny", {"kant_sedan": "i går"}, "Känt sedan: skriv ett datum"),
    (
        "/arenden",
        "/arenden/ny",
        {"kant_sedan": "2027-12-01"},
        "Känt sedan: får inte ligga i framtiden",
    ),
    ("/arenden", "/arenden/ny", {"skola": "ifo"}, "Skola: enheten är inte en förskola eller skola"),
    (
        "/arenden",
        "/arenden/ny",
        {"familjebehandlare": "nobody"},
        "Familjebehandlare: ingen aktiv person",
    ),
    ("/arenden", "/arenden/ny", {"elev": "elev@"}, "Elevens e-post: är inte en användbar"),
    # The fixture's report went to the intake unit Norr: the rektor cannot see it.
    ("/arenden", "/arenden/ny", {"anmalan": "2027-0001"}, "Följer anmälan: ingen anmälan"),
    ("/arenden", "/arenden/ny", {"anmalan": "2027-0999"}, "Följer anmälan: ingen anmälan"),
    (
        "{case}/boka",
        "{case}",
        {"datum": "2027-03-04", "tid": "10:00"},
        "Samtycke måste registreras",
    ),
    (
        "{case}/samtycke",
        "{case}",
        {"lamnat_av": "", "omfattning": "x"},
        "Vem gav samtycket: måste fyllas i",
    ),
    (
        "{case}/samtycke",
        "{case}",
        {"lamnat_av": "x", "omfattning": "x", "lamnat_den": "2027-13-01"},
        "Samtycket lämnades: skriv ett datum",
    ),
    ("{case}/hallet", "{case}", {}, "Möte: ärendet har inget bokat möte"),
    (
        "{case}/minnesanteckningar",
        "{case}",
        {"uppfoljning": ["", ""]},
        "Uppföljningsdatum: ange minst ett datum",
    ),
    (
        "{case}/sip-insats",
        "{case}",
        {"mal": "a", "insats": "b", "ansvar": "okand@ifo", "klart_senast": "2027-05-01"},
        "Ansvar: okänd roll",
    ),
    (
        "{case}/sip-insats",
        "{case}",
        {"mal": "a", "insats": "b", "ansvar": "rektor"},
        "Klart senast: måste fyllas i",
    ),
    (
        "{case}/sip",
        "{case}",
        {"uppfoljning": "2027-01-01"},
        "Uppföljningsdatum: måste vara efter i dag",
    ),
]


@pytest.mark.parametrize("world", ["sqlite"], indirect=True)
def test_bad_input_is_refused_in_swedish_naming_the_field_and_changes_nothing(
    world: World, signed_in: Clients
) -> None:
    rektor = signed_in["rektor"]
    for path, form_page, form, expected in BAD:
        path = path.replace("{case}", f"/arenden/{world.case}")
        form_page = form_page.replace("{case}", f"/arenden/{world.case}")
        before = rows(world.sessions)
        answer = post(rektor, path, form_page, form)
        assert answer.status_code == 400, (path, form)
        assert expected in text_of(answer), (path, text_of(answer))
        assert "Inget ändrades" in answer.text
        assert rows(world.sessions) == before, path


@pytest.mark.parametrize("world", ["sqlite"], indirect=True)
def test_a_case_form_by_someone_not_the_owner_is_refused(world: World, signed_in: Clients) -> None:
    """The family worker sees the case but is not its owner: each owner's form is refused."""
    familj = signed_in["familj"]
    page = familj.get(f"/arenden/{world.case}").text
    assert 'action="/arenden/' + world.case + '/samtycke"' not in page
    before = rows(world.sessions)
    for action in (
        "samtycke",
        "aterkalla-samtycke",
        "boka",
        "hallet",
        "minnesanteckningar",
        "sip",
        "sip-insats",
        "avsluta",
    ):
        answer = post(familj, f"/arenden/{world.case}/{action}", "/arenden", {})
        assert answer.status_code == 403, action
        assert "processbäraren" in text_of(answer), action
    # The rektor cannot see the report at all: refused as if it did not exist.
    answer = post(signed_in["rektor"], f"/anmalningar/{world.report}/mottagen", "/arenden", {})
    assert answer.status_code == 404
    # The coordinator sees it, but only its intake unit receives it.
    answer = post(signed_in["samordnare"], f"/anmalningar/{world.report}/mottagen", "/arenden", {})
    assert answer.status_code == 403
    assert "mottagningsenheten" in text_of(answer)
    assert rows(world.sessions) == before


@pytest.mark.parametrize("world", ["sqlite"], indirect=True)
def test_a_form_without_the_csrf_token_is_refused(world: World, signed_in: Clients) -> None:
    answer = signed_in["rektor"].post(
        "/anmalningar", data={"enhet": "kyrkbacksskolan", "distrikt": "norr"}
    )
    assert answer.status_code == 403
    assert "2027-0003" not in answer.text


# --- every reason the service gives has a Swedish translation -------------------------------

SOURCES = [
    "service/cases",
    "service/desk.py",
    "scheduler/cases/rules.py",
    "scheduler/cases/outbox.py",
    "scheduler/privacy.py",
    "scheduler/bookings.py",
]
RAISED = re.compile(
    r"(CaseRuleError|CaseInputError|ConfidentialityError|NonexistentLocalTime)\(\s*"
    r"((?:f?\"[^\"]*\"\s*)+)\)"
)


def service_reasons() -> list[str]:
    """Every message text the case service raises for bad input or a rule, `{…}` as `X`."""
    found = []
    for source in SOURCES:
        path = ROOT / source
        for file in sorted(path.glob("*.py")) if path.is_dir() else [path]:
            for match in RAISED.finditer(file.read_text(encoding="utf-8")):
                literals = re.findall(r"f?\"([^\"]*)\"", match.group(2))
                found.append(re.sub(r"\{[^}]*\}", "1", "".join(literals)))
    # What role_ref_problem returns, after "--responsible: ".
    found += ["--responsible: unknown role (no role with that key)"]
    found += ["--responsible: unknown unit or unit kind after @"]
    return found


def test_every_reason_the_service_gives_is_said_in_swedish() -> None:
    reasons = service_reasons()
    assert len(reasons) > 30
    untranslated = [r for r in reasons if not any(re.search(p, r) for p, _ in messages.PHRASES)]
    # Only the one whose text is role_ref_problem's (above).
    assert untranslated == ["--responsible: 1"], untranslated
    for reason in reasons:
        said = messages.swedish(CaseInputError(reason))
        assert not re.search(r"\b(the|must|cannot|case|meeting|already)\b", said), (reason, said)
