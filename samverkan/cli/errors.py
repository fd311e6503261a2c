"""How the command line ends: an exit code and one clear message, never a traceback.

0: done. 2: refused, with a message naming the option and the rule it breaks; nothing was
changed (commands change the database in one transaction, rolled back on any error).
1: interrupted, or an internal error: its trace goes to the log at DEBUG level only, because
an exception's text may hold what a person typed.

Messages never repeat a value that was typed: the parser's own messages for an unknown option
or command and for extra arguments do ("Got unexpected extra argument(s) (x)"), so those are
rewritten.
"""

from __future__ import annotations

import functools
import logging
import re
from typing import Any

import typer
import typer.main
from rich.console import Console
from typer._click import exceptions as click

from core.errors import SamverkanError

REFUSED = 2
FAILED = 1
_PLAIN_NAME = re.compile(r"-{0,2}[a-z][a-z0-9-]{0,40}")
log = logging.getLogger(__name__)


def run_guarded(app: typer.Typer, args: list[str], errors: Console) -> int:
    """Run `app` on `args` and return the exit code, having printed any problem to `errors`."""
    bad = next((i for i, arg in enumerate(args, 1) if not _is_text(arg)), None)
    if bad is not None:
        return _refuse(errors, f"argument {bad} is not valid UTF-8 text (or holds a NUL)")
    try:
        result: Any = _command(app).main(args=args, prog_name="samverkan", standalone_mode=False)
    except click.NoArgsIsHelpError as exc:
        errors.print(exc.format_message(), highlight=False)
        return REFUSED
    except click.UsageError as exc:
        return _refuse(errors, usage_message(exc), _help_hint(exc.ctx))
    except click.ClickException as exc:
        return _refuse(errors, exc.format_message())
    except typer.Abort:
        errors.print("aborted", highlight=False)
        return FAILED
    except SamverkanError as exc:
        return _refuse(errors, str(exc))
    except Exception as exc:  # the last line of defence: a bug must not print personal data
        log.debug("internal error", exc_info=True)
        errors.print(
            f"error: internal error ({type(exc).__name__}); its details are not shown because "
            "they may hold what was typed (SAMVERKAN_LOG_LEVEL=DEBUG logs them)",
            highlight=False,
            soft_wrap=True,
        )
        return FAILED
    return result if isinstance(result, int) else 0


@functools.cache
def _command(app: typer.Typer) -> Any:
    # Building the command from the typed functions takes longer than most commands run.
    return typer.main.get_command(app)


def _is_text(text: str) -> bool:
    # Python decodes argv with surrogateescape: bytes that are not UTF-8 become lone
    # surrogates, which cannot be printed, stored in PostgreSQL or put in a message. NUL
    # cannot come from a shell, but can from a caller in-process; PostgreSQL refuses it.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


def _refuse(errors: Console, message: str, hint: str = "") -> int:
    errors.print(f"error: {message}{hint}", highlight=False, soft_wrap=True)
    return REFUSED


def _help_hint(ctx: Any) -> str:
    return f"\n(see: {ctx.command_path} --help)" if ctx is not None else ""


def usage_message(exc: click.UsageError) -> str:
    """The parser's message for a usage error, without any value or name that was typed."""
    if isinstance(exc, click.NoSuchOption):
        # An option's name is shown only if it looks like one (not like a value).
        shown = f" {exc.option_name}" if _PLAIN_NAME.fullmatch(exc.option_name) else ""
        return f"no such option{shown}"
    if exc.message.startswith("No such command"):
        return "no such command"
    if exc.message.startswith("Got unexpected extra argument"):
        return "more arguments than the command takes"
    # Missing and invalid values: typer's messages name the option and the rule only
    # ("Invalid value for '--year': Input should be greater than or equal to 2000").
    return exc.format_message()
