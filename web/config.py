"""What the web app is told when it starts: where things are and how strict its cookies are."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from core.clock import Clock, SystemClock
from core.settings import ROOT


@dataclass(frozen=True)
class WebConfig:
    templates_dir: Path = ROOT / "templates"
    # Secure cookies need HTTPS; `samverkan web --dev` turns this off for http://localhost.
    secure_cookies: bool = True
    session_lifetime: dt.timedelta = dt.timedelta(hours=8)
    # Failed sign-ins allowed per account name and per client address within the window.
    max_failures_per_account: int = 5
    max_failures_per_address: int = 20
    failure_window: dt.timedelta = dt.timedelta(minutes=15)
    # "Att göra" looks this far ahead; the wheel calls an occurrence "due" this close.
    todo_weeks: int = 6
    due_days: int = 14
    # How far ahead a re-plan writes outbox rows (a meeting moved or called off): Settings'.
    horizon_days: int = 400
    clock: Clock = field(default_factory=SystemClock)
