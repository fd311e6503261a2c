"""The documentation matches the command line.

Every `samverkan …` line in a ```sh block of docs/cases.md is run, in order, by the real CLI
(in-process, against a database of its own); any that fails fails the test. Every command
named anywhere in docs/cases.md and in the README's command list (synopses such as
`case open --owner P [--sip]`) must name commands and options the CLI has.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from core.settings import ROOT
from samverkan import cli

CASES_DOC = ROOT / "docs" / "cases.md"
README = ROOT / "README.md"
FENCE = re.compile(r"^```sh\n(.*?)^```", re.MULTILINE | re.DOTALL)
INLINE = re.compile(r"`((?:samverkan|case|report) [^`]+)`")


def runnable(path: Path) -> list[list[str]]:
    """The command lines of the ```sh blocks, as argument lists (comments dropped)."""
    commands = []
    for block in FENCE.findall(path.read_text(encoding="utf-8")):
        for line in block.splitlines():
            if line.startswith("samverkan "):
                commands.append(shlex.split(line, comments=True)[1:])
    return commands


def synopses(path: Path) -> list[str]:
    """Every command the text names: inline spans and the lines of ```sh blocks."""
    text = path.read_text(encoding="utf-8")
    found = INLINE.findall(text)
    for block in FENCE.findall(text):
        for line in block.splitlines():
            code = line.split("  #", 1)[0].strip()
            if not code.startswith("samverkan "):
                continue
            # `samverkan worker | samverkan beat`: two commands on one line
            found += [part.strip() for part in code.split(" | ") if part.strip()]
    return found


def synopsis_problem(root: Any, synopsis: str) -> str | None:
    """What in `synopsis` the CLI does not have, or None."""
    words = re.sub(r"[\[\]…]", " ", synopsis).split()
    if words and words[0] == "samverkan":
        words = words[1:]
    command = root  # typer's command tree (its own copy of click's Group and Command)
    for index, word in enumerate(words):
        if not hasattr(command, "commands"):
            return _option_problem(command, words[index:], synopsis)
        names = word.split("|")
        missing = [n for n in names if n not in command.commands]
        if missing:
            return f"{synopsis!r}: no command {missing[0]!r}"
        if len(names) > 1:
            return None  # alternatives: each exists; their options are documented elsewhere
        command = command.commands[word]
    return None


def _option_problem(command: Any, words: list[str], synopsis: str) -> str | None:
    options = {o for p in command.params for o in getattr(p, "opts", [])} | {"--help"}
    for word in words:
        if word.startswith("--") and word.split("=")[0] not in options:
            return f"{synopsis!r}: {command.name} has no option {word}"
    return None


@pytest.fixture(scope="module")
def root() -> Any:
    command = typer.main.get_command(cli.app)
    assert hasattr(command, "commands")
    return command


@pytest.mark.parametrize("path", [CASES_DOC, README], ids=["cases.md", "README.md"])
def test_every_command_the_docs_name_exists_with_its_options(root: Any, path: Path) -> None:
    named = synopses(path)
    assert len(named) >= 10
    problems = [p for p in (synopsis_problem(root, s) for s in named) if p]
    assert problems == []


def test_the_checker_finds_a_wrong_command_or_option(root: Any) -> None:
    assert synopsis_problem(root, "case open --owner P --sip") is None
    assert synopsis_problem(root, "case opne --owner P") is not None
    assert synopsis_problem(root, "case open --ownr P") is not None
    assert synopsis_problem(root, "samverkan case open|consent|bok …") is not None


def test_the_worked_example_of_cases_md_runs_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commands = runnable(CASES_DOC)
    assert len(commands) >= 10 and commands[0][0] == "load"
    monkeypatch.chdir(ROOT)  # the examples name profiles/exempel.yaml relative to the project
    runner = CliRunner()
    # Everything (SQLite, outbox) inside tmp_path; a configured database would win over it.
    monkeypatch.delenv("SAMVERKAN_DATABASE_URL", raising=False)
    monkeypatch.delenv("SAMVERKAN_OUTBOX_DIR", raising=False)
    for args in commands:
        result = runner.invoke(cli.app, args, env={"SAMVERKAN_VAR_DIR": str(tmp_path)})
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            args,
            result.output,
        )
        assert result.exit_code == 0, (args, result.output)
    assert (tmp_path / "samverkan.db").is_file()
