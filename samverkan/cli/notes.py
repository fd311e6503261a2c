"""`note` and `show`, which work alike on reports and cases (both are found by reference)."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from samverkan.cli import common
from samverkan.cli.common import By, Reference
from samverkan.cli.common import MunicipalityOption as Municipality
from samverkan.cli.common import NowOption as Now


def _show(reference: str, notes: bool, municipality: str | None) -> None:
    from service.cases import show

    common.prepare(common.settings())
    with common.runtime().sessions() as session:
        data: dict[str, Any] = show(
            session, common.municipality_id(session, municipality), reference, notes
        )
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def add_note_and_show(app: typer.Typer, noun: str, shows: str) -> None:
    """`note` and `show` work alike on reports and cases (both are found by reference)."""

    @app.command("note", help=f"Keep a note on a {noun} (never sent anywhere).")
    def note(
        reference: Reference,
        text: Annotated[str, typer.Argument(help="Free text, for signed-in staff only.")],
        by: By,
        municipality: Municipality = None,
        now: Now = None,
    ) -> None:
        from service.cases import add_note

        common.act(municipality, now, lambda s, m, t: add_note(s, m, reference, by, text, t))

    @app.command("show", help=f"A {noun}'s {shows}, as JSON (for signed-in staff).")
    def show(
        reference: Reference,
        notes: Annotated[bool, typer.Option("--notes", help="Include staff notes.")] = False,
        municipality: Municipality = None,
    ) -> None:
        _show(reference, notes, municipality)
