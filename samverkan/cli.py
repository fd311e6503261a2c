"""The `samverkan` command line. Commands are thin: they parse, call, and print."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text
from sqlalchemy import select, text

import models
from models.db import transaction
from samverkan.cli_cases import case_app, report_app
from samverkan.cli_web import feed_app, user_app, web
from samverkan.dates import DAY_RULE, FIRST_YEAR, LAST_YEAR, MOMENT_RULE, parse_day, parse_moment
from samverkan.errors import NotFoundError
from samverkan.logs import configure_logging
from samverkan.settings import ROOT, Settings, load_settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from samverkan.simulate import SimulationResult
    from worker.runtime import Runtime

app = typer.Typer(
    name="samverkan",
    help="The calendar of cooperation between schools and social services.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
# Markup and emoji codes off: what is printed includes what people typed and what profiles
# name, and `[/x]` or `:x:` in it must print as written (markup raised on a stray closing tag).
console = Console(markup=False, emoji=False)
errors = Console(stderr=True, markup=False, emoji=False)

EXAMPLE_PROFILE = ROOT / "profiles" / "exempel.yaml"


def _settings() -> Settings:
    return load_settings()


def _prepare(settings: Settings) -> None:
    """Configure logging and the Celery app, and bring the database schema up to date."""
    from models.migrate import upgrade
    from worker.app import configure

    configure_logging(settings.log_level)
    configure(settings)
    upgrade(settings.database_url)


def _runtime() -> Runtime:
    from worker.runtime import get_runtime

    return get_runtime()


def _now(value: str | None) -> dt.datetime:
    if value is None:
        return dt.datetime.now(dt.UTC)
    moment = parse_moment(value)
    if moment is None:
        raise typer.BadParameter(f"give {MOMENT_RULE}", param_hint="--now")
    return moment


def _day(value: str, option: str) -> dt.date:
    day = parse_day(value)
    if day is None:
        raise typer.BadParameter(f"give {DAY_RULE}", param_hint=option)
    return day


def _municipality_id(session: Session, key: str | None) -> int:
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


NowOption = Annotated[
    str | None,
    typer.Option("--now", help="Act as if it were this moment (ISO, local time if no offset)."),
]
MunicipalityOption = Annotated[str | None, typer.Option("--municipality", "-m")]
Concurrency = Annotated[int, typer.Option(help="Worker processes.", min=1, max=64)]


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema (Alembic, to head)."""
    _prepare(_settings())
    console.print("database schema is up to date")


@app.command()
def load(
    profile: Annotated[Path, typer.Argument(help="The municipality's profile (YAML).")],
    now: NowOption = None,
) -> None:
    """Validate a profile and load it; re-plans the messages still to come."""
    from samverkan.profiles import load_profile, validate_profile
    from scheduler.calendar import local_date

    settings = _settings()
    _prepare(settings)
    moment = _now(now)
    valid = validate_profile(profile, local_date(moment))
    with transaction(_runtime().sessions) as session:
        result = load_profile(session, valid, moment, settings.horizon_days)
    state = "loaded" if result.changed else "unchanged"
    counts = ", ".join(f"{v} {k}" for k, v in result.counts.items())
    plan = result.plan
    console.print(
        f"{result.municipality}: {state} ({counts}); messages planned: {plan.created} new, "
        f"{plan.updated} updated, {plan.revived} restored, {plan.cancelled} cancelled, "
        f"{plan.unchanged} unchanged"
    )


@app.command()
def plan(
    year: Annotated[
        int, typer.Option("--year", help="Calendar year to show.", min=FIRST_YEAR, max=LAST_YEAR)
    ],
    format: Annotated[str, typer.Option("--format", help="table or json")] = "table",
    municipality: MunicipalityOption = None,
) -> None:
    """Show every occurrence and message of a year, without changing anything."""
    from samverkan.planview import state_text, year_plan

    if format not in ("table", "json"):
        raise typer.BadParameter("use table or json", param_hint="--format")
    settings = _settings()
    _prepare(settings)
    runtime = _runtime()
    with runtime.sessions() as session:
        items = year_plan(session, _municipality_id(session, municipality), year, runtime.renderer)
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


@app.command()
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
    from samverkan.booking import book_meeting

    settings = _settings()
    _prepare(settings)
    with transaction(_runtime().sessions) as session:
        outcome = book_meeting(
            session,
            _municipality_id(session, municipality),
            routine,
            date,
            time,
            place,
            _now(now),
            settings.horizon_days,
        )
    console.print(outcome, soft_wrap=True)


@app.command()
def simulate(
    from_: Annotated[str, typer.Option("--from", help="First day, YYYY-MM-DD.")],
    to: Annotated[str, typer.Option("--to", help="Last day, YYYY-MM-DD (inclusive).")],
    worker: Annotated[
        str,
        typer.Option(help="embedded: run a worker in this process; external: use running workers"),
    ] = "embedded",
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Run the real delivery path over a date range in simulated time."""
    first, last = _day(from_, "--from"), _day(to, "--to")
    if last < first:
        raise typer.BadParameter("--to is before --from")
    if worker not in ("embedded", "external"):
        raise typer.BadParameter("use embedded or external", param_hint="--worker")
    settings = _settings()
    _prepare(settings)
    _run_simulation(settings, first, last, worker == "embedded", progress)


def _run_simulation(
    settings: Settings, first: dt.date, last: dt.date, embedded: bool, show: bool
) -> None:
    from samverkan.simulate import simulate as run
    from worker.app import app as celery_app
    from worker.tasks import tick_once

    runtime = _runtime()
    total_days = (last - first).days + 1
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[day]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=errors, disable=not show, transient=False) as bar:
        task = bar.add_task("simulating", total=total_days, day=str(first))

        def advance(moment: dt.datetime) -> None:
            from scheduler.calendar import local_date

            day = local_date(moment)
            bar.update(task, completed=(day - first).days + 1, day=str(day))

        if embedded:
            from celery.contrib.testing.worker import start_worker

            with start_worker(
                celery_app,
                pool="threads",
                concurrency=4,
                perform_ping_check=False,
                loglevel="WARNING",
                shutdown_timeout=30.0,
            ):
                result = run(runtime, first, last, tick_once, advance)
        else:
            result = run(runtime, first, last, tick_once, advance)
        bar.update(task, completed=total_days, day=str(last))
    _print_summary(result, settings)


def _print_summary(result: SimulationResult, settings: Settings) -> None:
    from scheduler.calendar import local_date

    last_day = local_date(result.end) - dt.timedelta(days=1)
    table = Table(title=f"Simulated {local_date(result.start)} – {last_day}")
    statuses = sorted({s for c in result.by_routine.values() for s in c} | {"sent"})
    table.add_column("routine")
    for status in statuses:
        table.add_column(status, justify="right")
    for routine in sorted(result.by_routine):
        counts = result.by_routine[routine]
        table.add_row(routine, *(str(counts.get(s, 0)) for s in statuses))
    table.add_row(
        Text("total", style="bold"),
        *(Text(str(result.outcomes.get(s, 0)), style="bold") for s in statuses),
    )
    console.print(table)
    where = (
        f"SMTP {settings.smtp.host}:{settings.smtp.port}"
        if settings.smtp
        else str(settings.outbox_dir)
    )
    console.print(
        f"messages sent: {result.sent} in {result.ticks} ticks, {result.seconds:.1f} s; "
        f"delivered to {where}"
    )


@app.command()
def worker(
    concurrency: Concurrency = 2,
    beat: Annotated[bool, typer.Option(help="Also run beat in this process.")] = False,
    pool: Annotated[str, typer.Option(help="prefork, threads or solo")] = "prefork",
) -> None:
    """Run a Celery worker (scale these out; they share nothing but the database and broker)."""
    if pool not in ("prefork", "threads", "solo"):
        raise typer.BadParameter("use prefork, threads or solo", param_hint="--pool")
    settings = _settings()
    _prepare(settings)
    from worker.app import app as celery_app

    celery_app.Worker(
        concurrency=concurrency, pool=pool, beat=beat, loglevel=settings.log_level, quiet=True
    ).start()


@app.command()
def beat() -> None:
    """Run Celery beat (run exactly one): the tick each minute, the sweeper, the nightly re-plan."""
    settings = _settings()
    _prepare(settings)
    from worker.app import app as celery_app

    celery_app.Beat(loglevel=settings.log_level, quiet=True).run()


@app.command()
def run(concurrency: Concurrency = 2) -> None:
    """The embedded default: one worker with beat inside it. Stop with Ctrl-C."""
    worker(concurrency=concurrency, beat=True, pool="prefork")


@app.command()
def health() -> None:
    """Exit 0 when the database and the broker answer (for container health checks)."""
    settings = _settings()
    from models.db import make_engine
    from worker.app import configure

    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    finally:
        engine.dispose()
    celery_app = configure(settings)
    with celery_app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1, timeout=5)
    console.print("ok: database and broker answer")


@app.command()
def demo(
    year: Annotated[
        int | None,
        typer.Option(
            help="Year to simulate (default: next year).", min=FIRST_YEAR, max=LAST_YEAR - 1
        ),
    ] = None,
) -> None:
    """Load the example profile, book the autumn meeting, simulate a whole year into .eml files.

    Runs in its own folder (var/demo/), never against the configured database or relay."""
    from samverkan.booking import book_meeting
    from samverkan.profiles import load_profile, validate_profile
    from samverkan.settings import demo_settings

    settings = demo_settings(_settings())
    _prepare(settings)
    now = dt.datetime.now(dt.UTC)
    year = year or now.year + 1
    valid = validate_profile(EXAMPLE_PROFILE, now.date())
    with transaction(_runtime().sessions) as session:
        result = load_profile(session, valid, now, settings.horizon_days)
        console.print(f"loaded {EXAMPLE_PROFILE.name}: {result.plan.created} messages planned")
        municipality_id = _municipality_id(session, None)
        booked = session.scalar(
            select(models.Booking.id)
            .join(models.Routine)
            .where(
                models.Routine.key == "samverkansmote-host", models.Booking.occurrence == str(year)
            )
        )
        if booked is None:
            console.print(
                book_meeting(
                    session,
                    municipality_id,
                    "samverkansmote-host",
                    f"{year}-10-12",
                    "13:00",
                    None,
                    now,
                    settings.horizon_days,
                )
            )
    _run_simulation(settings, dt.date(year, 1, 1), dt.date(year, 12, 31), True, True)
    files = sorted(settings.outbox_dir.rglob("*.eml"))
    console.print(f"{len(files)} .eml files in {settings.outbox_dir} (open one in a mail program)")


app.add_typer(report_app, name="report")
app.add_typer(case_app, name="case")
app.add_typer(user_app, name="user")
app.add_typer(feed_app, name="feed")
app.command("web")(web)


def main() -> None:
    raise SystemExit(invoke(sys.argv[1:]))


def invoke(args: list[str]) -> int:
    """Run the command `args`; the exit code: 0 done, 2 refused (nothing changed), 1 failed."""
    from samverkan.clierrors import run_guarded

    return run_guarded(app, args, errors)


if __name__ == "__main__":
    main()
