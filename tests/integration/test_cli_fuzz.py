"""Every command, every option, any value: an exit code of 0 or 2, a message, no traceback, and
on 2 the database exactly as it was.

The commands and their parameters are read from the typer definitions themselves, so a new
command or option is fuzzed (and counted by the coverage check) without touching this file.
Values are what people type by mistake or on purpose: Rich markup, control characters, huge
numbers, dates at the ends of the calendar, wrapped addresses, personal identity numbers,
text that is not UTF-8. Examples per command: SAMVERKAN_TEST_FUZZ_EXAMPLES (default 12).
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import os
import subprocess
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer.main
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

import models
from models.db import transaction
from samverkan import cli
from samverkan.cli import run as cli_run
from scheduler.calendar import STOCKHOLM
from service import cases
from tests.e2e.processes import SAMVERKAN, clean_env
from tests.profiles import DATA, MINIMAL, load, snapshot

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("SAMVERKAN_TEST_FUZZ_EXAMPLES", "12"))
LOADED = dt.datetime(2027, 3, 1, 7, 0, tzinfo=STOCKHOLM).astimezone(dt.UTC)


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # "argument" or "option"
    opts: tuple[str, ...]
    secondary: tuple[str, ...]
    flag: bool
    multiple: bool
    required: bool


def commands() -> dict[tuple[str, ...], list[Param]]:
    """Every leaf command of the app (by its words) with its parameters, from typer itself."""
    found: dict[tuple[str, ...], list[Param]] = {}

    def walk(command: Any, path: tuple[str, ...]) -> None:
        subcommands = getattr(command, "commands", None)
        if subcommands:
            for name, sub in subcommands.items():
                walk(sub, (*path, name))
            return
        found[path] = [
            Param(
                name=p.name,
                kind=p.param_type_name,
                opts=tuple(p.opts),
                secondary=tuple(getattr(p, "secondary_opts", ()) or ()),
                flag=bool(getattr(p, "is_flag", False)),
                multiple=bool(getattr(p, "multiple", False)),
                required=bool(p.required),
            )
            for p in command.params
            if p.name != "help"
        ]

    walk(typer.main.get_command(cli.app), ())
    return found


COMMANDS = commands()

# Values that name real things in the fuzzed database, so the deeper checks are reached too.
KNOWN = ["rut", "fia", "ada", "ekskolan", "norr", "ifo", "rektor", "familjebehandlare@ifo"]
ODD = [
    "",
    " ",
    "[/x]",
    "[bold red]x[/]",
    "[link=file:///etc/passwd]x[/link]",
    ":smile:",
    "0",
    "-1",
    "2147483648",
    "9" * 40,
    "1e309",
    "nan",
    "0000-01-01",
    "0001-01-01",
    "1999-12-31",
    "2200-12-31",
    "2201-01-01",
    "9999-12-31",
    "9999-12-31T23:59",
    "9999-12-31T23:59+14:00",
    "0001-01-01T00:00-14:00",
    "2027-02-30",
    "2027-03-28T02:30",
    "2027-10-31T02:30",
    "garbage",
    "23:59",
    "24:00",
    "02:30",
    "25:61",
    "Evil <evil@example.se>",
    "vh.20120315.1234@hem.se",
    "a@b.se\r\nBcc: x@evil.example",
    "Lisa Exempelsson 120315-1234",
    "x" * 5000,
    "../../etc/passwd",
    "/dev/zero",
    "/proc/self/environ",
    "--help",
    "-m",
    "\u202eevil",
    "a\x00b",
    "\udcff\udcfe",  # bytes that are not UTF-8, as Python passes them in argv
]


DAYS = ["2027-03-03", "2027-03-10", "2027-04-13", "2027-03-28", "2027-10-31", "2028-01-05"]
PEOPLE = ["rut", "fia", "sam", "mona", "ada"]
# Plausible values by parameter name, so that most examples get past the first check and
# reach the deeper ones; a parameter not named here draws from KNOWN.
PLAUSIBLE: dict[str, list[str]] = {
    "by": PEOPLE,
    "owner": PEOPLE,
    "reporter": PEOPLE,
    "family_worker": PEOPLE,
    "staff": PEOPLE,
    "given_by": ["vårdnadshavarna", "eleven"],
    "scope": ["samverkansmöte", "skola och socialtjänst"],
    "date": DAYS,
    "from_": DAYS,
    "to": DAYS,
    "known_on": DAYS,
    "given_on": DAYS,
    "held_on": DAYS,
    "due": DAYS,
    "follow_up": DAYS,
    "time": ["13:00", "08:30", "02:30", "16:45"],
    "now": ["2027-03-01T08:00", "2027-03-02T09:00", "2027-03-15T12:00+01:00"],
    "unit": ["ekskolan", "mottagning-norr"],
    "school": ["ekskolan"],
    "district": ["norr"],
    "guardian": ["vh1@hem.se", "vh2@hem.se"],
    "pupil": ["elev@hem.se"],
    "year": ["2027", "2028", "2200"],
    "format": ["table", "json"],
    "worker": ["embedded", "external"],
    "pool": ["prefork", "threads", "solo"],
    "concurrency": ["1", "2"],
    "meeting": ["1", "2"],
    "responsible": ["familjebehandlare@ifo", "rektor@ekskolan"],
    "owner_role": ["rektor", "familjebehandlare"],
    "goal": ["Närvaro", "Trygghet"],
    "action": ["Samtal varje vecka"],
    "text": ["Ringde vårdnadshavare", "Lisa Exempelsson 120315-1234"],
    "profile": [str(DATA / "cases.yaml")],
    "municipality": ["fall"],
}


def values(param: str) -> st.SearchStrategy[str]:
    plausible = st.sampled_from(PLAUSIBLE.get(param) or KNOWN)
    if param == "reference":
        plausible = st.sampled_from(KNOWN[-2:])  # the report and the case made for the run
    odd = st.one_of(
        st.sampled_from(ODD),
        st.text(st.characters(codec="utf-8"), max_size=15),
        st.integers(-(10**25), 10**25).map(str),
        st.dates().map(dt.date.isoformat),
        st.datetimes().map(lambda d: d.isoformat(timespec="minutes")),
    )
    # Mostly plausible: one odd value among otherwise good ones is what reaches deepest.
    return st.integers(0, 9).flatmap(lambda i: plausible if i < 8 else odd)


def command_line(data: st.DataObject, path: tuple[str, ...], params: list[Param]) -> list[str]:
    """Words for `path`: arguments in order, then a random choice of its options."""
    words = list(path)
    for param in params:
        if param.kind == "argument":
            if param.required or data.draw(st.booleans()):
                words.append(data.draw(values(param.name)))
            continue
        # Required options are nearly always given; the others half the time.
        if not data.draw(st.integers(0, 9 if param.required else 1)):
            continue
        if param.flag:
            words.append(data.draw(st.sampled_from(param.opts + param.secondary)))
            continue
        many = 2 if param.multiple else 1
        for value in data.draw(st.lists(values(param.name), min_size=1, max_size=many)):
            words += [data.draw(st.sampled_from(param.opts)), value]
    return words


def run_in_process(args: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli.invoke(args)
    return code, out.getvalue() + err.getvalue()


@pytest.fixture
def fuzz_env(
    tmp_path: Path,
    database_url: str,
    session_factory: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[None]:
    """A database with the cases profile, a report and a case with consent; settings pointing
    at it; the long-running parts (worker, beat, a simulated year) replaced by stubs."""
    import worker.app
    import worker.runtime

    load(session_factory, DATA / "cases.yaml", LOADED)
    with transaction(session_factory) as session:
        municipality = session.scalars(select(models.Municipality.id)).one()
        report = cases.ReportRequest(unit="ekskolan", reporter="rut", district="norr")
        KNOWN.append(cases.register_report(session, municipality, report, LOADED).reference)
        request = cases.CaseRequest(owner="rut", by="rut", school="ekskolan", family_worker="fia")
        reference = cases.open_case(session, municipality, request, LOADED).reference
        consent = cases.ConsentRequest("rut", "vårdnadshavarna", "samverkansmöte", None, False)
        cases.record_consent(session, municipality, reference, consent, LOADED)
        KNOWN.append(reference)
    for key in [k for k in os.environ if k.startswith("SAMVERKAN_")]:
        if not key.startswith("SAMVERKAN_TEST_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("SAMVERKAN_DATABASE_URL", database_url)
    monkeypatch.setenv("SAMVERKAN_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("SAMVERKAN_OUTBOX_DIR", str(tmp_path / "outbox"))
    monkeypatch.setenv("SAMVERKAN_LOG_LEVEL", "WARNING")
    monkeypatch.setattr(worker.runtime, "_settings", None)
    monkeypatch.setattr(worker.runtime, "_runtime", None)
    monkeypatch.setattr(cli_run, "run_simulation", lambda *args: None)
    monkeypatch.setattr(worker.app.app, "Worker", _Idle, raising=False)
    monkeypatch.setattr(worker.app.app, "Beat", _Idle, raising=False)
    handlers = logging.getLogger().handlers[:]
    try:
        yield
    finally:
        logging.getLogger().handlers[:] = handlers
        if worker.runtime._runtime is not None:
            worker.runtime._runtime.close()
        del KNOWN[-2:]


class _Idle:
    """Stands in for the Celery worker and beat: the command's options are what is fuzzed."""

    def __init__(self, **options: Any) -> None:
        self.options = options

    def start(self) -> None:
        pass

    def run(self) -> None:
        pass


def check(args: list[str], engine: Engine) -> None:
    before = snapshot(engine)
    code, output = run_in_process(args)
    shown = repr(args)[:300]
    assert code in (0, 2), f"exit {code} for {shown}:\n{output[-2000:]}"
    assert "Traceback" not in output, f"{shown}:\n{output[-2000:]}"
    if code == 2:
        assert output.strip(), f"no message for {shown}"
        assert snapshot(engine) == before, f"refused, yet the database changed: {shown}"


@pytest.mark.parametrize("path", list(COMMANDS), ids=[" ".join(p) for p in COMMANDS])
def test_any_options_end_in_0_or_2_with_a_message_and_nothing_changed_on_2(
    path: tuple[str, ...], fuzz_env: None, engine: Engine
) -> None:
    params = COMMANDS[path]
    used: set[str] = set()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        database=None,
    )
    @given(st.data())
    def fuzz(data: st.DataObject) -> None:
        args = command_line(data, path, params)
        used.update(p.name for p in params if _given(p, args))
        check(args, engine)

    fuzz()
    # Every parameter was tried at least once, so no option escapes the fuzzing.
    missing = {p.name for p in params} - used
    for param in (p for p in params if p.name in missing):
        check([*path, *_one_use(param)], engine)
        used.add(param.name)
    assert used == {p.name for p in params}


def _given(param: Param, args: list[str]) -> bool:
    if param.kind == "argument":
        return True  # arguments are always drawn when required; optional ones are rare
    return any(word in args for word in param.opts + param.secondary)


def _one_use(param: Param) -> list[str]:
    if param.kind == "argument":
        return ["[/x]"]
    return [param.opts[0]] if param.flag else [param.opts[0], "[/x]"]


def test_every_command_and_parameter_is_fuzzed() -> None:
    """The fuzzing above is driven by the app's definitions; check that they hold what we know
    is there, so a broken walk (finding nothing) cannot pass silently."""
    words = {" ".join(p) for p in COMMANDS}
    assert {"load", "plan", "book", "simulate", "case open", "case book", "report register"} <= (
        words
    )
    assert {p.name for p in COMMANDS[("plan",)]} >= {"year", "format", "municipality"}
    assert all(p.opts for params in COMMANDS.values() for p in params)


ISSUE_EXAMPLES = [
    ["plan", "--year", "0"],
    ["load", str(DATA / "cases.yaml"), "--now", "garbage"],
    ["plan", "--year", "2027", "--municipality", "[/x]"],
    ["book", "x", "2027-01-01", "10:00", "--municipality", "[/x]"],
    ["simulate", "--from", "9999-12-31", "--to", "9999-12-31"],
    ["case", "book", "REF", "9999-12-31", "23:59", "--by", "rut"],
    ["case", "open", "--owner", "rut", "--by", "rut", "--known-on", "9999-12-31"],
    ["load", "/dev/zero"],
    ["plan", "--year", "2027", "--municipality", "\udcff"],
    ["case", "note", "REF", "Lisa \udcc5berg", "--by", "rut"],  # Latin-1 bytes in argv
    ["case", "note", "REF", "a\x00b", "--by", "rut"],
]


@pytest.mark.parametrize("args", ISSUE_EXAMPLES, ids=[" ".join(a)[:40] for a in ISSUE_EXAMPLES])
def test_the_inputs_that_crashed_are_refused(
    args: list[str], fuzz_env: None, engine: Engine
) -> None:
    args = [KNOWN[-1] if word == "REF" else word for word in args]  # the case that exists
    before = snapshot(engine)
    code, output = run_in_process(args)
    assert code == 2, output
    assert output.startswith("error: "), output
    assert "Traceback" not in output and "9999" not in output and "garbage" not in output
    assert snapshot(engine) == before


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SAMVERKAN_LOG_LEVEL", "bogus"),
        ("SAMVERKAN_HORIZON_DAYS", "99999999999"),
        ("SAMVERKAN_HORIZON_DAYS", "0"),
        ("SAMVERKAN_TICK_SECONDS", "nan"),
        ("SAMVERKAN_RETRY_HORIZON_HOURS", "inf"),
        ("SAMVERKAN_LEASE_SECONDS", "-1"),
        ("SAMVERKAN_TICK_BATCH", "10" * 20),
    ],
)
def test_a_bad_setting_is_refused_naming_it(
    variable: str, value: str, fuzz_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, value)
    code, output = run_in_process(["plan", "--year", "2027"])
    assert code == 2, output
    assert variable in output and "Traceback" not in output


def test_log_level_is_read_in_any_case(fuzz_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAMVERKAN_LOG_LEVEL", "warning")
    code, output = run_in_process(["plan", "--year", "2027", "--format", "json"])
    assert code == 0, output


@pytest.mark.parametrize(
    "argv",
    [
        [b"plan", b"--year", b"2027", b"--municipality", b"\xff\xfe"],
        [b"load", b"/tmp/profil-\xe5.yaml"],
        [b"case", b"note", b"2027-0001", b"Lisa \xc5berg", b"--by", b"rut"],
        [b"plan", b"--year", b"[/x]"],
    ],
)
def test_arguments_that_are_not_utf8_are_refused_by_the_real_program(
    argv: list[bytes], tmp_path: Path
) -> None:
    env = clean_env(
        SAMVERKAN_DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite'}",
        SAMVERKAN_VAR_DIR=str(tmp_path / "var"),
    )
    done = subprocess.run(
        [SAMVERKAN.encode(), *argv], env=env, capture_output=True, timeout=120, check=False
    )
    output = (done.stdout + done.stderr).decode("utf-8", "replace")
    assert done.returncode == 2, output
    assert "error:" in output and "Traceback" not in output


@pytest.mark.parametrize("day", ["9999-04-13", "0001-04-13", "2201-04-13"])
def test_a_meeting_booked_outside_the_planned_years_is_refused(
    day: str, fuzz_env: None, engine: Engine
) -> None:
    code, output = run_in_process(["load", str(MINIMAL), "--now", "2026-11-22T10:00"])
    assert code == 0, output
    before = snapshot(engine)
    code, output = run_in_process(["book", "samverkansmote-var", day, "13:00", "-m", "liten"])
    assert code == 2, output
    assert "from 2000-01-01 to 2200-12-31" in output and day not in output
    assert snapshot(engine) == before
