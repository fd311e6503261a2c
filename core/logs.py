"""Structured log lines: every event names its `action`, and extra fields follow as key=value.

Log lines never carry message content or recipients' details beyond row ids.
"""

from __future__ import annotations

import logging

# Attributes every LogRecord has; anything else was passed with `extra=` and is printed.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        if not extras:
            return line
        return line + " " + " ".join(f"{k}={v}" for k, v in sorted(extras.items()))


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(KeyValueFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Alembic's own INFO lines are noise for a command's user.
    logging.getLogger("alembic").setLevel(logging.WARNING)
