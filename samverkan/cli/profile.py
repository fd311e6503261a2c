"""`samverkan load` and `samverkan plan`: a municipality's profile in, its year's plan out."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from core.dates import FIRST_YEAR, LAST_YEAR
from models.db import transaction
from samverkan.cli import common
from samverkan.cli.common import MunicipalityOption, NowOption, console

if TYPE_CHECKING:
    import datetime as dt

    from service.profiles import ValidProfile

# The preview's groups (service.profilepreview.ProfileChanges.counts), in this output's words.
COUNTS = {
    "nya": "new",
    "flyttade": "moved",
    "inställda": "cancelled",
    "ändrade mottagare": "with other recipients",
    "ändrat innehåll": "reworded",
    "kallelser": "invitations",
    "personer": "people",
    "bokningar": "bookings",
}


def load(
    profile: Annotated[Path, typer.Argument(help="The municipality's profile (YAML).")],
    now: NowOption = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Show what loading would change; change nothing."),
    ] = False,
) -> None:
    """Validate a profile and load it; re-plans the messages still to come."""
    from scheduler.calendar import local_date
    from service.profiles import load_profile, validate_profile

    settings = common.settings()
    common.prepare(settings)
    moment = common.now(now)
    valid = validate_profile(profile, local_date(moment))
    if dry_run:
        _dry_run(valid, moment, settings.horizon_days)
        return
    with transaction(common.runtime().sessions) as session:
        result = load_profile(session, valid, moment, settings.horizon_days)
    state = "loaded" if result.changed else "unchanged"
    counts = ", ".join(f"{v} {k}" for k, v in result.counts.items())
    plan = result.plan
    console.print(
        f"{result.municipality}: {state} ({counts}); messages planned: {plan.created} new, "
        f"{plan.updated} updated, {plan.revived} restored, {plan.cancelled} cancelled, "
        f"{plan.unchanged} unchanged"
    )


def plan(
    year: Annotated[
        int, typer.Option("--year", help="Calendar year to show.", min=FIRST_YEAR, max=LAST_YEAR)
    ],
    format: Annotated[str, typer.Option("--format", help="table or json")] = "table",
    municipality: MunicipalityOption = None,
) -> None:
    """Show every occurrence and message of a year, without changing anything."""
    from service.planview import state_text, year_plan

    if format not in ("table", "json"):
        raise typer.BadParameter("use table or json", param_hint="--format")
    common.prepare(common.settings())
    runtime = common.runtime()
    with runtime.sessions() as session:
        municipality_id = common.municipality_id(session, municipality)
        items = year_plan(session, municipality_id, year, runtime.renderer, runtime.clock.now())
    if format == "json":
        sys.stdout.write(json.dumps(items, ensure_ascii=False, indent=2) + "\n")
        return
    table = Table(title=f"Plan {year}", show_lines=False)
    for column in ("date", "routine", "kind", "recipients", "subject", "state"):
        table.add_column(column)
    for item in items:
        kind = item["kind"] if item["kind"] != "message" else f"→ {item['purpose']}"
        state = state_text(item) if item["kind"] == "message" else ""
        table.add_row(
            item["date"],
            item["routine"],
            kind,
            str(len(item["recipients"])),
            item["subject"],
            state,  # printed as written: the console has markup off
        )
    console.print(table)


def _dry_run(valid: ValidProfile, moment: dt.datetime, horizon_days: int) -> None:
    """The changes a load would make, computed in a transaction that is rolled back."""
    from service.profilepreview import preview_valid

    sessions = common.runtime().sessions
    with sessions() as session:
        try:
            changes = preview_valid(session, valid, moment, horizon_days)
        finally:
            session.rollback()
    counts = ", ".join(f"{v} {COUNTS[k]}" for k, v in changes.counts.items())
    console.print(f"{changes.municipality}: dry run, nothing was changed ({counts})")
    if changes.empty:
        console.print("Loading this profile would change nothing.")
        return
    table = Table(title="What loading would change", show_lines=False)
    for column in ("change", "due", "routine", "occurrence", "message", "recipients"):
        table.add_column(column)
    groups = (
        ("new", changes.added),
        ("moved", changes.moved),
        ("cancelled", changes.cancelled),
        ("recipients", changes.recipients),
        ("reworded", changes.reworded),
    )
    for label, items in groups:
        for item in items:
            due = f"{item.old_due} → {item.due}" if item.old_due else item.due
            who = ", ".join(item.recipients)
            if item.added or item.removed:
                who = " ".join([*(f"+{p}" for p in item.added), *(f"-{p}" for p in item.removed)])
            table.add_row(label, due, item.routine_name, item.occurrence, item.purpose, who)
    for invitation in changes.invitations:
        table.add_row(
            f"invitation {invitation.method}",
            "",
            invitation.routine_name,
            invitation.occurrence,
            "",
            ", ".join(invitation.recipients),
        )
    for person in changes.people:
        table.add_row(f"person: {person.change}", "", "", "", "", person.name)
    for booking in changes.bookings:
        table.add_row(
            "booking",
            f"{booking.old} → {booking.new}",
            booking.routine_name,
            booking.occurrence,
            "",
            "",
        )
    console.print(table)
