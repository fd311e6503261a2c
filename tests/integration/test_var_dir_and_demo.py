"""SAMVERKAN_VAR_DIR moves everything kept on disk; the demo never touches the configured
database, broker or relay (it runs in a folder of its own)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select
from typer.testing import CliRunner

import models
from core.settings import Settings, demo_settings, load_settings
from samverkan import cli
from samverkan.cli import run as cli_run

runner = CliRunner()


def test_var_dir_moves_sqlite_outbox_broker_and_beat_schedule(tmp_path: Path) -> None:
    from worker.app import app as celery_app
    from worker.app import configure

    settings = load_settings({"SAMVERKAN_VAR_DIR": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{tmp_path / 'samverkan.db'}"
    assert settings.outbox_dir == tmp_path / "outbox"
    assert settings.broker_dir == tmp_path / "broker"
    configure(settings)
    assert Path(celery_app.conf.beat_schedule_filename).parent == tmp_path
    assert Path(celery_app.conf.broker_transport_options["data_folder_in"]).is_relative_to(tmp_path)


def test_a_setting_given_on_its_own_wins_over_var_dir(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    settings = load_settings(
        {
            "SAMVERKAN_VAR_DIR": str(tmp_path / "var"),
            "SAMVERKAN_DATABASE_URL": f"sqlite:///{elsewhere / 'x.db'}",
            "SAMVERKAN_OUTBOX_DIR": str(elsewhere / "mail"),
        }
    )
    assert settings.database_url == f"sqlite:///{elsewhere / 'x.db'}"
    assert settings.outbox_dir == elsewhere / "mail"


def test_migrate_creates_the_database_inside_var_dir(tmp_path: Path) -> None:
    result = runner.invoke(cli.app, ["migrate"], env={"SAMVERKAN_VAR_DIR": str(tmp_path)})
    assert result.exit_code == 0, result.output
    assert (tmp_path / "samverkan.db").is_file()


def test_demo_settings_are_all_inside_var_demo(tmp_path: Path) -> None:
    base = load_settings(
        {
            "SAMVERKAN_VAR_DIR": str(tmp_path),
            "SAMVERKAN_DATABASE_URL": "postgresql://real@db.example/samverkan",
            "SAMVERKAN_BROKER_URL": "redis://redis.example:6379/0",
            "SAMVERKAN_SMTP_URL": "smtp://relay.example:587",
            "SAMVERKAN_OUTBOX_DIR": str(tmp_path / "real-outbox"),
        }
    )
    demo = demo_settings(base)
    folder = tmp_path / "demo"
    assert demo.database_url == f"sqlite:///{folder / 'samverkan.db'}"
    assert demo.outbox_dir == folder / "outbox"
    assert demo.broker_dir == folder / "broker"
    assert demo.embedded_broker and demo.smtp is None


def test_demo_leaves_the_configured_database_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = tmp_path / "real.db"
    env = {"SAMVERKAN_VAR_DIR": str(tmp_path), "SAMVERKAN_DATABASE_URL": f"sqlite:///{real}"}
    assert runner.invoke(cli.app, ["migrate"], env=env).exit_code == 0
    before = real.read_bytes()
    simulated: list[Settings] = []

    def record(settings: Settings, *args: Any) -> None:
        # The year's simulation is the slow part and runs on the same settings: record them.
        simulated.append(settings)

    monkeypatch.setattr(cli_run, "run_simulation", record)
    result = runner.invoke(cli.app, ["demo", "--year", str(dt.date.today().year + 1)], env=env)
    assert result.exit_code == 0, result.output
    assert real.read_bytes() == before
    demo_db = tmp_path / "demo" / "samverkan.db"
    engine = create_engine(f"sqlite:///{demo_db}")
    with engine.connect() as connection:
        assert connection.scalar(select(models.Municipality.key)) == "exempel"
    engine.dispose()
    (settings,) = simulated
    assert settings.database_url == f"sqlite:///{demo_db}"
    assert settings.outbox_dir == tmp_path / "demo" / "outbox"
