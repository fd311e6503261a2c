"""Guards on how work reaches the broker: no long ETA, the beat entries, timings from settings."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from core.settings import ROOT, load_settings
from worker.app import MAX_ETA, LongEtaError, _refuse_long_eta, configure


def test_a_task_with_an_eta_beyond_a_minute_is_refused() -> None:
    later = dt.datetime.now(dt.UTC) + MAX_ETA + dt.timedelta(seconds=30)
    with pytest.raises(LongEtaError, match=r"samverkan\.deliver"):
        _refuse_long_eta(headers={"task": "samverkan.deliver", "eta": later.isoformat()})


def test_no_eta_or_a_short_one_is_allowed() -> None:
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=20)
    _refuse_long_eta(headers={"task": "samverkan.deliver", "eta": soon.isoformat()})
    _refuse_long_eta(headers={"task": "samverkan.deliver", "eta": None})
    _refuse_long_eta(headers=None)


def test_no_code_publishes_with_eta_countdown_or_celery_retry() -> None:
    pattern = re.compile(r"\b(countdown|eta)=[^=]|\.retry\(|autoretry_for|retry_backoff")
    found = [
        f"{path.relative_to(ROOT)}:{n}"
        for package in ("worker", "scheduler", "samverkan", "models")
        for path in sorted((ROOT / package).rglob("*.py"))
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line) and not line.lstrip().startswith("#")
    ]
    assert found == []


def test_beat_runs_tick_sweep_replan_the_daily_digest_and_the_reply_poll(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import worker.runtime

    # configure() points this process's runtime at the settings: undone after the test.
    monkeypatch.setattr(worker.runtime, "_settings", None)
    monkeypatch.setattr(worker.runtime, "_runtime", None)
    settings = load_settings(
        {},
        var_dir=tmp_path,
        tick_seconds=2,
        sweep_seconds=7,
        reply_poll_seconds=11,
        broker_url="redis://127.0.0.1:1/0",
    )
    app = configure(settings)
    schedule = app.conf.beat_schedule
    assert set(schedule) == {"tick", "sweep", "replan", "digest", "replies"}
    assert schedule["tick"]["schedule"] == 2 and schedule["sweep"]["schedule"] == 7
    assert schedule["replies"] == {"task": "samverkan.replies", "schedule": 11}
    digest = schedule["digest"]["schedule"]
    assert digest.hour == {7} and digest.minute == {0}
    assert app.conf.timezone == "Europe/Stockholm"
    assert app.conf.task_acks_late and app.conf.task_reject_on_worker_lost
    assert app.conf.worker_prefetch_multiplier == 1


@pytest.mark.parametrize("name", ["SAMVERKAN_TICK_SECONDS", "SAMVERKAN_SWEEP_SECONDS"])
def test_timings_must_be_positive(name: str) -> None:
    from core.errors import SettingsError

    with pytest.raises(SettingsError, match=name):
        load_settings({name: "0"})


def test_a_pool_process_puts_its_startup_objects_out_of_the_collectors_way() -> None:
    """When Celery starts a pool process (the signal prefork and solo send), what the process
    holds then is frozen: full collections no longer walk it (docs/performance.md)."""
    import gc

    from celery.signals import worker_process_init

    gc.unfreeze()
    try:
        assert gc.get_freeze_count() == 0
        worker_process_init.send(sender="test@host")
        assert gc.get_freeze_count() > 1000
    finally:
        gc.unfreeze()
