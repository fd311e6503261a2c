"""`samverkan meeting cancel`: call off a routine meeting (service/meetings.py)."""

from __future__ import annotations

from typing import Annotated

import typer

from models.db import transaction
from samverkan.cli import common
from samverkan.cli.common import MunicipalityOption, NowOption, console

app = typer.Typer(help="Meetings of routines: call off.", no_args_is_help=True)


@app.command("cancel")
def cancel(
    routine: Annotated[str, typer.Argument(help="The meeting routine's key.")],
    date: Annotated[str, typer.Argument(help="The meeting's date, YYYY-MM-DD.")],
    by: Annotated[str, typer.Option("--by", help="Person key of the convener calling it off.")],
    municipality: MunicipalityOption = None,
    now: NowOption = None,
) -> None:
    """Call off a meeting: everyone invited gets a cancellation for their calendar."""
    from service.meetings import cancel_meeting

    settings = common.settings()
    common.prepare(settings)
    with transaction(common.runtime().sessions) as session:
        outcome = cancel_meeting(
            session,
            common.municipality_id(session, municipality),
            routine,
            date,
            by,
            common.now(now),
            settings.horizon_days,
        )
    console.print(outcome, soft_wrap=True)
