"""What every group of commands shares: the consoles, settings, the runtime, `--now`,
`--municipality`, and running a change in one transaction.

Commands are thin: they parse, call the service, and print. Nothing here imports a group.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from sqlalchemy import select

import models
from core.dates import DAY_RULE, MOMENT_RULE, parse_day, parse_moment
from core.errors import NotFoundError
from core.logs import configure_logging
from core.settings import Settings, load_settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from worker.runtime import Runtime

# Markup and emoji codes off: what is printed includes what people typed and what profiles
# name, and `[/x]` or `:x:` in it must print as written (markup raised on a stray closing tag).
console = Console(markup=False, emoji=False)
stderr = Console(stderr=True, markup=False, emoji=False)

NowOption = Annotated[
    str | None,
    typer.Option("--now", help="Act as if it were this moment (ISO, local time if no offset)."),
]
MunicipalityOption = Annotated[str | None, typer.Option("--municipality", "-m")]
Reference = Annotated[str, typer.Argument(help="The neutral reference, e.g. 2027-0042.")]
By = Annotated[str, typer.Option("--by", help="Person key of the staff member acting.")]


def settings() -> Settings:
    return load_settings()


def prepare(settings: Settings) -> None:
    """Configure logging and the Celery app, and bring the database schema up to date."""
    from models.migrate import upgrade
    from worker.app import configure

    configure_logging(settings.log_level)
    configure(settings)
    upgrade(settings.database_url)


def runtime() -> Runtime:
    from worker.runtime import get_runtime

    return get_runtime()


def now(value: str | None) -> dt.datetime:
    """The moment given with `--now`, or the runtime clock's (the one clock seam)."""
    if value is None:
        return runtime().clock.now()
    moment = parse_moment(value)
    if moment is None:
        raise typer.BadParameter(f"give {MOMENT_RULE}", param_hint="--now")
    return moment


def day(value: str, option: str) -> dt.date:
    parsed = parse_day(value)
    if parsed is None:
        raise typer.BadParameter(f"give {DAY_RULE}", param_hint=option)
    return parsed


def municipality_id(session: Session, key: str | None) -> int:
    query = select(models.Municipality.id, models.Municipality.key)
    rows = session.execute(query).all()
    if not rows:
        raise NotFoundError("no municipality is loaded: run `samverkan load PROFILE` first")
    if key is None:
        if len(rows) > 1:
            names = ", ".join(r.key for r in rows)
            raise NotFoundError(f"several municipalities are loaded ({names}): give --municipality")
        return int(rows[0].id)
    for row in rows:
        if row.key == key:
            return int(row.id)
    raise NotFoundError("--municipality: no municipality with that key is loaded")


def act(
    municipality: str | None, when: str | None, work: Callable[[Session, int, dt.datetime], object]
) -> None:
    """Prepare, run `work` in one transaction, print its outcome."""
    from models.db import transaction

    prepare(settings())
    moment = now(when)
    with transaction(runtime().sessions) as session:
        outcome = work(session, municipality_id(session, municipality), moment)
    console.print(str(outcome), highlight=False, markup=False, soft_wrap=True)
