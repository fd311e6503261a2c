"""Alembic, driven from code: no alembic.ini, the migrations live in models/migrations.

This module imports only `models`, Alembic and SQLAlchemy, like the rest of the package.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext

from models.db import make_engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    """An Alembic configuration for the database at `url`.

    env.py opens the database with `models.db.make_engine`, so postgresql:// gets psycopg 3 and
    SQLite gets the same pragmas as the service. A caller that already holds a connection can
    put it in `config.attributes["connection"]`; env.py then migrates on that connection.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # Config is a ConfigParser: a literal % (URL-encoded passwords) must be doubled.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at `url` up to `revision`; a database already there is left alone."""
    command.upgrade(alembic_config(url), revision)


def current(url: str) -> str | None:
    """The revision the database at `url` is at, or None when it has never been migrated."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
