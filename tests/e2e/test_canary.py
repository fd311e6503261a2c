"""A child's name and identity number typed into every input of every command never leaves.

The inputs are read from the command definitions themselves (typer's click tree), so a new
command or option without a scenario here fails `test_every_input_of_every_command_has_a_scenario`.
Every input gets the canary: the staff-only free-text inputs accept it (and keep it for staff);
every other input refuses it with exit code 2, without repeating it, and changes nothing. The
commands run in this process through `samverkan.cli.main` (the console script's entry point),
against SQLite, the embedded broker and the file mailer; `simulate` then delivers everything
due. Every .eml file (headers, every decoded part, the invites), every line any command printed
or logged is searched for the name and for the number's digits.
"""

from __future__ import annotations

import email
import email.policy
import os
import re
import sys
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import typer
from sqlalchemy import create_engine

from samverkan import cli
from tests.profiles import snapshot

pytestmark = pytest.mark.e2e

PROFILE = Path(__file__).parent.parent / "data" / "cases.yaml"
# A second municipality, for its meeting routine (`samverkan book`).
MINIMAL = Path(__file__).parent.parent / "data" / "minimal.yaml"
NAME = "Lisa Exempelsson"
DIGITS = "1203151236"  # a valid personnummer (real date, right check digit)
SHAPES = [
    "120315-1236",
    "2012-03-15-1236",
    "120315 - 1236",
    "12 03 15-1236",
    "120315_1236",
    "1203\u200b15-1236",
    "201203151236",
    "１２０３１５－１２３６",
]
FREE_TEXT = f"{NAME} " + " / ".join(SHAPES)


def canary(index: int, param: str) -> str:
    shape = SHAPES[index % len(SHAPES)]
    if param in ADDRESSES:  # an address shaped to pass an address check
        return f"lisa.exempelsson.{re.sub(r'[^0-9０-９]+', '.', shape)}@hem.se"
    return f"{NAME} {shape}"


# Inputs whose value is an e-mail address.
ADDRESSES = {"guardian", "pupil"}
# Staff-only free text: accepted, stored for signed-in staff, never sent or logged.
FREE = {
    ("case", "note"): {"text"},
    ("report", "note"): {"text"},
    ("case", "consent"): {"given_by", "scope"},
    ("case", "sip-add"): {"goal", "action"},
}


@dataclass
class Step:
    """One valid run of a command: every input it has, with a valid value."""

    command: tuple[str, ...]
    values: dict[str, str | list[str]]
    run: bool = True  # False: a service that runs until stopped; only its refusals are run
    extra: list[str] = field(default_factory=list)  # flags to pass as they are


REF_REPORT, REF_CASE = "2027-0001", "2027-0002"
M = {"municipality": "fall"}

# The whole flow, in order. Each command's inputs are tried with the canary just before the
# command runs validly, so a refusal is the canary's doing and not a wrong baseline.
STEPS = [
    Step(("migrate",), {}),
    Step(("load",), {"profile": str(MINIMAL), "now": "2027-03-01T07:00"}),
    Step(("load",), {"profile": str(PROFILE), "now": "2027-03-01T07:00"}),
    Step(("plan",), {"year": "2027", "format": "json", **M}),
    Step(
        ("report", "register"),
        {
            "unit": "ekskolan",
            "reporter": "rut",
            "district": "norr",
            "guardian": ["vh@hem.se"],
            "now": "2027-03-01T10:00",
            **M,
        },
        extra=["--acute", "--wants-feedback"],
    ),
    Step(
        ("report", "note"),
        {"reference": REF_REPORT, "text": FREE_TEXT, "by": "rut", "now": "2027-03-01T10:01", **M},
    ),
    Step(
        ("report", "receive"),
        {"reference": REF_REPORT, "by": "mona", "now": "2027-03-01T11:00", **M},
    ),
    Step(("report", "show"), {"reference": REF_REPORT, **M}),
    Step(
        ("case", "open"),
        {
            "owner": "rut",
            "by": "rut",
            "owner_role": "rektor",
            "known_on": "2027-03-02",
            "school": "ekskolan",
            "family_worker": "fia",
            "staff": ["sam"],
            "guardian": ["vh1@hem.se"],
            "pupil": "elev@hem.se",
            "report": REF_REPORT,
            "now": "2027-03-02T09:00",
            **M,
        },
    ),
    Step(
        ("case", "note"),
        {"reference": REF_CASE, "text": FREE_TEXT, "by": "fia", "now": "2027-03-02T09:05", **M},
    ),
    Step(
        ("case", "consent"),
        {
            "reference": REF_CASE,
            "by": "rut",
            "given_by": FREE_TEXT,
            "scope": FREE_TEXT,
            "given_on": "2027-03-03",
            "now": "2027-03-03T09:00",
            **M,
        },
    ),
    Step(
        ("case", "book"),
        {
            "reference": REF_CASE,
            "date": "2027-03-10",
            "time": "13:00",
            "by": "rut",
            "place": "ifo-samtalsrum",
            "meeting": "1",
            "now": "2027-03-03T10:00",
            **M,
        },
    ),
    Step(
        ("case", "withdraw-consent"),
        {"reference": REF_CASE, "by": "rut", "now": "2027-03-03T11:00", **M},
        run=False,  # it would call the meeting off: only the refusals are run
    ),
    Step(
        ("simulate",),
        {"from_": "2027-03-01", "to": "2027-03-09", "worker": "embedded"},
        extra=["--no-progress"],
    ),
    Step(
        ("case", "hold"),
        {
            "reference": REF_CASE,
            "by": "rut",
            "meeting": "1",
            "held_on": "2027-03-10",
            "now": "2027-03-10T16:00",
            **M,
        },
    ),
    Step(
        ("case", "minutes"),
        {
            "reference": REF_CASE,
            "by": "rut",
            "follow_up": ["2027-04-20"],
            "now": "2027-03-10T16:05",
            **M,
        },
    ),
    Step(
        ("case", "sip"),
        {
            "reference": REF_CASE,
            "by": "rut",
            "follow_up": "2027-06-01",
            "now": "2027-03-10T16:06",
            **M,
        },
    ),
    Step(
        ("case", "sip-add"),
        {
            "reference": REF_CASE,
            "by": "rut",
            "goal": FREE_TEXT,
            "action": FREE_TEXT,
            "responsible": "familjebehandlare@ifo",
            "due": "2027-05-03",
            "now": "2027-03-10T16:07",
            **M,
        },
    ),
    Step(("case", "show"), {"reference": REF_CASE, **M}),
    Step(
        ("book",),
        {
            "routine": "samverkansmote-var",
            "date": "2027-04-13",
            "time": "13:00",
            "place": "stadshuset",
            "now": "2027-03-10T17:00",
            "municipality": "liten",
        },
    ),
    Step(
        ("meeting", "cancel"),
        {
            "routine": "samverkansmote-var",
            "date": "2027-04-13",
            "by": "anna",
            "now": "2027-03-10T17:05",
            "municipality": "liten",
        },
    ),
    Step(  # booked again after the call-off: invited with a higher SEQUENCE
        ("book",),
        {
            "routine": "samverkansmote-var",
            "date": "2027-04-13",
            "time": "13:00",
            "place": "stadshuset",
            "now": "2027-03-10T17:10",
            "municipality": "liten",
        },
    ),
    Step(
        ("simulate",),
        {"from_": "2027-03-10", "to": "2027-04-30", "worker": "embedded"},
        extra=["--no-progress"],
    ),
    Step(
        ("meeting", "show"),
        {"routine": "samverkansmote-var", "date": "2027-04-13", "municipality": "liten"},
    ),
    Step(("case", "close"), {"reference": REF_CASE, "by": "rut", "now": "2027-05-03T09:00", **M}),
    Step(
        ("report", "flag-abuse"),
        {"reference": REF_REPORT, "by": "mona", "now": "2027-05-03T10:00", **M},
    ),
    Step(
        ("simulate",),
        {"from_": "2027-05-01", "to": "2027-05-07", "worker": "embedded"},
        extra=["--no-progress"],
    ),
    Step(("user", "add"), {"person": "rut", "username": "rut", **M}),
    Step(("user", "disable"), {"person": "rut", **M}),
    Step(("feed", "new"), {"person": "rut", **M}),
    Step(("feed", "revoke"), {"person": "rut", **M}),
    Step(("api-token", "new"), {"system": "arendesystem", "as_person": "rut", **M}),
    Step(("api-token", "revoke"), {"system": "arendesystem", **M}),
    Step(("web",), {"host": "127.0.0.1", "port": "8000"}, run=False),
    Step(("worker",), {"concurrency": "1", "pool": "solo"}, run=False),
    Step(("run",), {"concurrency": "1"}, run=False),
    Step(("demo",), {"year": "2027"}, run=False),
    Step(("beat",), {}, run=False),
    Step(("health",), {}, run=False),
]


def commands() -> Iterator[tuple[tuple[str, ...], typer.core.TyperCommand]]:
    """Every command of the CLI, from typer's own definitions."""

    def walk(command: object, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], object]]:
        subcommands = getattr(command, "commands", None)
        if subcommands:
            for name, sub in sorted(subcommands.items()):
                yield from walk(sub, (*path, name))
        else:
            yield path, command

    yield from walk(typer.main.get_command(cli.app), ())  # type: ignore[misc]


def inputs(command: object) -> list[object]:
    """The inputs a person types a value into (flags take none)."""
    return [p for p in command.params if not getattr(p, "is_flag", False)]  # type: ignore[attr-defined]


def test_every_input_of_every_command_has_a_scenario() -> None:
    steps = {step.command: step for step in STEPS}
    missing = []
    for path, command in commands():
        step = steps.get(path)
        if step is None:
            missing.append(" ".join(path))
            continue
        missing += [
            f"{' '.join(path)} {p.name}"  # type: ignore[attr-defined]
            for p in inputs(command)
            if p.name not in step.values  # type: ignore[attr-defined]
        ]
    assert not missing, f"inputs without a canary scenario: {missing}"
    known = {path for path, _ in commands()}
    assert set(steps) <= known, f"scenarios for commands that no longer exist: {set(steps) - known}"


def argv(command: object, path: tuple[str, ...], values: dict[str, str | list[str]]) -> list[str]:
    args = list(path)
    for param in command.params:  # type: ignore[attr-defined]
        value = values.get(param.name)
        if value is None or getattr(param, "is_flag", False):
            continue
        for one in value if isinstance(value, list) else [value]:
            if param.param_type_name == "argument":
                args.append(one)
            else:
                args += [param.opts[0], one]
    return args


class Samverkan:
    """Runs `samverkan ARGS` in this process and keeps everything it printed."""

    def __init__(self, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
        self.capfd = capfd
        self.monkeypatch = monkeypatch
        self.printed: list[str] = []

    def __call__(self, args: list[str]) -> tuple[int, str]:
        self.monkeypatch.setattr(sys, "argv", ["samverkan", *args])
        try:
            cli.main()
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        out, err = self.capfd.readouterr()
        self.printed.append(out + err)
        return code, out + err


def leaks(text: str) -> list[str]:
    """What of the canary is in `text`: the name, or the number's digits in any shape."""
    found = []
    folded = unicodedata.normalize("NFKC", text)
    if "exempelsson" in folded.lower():
        found.append("name")
    if DIGITS in re.sub(r"\D", "", folded):
        found.append("number")
    return found


@pytest.fixture
def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    import logging

    from worker import runtime

    for key in list(os.environ):
        if key.startswith("SAMVERKAN_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("SAMVERKAN_DATABASE_URL", f"sqlite:///{tmp_path / 'samverkan.db'}")
    monkeypatch.setenv("SAMVERKAN_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("SAMVERKAN_OUTBOX_DIR", str(tmp_path / "outbox"))
    monkeypatch.setenv("SAMVERKAN_LOG_LEVEL", "INFO")  # every log line there is
    monkeypatch.setattr(runtime, "_runtime", None)
    monkeypatch.setattr(runtime, "_settings", None)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield tmp_path
    if runtime._runtime is not None:
        runtime._runtime.close()
    root.handlers[:] = handlers
    root.setLevel(level)


def test_the_canary_typed_into_every_input_never_leaves(
    environment: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    samverkan = Samverkan(capfd, monkeypatch)
    engine = create_engine(f"sqlite:///{environment / 'samverkan.db'}")
    by_path = dict(commands())
    tried = 0
    for step in STEPS:
        command = by_path[step.command]
        for param in inputs(command):
            name = param.name  # type: ignore[attr-defined]
            if name in FREE.get(step.command, set()):
                continue  # staff-only free text: the valid run below types the canary
            tried += 1
            values = dict(step.values)
            typed = canary(tried, name)
            values[name] = [typed] if isinstance(values[name], list) else typed
            if name == "profile":  # what `load` reads is the file: the canary goes inside
                values[name] = str(profile_with_canary(environment, typed))
            before = snapshot(engine) if step.command != ("migrate",) else None
            code, printed = samverkan(argv(command, step.command, values) + step.extra)
            where = f"{' '.join(step.command)} {name}"
            assert code == 2, f"{where}: the canary was not refused (exit {code}):\n{printed}"
            assert not leaks(printed), f"{where}: the refusal repeated what was typed:\n{printed}"
            assert "Traceback" not in printed, f"{where}:\n{printed}"
            if before is not None:
                assert snapshot(engine) == before, f"{where}: a refused command changed data"
        if step.run:
            code, printed = samverkan(argv(command, step.command, step.values) + step.extra)
            assert code == 0, f"{' '.join(step.command)} failed:\n{printed}"

    # The free text went in and is kept for signed-in staff (not searched: staff asked for it).
    code, shown = samverkan(["case", "show", REF_CASE, "--notes", "-m", "fall"])
    assert code == 0 and "Exempelsson" in shown
    samverkan.printed.pop()

    messages = sorted((environment / "outbox").rglob("*.eml"))
    invites = 0
    for path in messages:
        raw = path.read_bytes()
        message = email.message_from_bytes(raw, policy=email.policy.default)
        parts = [raw.decode("utf-8", "replace")]
        parts += [f"{k}: {v}" for k, v in message.items()]
        for part in message.walk():
            if part.is_multipart():
                continue
            content = part.get_content()
            parts.append(
                content if isinstance(content, str) else content.decode("utf-8", "replace")
            )
            invites += part.get_content_type() == "text/calendar"
        found = leaks("\n".join(parts))
        assert not found, f"{path.name} ({message['Subject']}) carries the canary's {found}"
    assert invites >= 4, "the case meeting's invites were delivered and searched"
    everything = "\n".join(samverkan.printed)
    assert "IFO, samtalsrum 2" in "".join(p.read_text(errors="replace") for p in messages)
    assert not leaks(everything), f"the canary's {leaks(everything)} in command output or logs"
    assert tried > 60


def profile_with_canary(where: Path, typed: str) -> Path:
    text = PROFILE.read_text(encoding="utf-8").replace("name: Rut Rektor", f"name: {typed}", 1)
    target = where / "canary.yaml"
    target.write_text(text, encoding="utf-8")
    return target
