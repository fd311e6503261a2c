"""Re-planning a full year for many generated municipalities, twice (issue 11).

    .venv/bin/python bench/replan290.py [--municipalities 290]

Each municipality is profiles/exempel.yaml under another key (its own people, units and
routines; the attachments are shared files). All are loaded (`load_profile`, which plans);
then every outbox row is deleted and the nightly re-plan (`worker.tasks.replan`'s body:
`scheduler.planner.replan(..., reuse=True)` for each municipality, one transaction, horizon 400
days) runs twice at the same moment: the first run writes the year, the second has nothing to
change and stands on the first one's plan stamps (scheduler/planstamp.py). A third run at the
same moment plans and compares in full (`reuse=False`, what every run did before the stamps),
and a fourth is the next night's (a day later, reusing where the stamp holds).
Rows written: what the planner reports (created + updated + revived + cancelled) and what
PostgreSQL counted (`pg_stat_user_tables`: rows inserted, updated and deleted, all tables).
Database: `bench_replan` on the local PostgreSQL, dropped at the end.
"""

# ruff: noqa: E402  (imports follow the sys.path set-up, so each script runs alone)

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]

import _services
from _common import table, write_tables
from sqlalchemy import Engine, delete, select, text

import models
from models.db import make_engine, make_sessionmaker, transaction
from scheduler.planner import replan
from service.profilecheck import validate_profile
from service.profilesync import load_profile

DATABASE = "bench_replan"
NOW = dt.datetime(2026, 8, 1, 6, 0, tzinfo=dt.UTC)  # a year from the summer break
HORIZON_DAYS = 400  # samverkan/settings.py's default
HEADERS = [
    "re-plan",
    "seconds",
    "rows written (planner)",
    "rows written (PostgreSQL)",
    "unchanged",
    "plans reused",
]


def write_profiles(folder: Path, count: int) -> list[Path]:
    source = (ROOT / "profiles" / "exempel.yaml").read_text(encoding="utf-8")
    shutil.copytree(ROOT / "profiles" / "material", folder / "material")
    assert source.count("  key: exempel\n") == 1
    paths = []
    for i in range(count):
        path = folder / f"kommun-{i:03d}.yaml"
        path.write_text(
            source.replace("  key: exempel\n", f"  key: kommun-{i:03d}\n", 1).replace(
                "  name: Exempelby kommun\n", f"  name: Kommun {i}\n", 1
            ),
            encoding="utf-8",
        )
        paths.append(path)
    return paths


def written(engine: Engine) -> int:
    """Rows inserted, updated and deleted in all user tables so far (PostgreSQL's counters)."""
    time.sleep(2)  # a backend reports its counters within a second of going idle
    with engine.connect() as c:
        c.execute(text("SELECT pg_stat_clear_snapshot()"))
        value = c.scalar(
            text("SELECT sum(n_tup_ins + n_tup_upd + n_tup_del) FROM pg_stat_user_tables")
        )
    return int(value or 0)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--municipalities", type=int, default=290)
    args = parser.parse_args(argv)
    directory = Path(tempfile.mkdtemp(prefix="bench-replan-"))
    _services.drop_database(DATABASE)
    engine = make_engine(_services.database(DATABASE))
    sessions = make_sessionmaker(engine)
    results: list[list[str]] = []
    try:
        models.Base.metadata.create_all(engine)
        paths = write_profiles(directory, args.municipalities)
        t0 = time.perf_counter()
        planned = 0
        for path in paths:
            valid = validate_profile(path, NOW.date())
            with transaction(sessions) as session:
                planned += load_profile(session, valid, NOW, HORIZON_DAYS).plan.created
        load_s = time.perf_counter() - t0
        print(f"  replan: {len(paths)} loaded in {load_s:.0f} s ({planned:,} rows)", flush=True)
        with transaction(sessions) as session:
            session.execute(delete(models.DeliveryAttempt))
            session.execute(delete(models.Notification))
            session.execute(delete(models.PlanStamp))  # a first night: no plan to stand on
        runs = [
            ("first run (empty outbox)", NOW, True),
            ("second run (nothing changed)", NOW, True),
            ("third run, in full (nothing changed, stamps not used)", NOW, False),
            ("the next night (a day later)", NOW + dt.timedelta(days=1), True),
        ]
        for label, moment, reuse in runs:
            before = written(engine)
            t0 = time.perf_counter()
            changed = unchanged = reused = 0
            with transaction(sessions) as session:
                for municipality_id in list(session.scalars(select(models.Municipality.id))):
                    result = replan(session, municipality_id, moment, HORIZON_DAYS, reuse=reuse)
                    changed += result.created + result.updated + result.revived + result.cancelled
                    unchanged += result.unchanged
                    reused += result.reused
            seconds = time.perf_counter() - t0
            by_postgres = written(engine) - before
            results.append([label, f"{seconds:.2f}", f"{changed:,}", f"{by_postgres:,}",
                            f"{unchanged:,}", f"{reused}"])  # fmt: skip
            print(f"  replan: {label}: {seconds:.1f} s, {changed:,} rows", flush=True)
    finally:
        engine.dispose()
        _services.drop_database(DATABASE)
        shutil.rmtree(directory, ignore_errors=True)
    first, second, full, _ = (float(r[1]) for r in results)
    out = (
        f"### Re-plan of {args.municipalities} municipalities (profiles/exempel.yaml each), "
        f"horizon {HORIZON_DAYS} days, at {NOW:%Y-%m-%d %H:%M} UTC\n\n"
        f"Loading them (which plans): {load_s:.0f} s, {planned:,} rows.\n\n"
        + table(HEADERS, results)
        + f"\n\nsecond ÷ first = {second / first:.3f}; in full: {full / first:.2f}\n"
    )
    print(out, flush=True)
    return out


if __name__ == "__main__":
    write_tables(main)
