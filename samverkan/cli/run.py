"""Running the service: the schema, the worker and beat processes, a health check, and
simulated time (`simulate`, `demo`)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text
from sqlalchemy import select, text

import models
from core.dates import FIRST_YEAR, LAST_YEAR
from core.settings import ROOT, Settings
from models.db import transaction
from samverkan.cli import common
from samverkan.cli.common import console, stderr

if TYPE_CHECKING:
    from service.simulate import SimulationResult

EXAMPLE_PROFILE = ROOT / "profiles" / "exempel.yaml"

Concurrency = Annotated[int, typer.Option(help="Worker processes.", min=1, max=64)]


def migrate() -> None:
    """Create or upgrade the database schema (Alembic, to head)."""
    common.prepare(common.settings())
    console.print("database schema is up to date")


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
    first, last = common.day(from_, "--from"), common.day(to, "--to")
    if last < first:
        raise typer.BadParameter("--to is before --from")
    if worker not in ("embedded", "external"):
        raise typer.BadParameter("use embedded or external", param_hint="--worker")
    settings = common.settings()
    common.prepare(settings)
    run_simulation(settings, first, last, worker == "embedded", progress)


def run_simulation(
    settings: Settings, first: dt.date, last: dt.date, embedded: bool, show: bool
) -> None:
    from scheduler.calendar import local_date
    from service.simulate import simulate as run
    from worker.app import app as celery_app
    from worker.tasks import tick_once

    runtime = common.runtime()
    total_days = (last - first).days + 1
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[day]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=stderr, disable=not show, transient=False) as bar:
        task = bar.add_task("simulating", total=total_days, day=str(first))

        def advance(moment: dt.datetime) -> None:
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


def worker(
    concurrency: Concurrency = 2,
    beat: Annotated[bool, typer.Option(help="Also run beat in this process.")] = False,
    pool: Annotated[str, typer.Option(help="prefork, threads or solo")] = "prefork",
) -> None:
    """Run a Celery worker (scale these out; they share nothing but the database and broker)."""
    if pool not in ("prefork", "threads", "solo"):
        raise typer.BadParameter("use prefork, threads or solo", param_hint="--pool")
    settings = common.settings()
    common.prepare(settings)
    from worker.app import app as celery_app

    celery_app.Worker(
        concurrency=concurrency, pool=pool, beat=beat, loglevel=settings.log_level, quiet=True
    ).start()


def beat() -> None:
    """Run Celery beat (run exactly one): the tick each minute, the sweeper, the nightly re-plan."""
    settings = common.settings()
    common.prepare(settings)
    from worker.app import app as celery_app

    celery_app.Beat(loglevel=settings.log_level, quiet=True).run()


def run(concurrency: Concurrency = 2) -> None:
    """The embedded default: one worker with beat inside it. Stop with Ctrl-C."""
    worker(concurrency=concurrency, beat=True, pool="prefork")


def health() -> None:
    """Exit 0 when the database and the broker answer (for container health checks)."""
    settings = common.settings()
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
    from core.settings import demo_settings
    from service.booking import book_meeting
    from service.profiles import load_profile, validate_profile

    settings = demo_settings(common.settings())
    common.prepare(settings)
    runtime = common.runtime()
    now = runtime.clock.now()
    year = year or now.year + 1
    valid = validate_profile(EXAMPLE_PROFILE, now.date())
    with transaction(runtime.sessions) as session:
        result = load_profile(session, valid, now, settings.horizon_days)
        console.print(f"loaded {EXAMPLE_PROFILE.name}: {result.plan.created} messages planned")
        municipality_id = common.municipality_id(session, None)
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
    run_simulation(settings, dt.date(year, 1, 1), dt.date(year, 12, 31), True, True)
    files = sorted(settings.outbox_dir.rglob("*.eml"))
    console.print(f"{len(files)} .eml files in {settings.outbox_dir} (open one in a mail program)")
