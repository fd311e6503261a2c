"""The `samverkan` command line: the typer app and the table of its commands.

One module per group of commands (profile, booking, run, reports, cases, meetings, webapp);
each imports `common` and nothing here imports back. `main` is the console script.
"""

from __future__ import annotations

import sys

import typer

from samverkan.cli import api, booking, cases, meetings, profile, reports, run, webapp
from samverkan.cli.common import stderr
from samverkan.cli.errors import run_guarded

app = typer.Typer(
    name="samverkan",
    help="The calendar of cooperation between schools and social services.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

for command in (
    run.migrate,
    profile.load,
    profile.plan,
    booking.book,
    run.simulate,
    run.worker,
    run.beat,
    run.run,
    run.health,
    run.demo,
):
    app.command()(command)
app.add_typer(reports.app, name="report")
app.add_typer(cases.app, name="case")
app.add_typer(meetings.app, name="meeting")
app.add_typer(webapp.user_app, name="user")
app.add_typer(webapp.feed_app, name="feed")
app.add_typer(api.app, name="api-token")
app.command("web")(webapp.web)


def main() -> None:
    raise SystemExit(invoke(sys.argv[1:]))


def invoke(args: list[str]) -> int:
    """Run the command `args`; the exit code: 0 done, 2 refused (nothing changed), 1 failed."""
    return run_guarded(app, args, stderr)


if __name__ == "__main__":
    main()
