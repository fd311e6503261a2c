"""`samverkan meeting ...`: show who was invited to a booked meeting and each answer; call it off.

Names, roles and answers only: a meeting's invitees are staff of the municipality, and the
answers come from the reply mailbox (docs/invites.md, "Replies").
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from models.db import transaction
from samverkan.cli import common
from samverkan.cli.common import MunicipalityOption, NowOption, console
from scheduler.answers import PARTSTAT_NAMES, MeetingAnswers, booked_meeting

app = typer.Typer(
    help="Meetings of routines: who was invited and who answered; call off.", no_args_is_help=True
)


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


@app.command("show")
def show(
    routine: Annotated[str, typer.Argument(help="The meeting routine's key.")],
    date: Annotated[str, typer.Argument(help="The meeting's date, YYYY-MM-DD.")],
    municipality: MunicipalityOption = None,
) -> None:
    """Show a booked meeting: who was invited and each one's answer."""
    day = common.day(date, "DATE")
    settings = common.settings()
    common.prepare(settings)
    with common.runtime().sessions() as session:
        view = booked_meeting(session, common.municipality_id(session, municipality), routine, day)
    console.print(render(view))


def answer_text(answer: str | None, current: bool) -> str:
    if answer is None:
        return "inget svar"
    text = PARTSTAT_NAMES.get(answer, answer.lower())
    return text if current else f"{text} (svar på en tidigare tid)"


def render(view: MeetingAnswers) -> Table:
    start = (view.start or "")[:16].replace("T", " ")
    end = (view.end or "")[11:16]
    title = f"{view.routine_name} {view.occurrence}: {start}-{end} (version {view.sequence})"
    table = Table(title=title)
    for column in ("invited", "roles", "answer"):
        table.add_column(column)
    for person in view.participants:
        answer = (
            "inbjudan återkallad"
            if person.cancelled
            else answer_text(person.answer, person.answered)
        )
        table.add_row(person.name, ", ".join(person.roles), answer)
    answered = len(view.invited) - len(view.not_answered)
    table.caption = f"{answered} of {len(view.invited)} invited have answered"
    if view.organizer:
        table.caption += f"; convener: {view.organizer}"
    return table
