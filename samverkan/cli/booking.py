"""`samverkan book`: book the meeting of a routine's occurrence."""

from __future__ import annotations

from typing import Annotated

import typer

from models.db import transaction
from samverkan.cli import common
from samverkan.cli.common import MunicipalityOption, NowOption, console


def book(
    routine: Annotated[str, typer.Argument(help="The meeting routine's key.")],
    date: Annotated[str, typer.Argument(help="The meeting's date, YYYY-MM-DD.")],
    time: Annotated[str, typer.Argument(help="Local start time, HH:MM.")],
    place: Annotated[
        str | None,
        typer.Option(
            "--place", help="Key of one of the profile's places; the routine's default otherwise."
        ),
    ] = None,
    municipality: MunicipalityOption = None,
    now: NowOption = None,
) -> None:
    """Book the meeting of an occurrence; its calendar invites are planned at once."""
    from service.booking import book_meeting

    settings = common.settings()
    common.prepare(settings)
    with transaction(common.runtime().sessions) as session:
        outcome = book_meeting(
            session,
            common.municipality_id(session, municipality),
            routine,
            date,
            time,
            place,
            common.now(now),
            settings.horizon_days,
        )
    console.print(outcome, soft_wrap=True)
