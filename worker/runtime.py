"""The per-process runtime: settings → engine, sessions, mail transport, templates, clock.

Built lazily and once per process (and again after a fork), so nothing is read from the
environment at import time and a prefork child never shares its parent's connections.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.clock import Clock, SystemClock
from core.settings import Settings, load_settings
from models.db import HeldConnection, make_engine, make_sessionmaker
from worker.delivery import Delivery, RetryPolicy
from worker.mailers import FileMailer, Mailer
from worker.oauth import provider_from_settings
from worker.render import Renderer
from worker.smtp_mailer import SmtpMailer


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    mailer: Mailer
    renderer: Renderer
    clock: Clock
    pid: int
    # PostgreSQL: the connection the tick asks on whether anything is due (worker/tasks.py).
    held: HeldConnection

    @property
    def delivery(self) -> Delivery:
        policy = RetryPolicy(
            base_seconds=self.settings.retry_base_seconds,
            horizon=dt.timedelta(hours=self.settings.retry_horizon_hours),
        )
        return Delivery(
            self.sessions,
            self.mailer,
            self.renderer,
            policy,
            reply_mailbox=self.settings.reply_mailbox or None,
        )

    def close(self) -> None:
        self.mailer.close()
        self.held.close()
        self.engine.dispose()


def make_mailer(settings: Settings) -> Mailer:
    smtp = settings.smtp
    if smtp is not None:
        tokens = provider_from_settings(settings) if smtp.auth == "xoauth2" else None
        return SmtpMailer(smtp, tokens=tokens)
    return FileMailer(settings.outbox_dir)


def build_runtime(settings: Settings, clock: Clock | None = None) -> Runtime:
    engine = make_engine(settings.database_url)
    return Runtime(
        settings=settings,
        engine=engine,
        sessions=make_sessionmaker(engine),
        mailer=make_mailer(settings),
        renderer=Renderer(settings.templates_dir),
        clock=clock or SystemClock(),
        pid=os.getpid(),
        held=HeldConnection(engine),
    )


_settings: Settings | None = None
_runtime: Runtime | None = None


def use_settings(settings: Settings) -> None:
    """Tell this process (and the worker processes it forks) which settings to run with."""
    global _settings, _runtime
    _settings = settings
    if _runtime is not None:
        _runtime.close()
    _runtime = None


def get_runtime() -> Runtime:
    global _runtime, _settings
    if _runtime is None or _runtime.pid != os.getpid():
        if _settings is None:
            _settings = load_settings()
        _runtime = build_runtime(_settings)
    return _runtime
