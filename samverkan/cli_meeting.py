"""`samverkan meeting ...`: a booked meeting, who was invited and each one's answer.

Names, roles and answers only: a meeting's invitees are staff of the municipality, and the
answers come from the reply mailbox (docs/invites.md, "Replies").
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from scheduler.answers import PARTSTAT_NAMES, MeetingAnswers

meeting_app = typer.Typer(help="Booked meetings: who was invited and who has answered.")


@meeting_app.command("show")
def meeting_show(
    routine: Annotated[str, typer.Argument(help="The meeting routine's key.")],
    date: Annotated[str, typer.Argument(help="The meeting's date, YYYY-MM-DD.")],
    municipality: Annotated[str | None, typer.Option("--municipality", "-m")] = None,
) -> None:
    """Show a booked meeting: who was invited and each one's answer."""
    from samverkan import cli
    from scheduler.answers import booked_meeting

    day = cli._day(date, "DATE")
    settings = cli._settings()
    cli._prepare(settings)
    with cli._runtime().sessions() as session:
        view = booked_meeting(session, cli._municipality_id(session, municipality), routine, day)
    cli.console.print(render(view))


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
