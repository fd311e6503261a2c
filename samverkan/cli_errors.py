"""Usage errors in words that never repeat what was typed.

Click's own messages quote the value ("'Kalle 120315-1234' is not a valid integer", "Got
unexpected extra argument (Svensson)", "No such option: --kalle"), and whatever a person types
may be about a child. These name the option and the rule instead.
"""

from __future__ import annotations

# typer carries its own copy of click; its exceptions are the ones raised.
from typer._click.exceptions import BadParameter, MissingParameter, NoSuchOption, UsageError

__all__ = ["UsageError", "usage_problem"]


def usage_problem(exc: UsageError) -> str:
    """What is wrong with the command line, naming options only, never values."""
    where = exc.ctx.command_path if exc.ctx is not None else "samverkan"
    if isinstance(exc, MissingParameter):
        return f"{where}: {exc.format_message()}"  # names the missing option, nothing typed
    if isinstance(exc, BadParameter):
        if exc.param is None:  # raised by our own code, with a message that quotes nothing
            return f"{where}: {exc.param_hint or 'a value'}: {exc.message}"
        hint = exc.param_hint or "/".join(getattr(exc.param, "opts", []) or [exc.param.name or ""])
        return f"{where}: {hint}: not a valid value of its kind; see {where} --help"
    if isinstance(exc, NoSuchOption):
        return f"{where}: an option this command does not have; see {where} --help"
    return f"{where}: the arguments do not match the command's usage; see {where} --help"
