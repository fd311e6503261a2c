"""Helpers for tests that load profiles."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import Engine, MetaData, select
from sqlalchemy.orm import Session, sessionmaker

from models.db import transaction
from service.profiles import LoadResult, load_profile, validate_profile

DATA = Path(__file__).parent / "data"
MINIMAL = DATA / "minimal.yaml"
EXAMPLE = Path(__file__).parent.parent / "profiles" / "exempel.yaml"


def write_variant(tmp_path: Path, old: str, new: str, source: Path = MINIMAL) -> Path:
    """A copy of `source` with `old` replaced by `new` (which must occur exactly once)."""
    text = source.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
    target = tmp_path / source.name
    target.write_text(text.replace(old, new), encoding="utf-8")
    return target


def load(
    sessions: sessionmaker[Session], path: Path, now: dt.datetime, horizon_days: int = 400
) -> LoadResult:
    valid = validate_profile(path, now.date())
    with transaction(sessions) as session:
        return load_profile(session, valid, now, horizon_days)


def snapshot(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, to compare a database before and after."""
    meta = MetaData()
    meta.reflect(engine)
    with engine.connect() as connection:
        return {
            name: sorted(map(tuple, connection.execute(select(table))), key=repr)
            for name, table in meta.tables.items()
            if name != "alembic_version"
        }


def refusal(sessions: sessionmaker[Session], engine: Engine, bad: Path, now: dt.datetime) -> str:
    """Load MINIMAL, then `bad`: return the ProfileError's message, having checked that the
    refused load changed nothing in the database."""
    import pytest

    from core.errors import ProfileError

    load(sessions, MINIMAL, now)
    before = snapshot(engine)
    with pytest.raises(ProfileError) as caught:
        load(sessions, bad, now + dt.timedelta(days=1))
    assert snapshot(engine) == before
    return str(caught.value)
