"""`samverkan load` and `samverkan plan`: a municipality's profile in, its year's plan out."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from core.dates import FIRST_YEAR, LAST_YEAR
from models.db import transaction
from samverkan.cli import common
from samverkan.cli.common import MunicipalityOption, NowOption, console


def load(
    profile: Annotated[Path, typer.Argument(help="The municipality's profile (YAML).")],
    now: NowOption = None,
) -> None:
    """Validate a profile and load it; re-plans the messages still to come."""
    from scheduler.calendar import local_date
    from service.profiles import load_profile, validate_profile

    settings = common.settings()
    common.prepare(settings)
    moment = common.now(now)
    valid = validate_profile(profile, local_date(moment))
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
