"""The Alembic migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect

from models import Base
from models.db import make_engine
from models.migrate import MIGRATIONS, alembic_config, current, upgrade

pytestmark = pytest.mark.integration

VERSION_TABLE = "alembic_version"


def head() -> str:
    heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    assert len(heads) == 1, f"the migrations have several heads {heads}: merge them"
    return heads[0]


def schema_diff(url: str) -> list[Any]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "compare_server_default": True}
            )
            diff: list[Any] = compare_metadata(context, Base.metadata)
            return diff
    finally:
        engine.dispose()


def snapshot(connection: Connection) -> dict[str, Any]:
    """Everything about the schema a second upgrade could change."""
    inspector = inspect(connection)
    tables: dict[str, Any] = {}
    for table in sorted(inspector.get_table_names()):
        tables[table] = {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)
            ],
            "pk": inspector.get_pk_constraint(table)["constrained_columns"],
            "fks": sorted(str(fk) for fk in inspector.get_foreign_keys(table)),
            "indexes": sorted(str(ix) for ix in inspector.get_indexes(table)),
            "uniques": sorted(str(uq) for uq in inspector.get_unique_constraints(table)),
        }
    return tables


def url_snapshot(url: str) -> dict[str, Any]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return snapshot(connection)
    finally:
        engine.dispose()


def test_the_migrations_have_one_head_and_live_in_the_package() -> None:
    assert MIGRATIONS.is_dir()
    assert (MIGRATIONS / "env.py").is_file()
    assert head()


def test_upgrade_from_empty_to_head(empty_database_url: str) -> None:
    assert current(empty_database_url) is None
    assert url_snapshot(empty_database_url) == {}

    upgrade(empty_database_url)

    assert current(empty_database_url) == head()
    tables = set(url_snapshot(empty_database_url))
    assert tables == set(Base.metadata.tables) | {VERSION_TABLE}


def test_migrated_schema_matches_the_models(empty_database_url: str) -> None:
    upgrade(empty_database_url)

    diff = schema_diff(empty_database_url)

    assert diff == [], (
        "the migrations and the models differ; write a migration "
        "(alembic revision --autogenerate via models.migrate.alembic_config):\n"
        + "\n".join(map(repr, diff))
    )


def test_upgrade_twice_is_a_no_op(empty_database_url: str) -> None:
    upgrade(empty_database_url)
    before = url_snapshot(empty_database_url)

    upgrade(empty_database_url)

    assert current(empty_database_url) == head()
    assert url_snapshot(empty_database_url) == before


def test_upgrade_on_a_connection_passed_in(empty_database_url: str) -> None:
    engine = make_engine(empty_database_url)
    try:
        with engine.connect() as connection:
            config = alembic_config(empty_database_url)
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
            connection.commit()
    finally:
        engine.dispose()

    assert current(empty_database_url) == head()
    assert schema_diff(empty_database_url) == []


def test_downgrade_to_base_and_up_again(empty_database_url: str) -> None:
    upgrade(empty_database_url)
    migrated = url_snapshot(empty_database_url)

    command.downgrade(alembic_config(empty_database_url), "base")

    assert current(empty_database_url) is None
    assert set(url_snapshot(empty_database_url)) <= {VERSION_TABLE}

    upgrade(empty_database_url)
    assert url_snapshot(empty_database_url) == migrated


def test_the_database_fixture_is_at_head(database_url: str) -> None:
    # create_all + stamp: `samverkan migrate` on a fixture database must find nothing to do.
    assert current(database_url) == head()
    assert schema_diff(database_url) == []
