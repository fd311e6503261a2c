"""`samverkan meeting cancel`: call off a routine meeting (service/meetings.py)."""

from __future__ import annotations

from typing import Annotated

import typer

meeting_app = typer.Typer(help="Meetings of routines: call off.", no_args_is_help=True)


@meeting_app.command("cancel")
def cancel(
    routine: Annotated[str, typer.Argument(help="The meeting routine's key.")],
    date: Annotated[str, typer.Argument(help="The meeting's date, YYYY-MM-DD.")],
    by: Annotated[str, typer.Option("--by", help="Person key of the convener calling it off.")],
    municipality: Annotated[str | None, typer.Option("--municipality", "-m")] = None,
    now: Annotated[
        str | None,
        typer.Option("--now", help="Act as if it were this moment (ISO, local time if no offset)."),
    ] = None,
) -> None:
    """Call off a meeting: everyone invited gets a cancellation for their calendar."""
    from models.db import transaction
    from samverkan import cli
    from service.meetings import cancel_meeting

    settings = cli._settings()
    cli._prepare(settings)
    with transaction(cli._runtime().sessions) as session:
        outcome = cancel_meeting(
            session,
            cli._municipality_id(session, municipality),
            routine,
            date,
            by,
            cli._now(now),
            settings.horizon_days,
        )
    cli.console.print(outcome, soft_wrap=True)
