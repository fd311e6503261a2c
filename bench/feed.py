"""The cost of a calendar feed poll: unchanged (304) against full (200 with the body).

Calendar clients poll a subscribed feed every few minutes; an unchanged poll should cost
almost nothing. This loads the example profile into a fresh SQLite file (or the PostgreSQL
database given with --database-url), books the spring meeting, opens a case, makes a feed
for its owner (a rektor), serves the app with uvicorn on 127.0.0.1 (in a thread of this
process) and requests `/feeds/<token>.ics` over HTTP with one keep-alive connection, as a
calendar client would (routing, token lookup, version query, and for a full poll the plan and
the iCalendar body):

    .venv/bin/python bench/feed.py [--polls 200] [--database-url postgresql://...]

Prints the median and 90th percentile in milliseconds and sequential requests per second.
No timing is asserted anywhere; the machine is shared, read the ratio.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx2  # noqa: E402
import uvicorn  # noqa: E402
from sqlalchemy import select  # noqa: E402

import models  # noqa: E402
from models.db import make_engine, make_sessionmaker, transaction  # noqa: E402
from models.migrate import upgrade  # noqa: E402
from service import cases  # noqa: E402
from service.booking import book_routine_meeting  # noqa: E402
from service.profiles import load_profile, validate_profile  # noqa: E402
from web import feeds  # noqa: E402
from web.app import create_app  # noqa: E402
from web.config import WebConfig  # noqa: E402

NOW = dt.datetime(2027, 3, 1, 9, 0, tzinfo=dt.UTC)


class Clock:
    def now(self) -> dt.datetime:
        return NOW


def prepare(url: str) -> str:
    upgrade(url)
    sessions = make_sessionmaker(make_engine(url))
    valid = validate_profile(ROOT / "profiles" / "exempel.yaml", NOW.date())
    with transaction(sessions) as session:
        load_profile(session, valid, NOW - dt.timedelta(days=30), 400)
        town = session.scalars(select(models.Municipality.id)).one()
        book_routine_meeting(
            session, town, "samverkansmote-var", "2027-04-13", "13:00", None, NOW, 400
        )
        request = cases.CaseRequest(
            owner="ingrid-mattsson", by="ingrid-mattsson", school="kyrkbacksskolan",
            family_worker="emma-sandberg", known_on=NOW.date(),
        )  # fmt: skip
        cases.open_case(session, town, request, NOW)
        person = session.scalars(
            select(models.Person).where(models.Person.key == "ingrid-mattsson")
        ).one()
        return feeds.new_token(session, person.id, NOW)


def measure(
    client: httpx2.Client, path: str, headers: dict[str, str], n: int, status: int
) -> list[float]:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        answer = client.get(path, headers=headers)
        times.append((time.perf_counter() - start) * 1000)
        assert answer.status_code == status, answer.status_code
    return times


def row(name: str, times: list[float]) -> str:
    median = statistics.median(times)
    p90 = statistics.quantiles(times, n=10)[-1]
    return f"| {name} | {median:.2f} | {p90:.2f} | {1000 * len(times) / sum(times):.0f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--polls", type=int, default=200)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{Path(folder) / 'feed.db'}"
        token = prepare(url)
        sessions = make_sessionmaker(make_engine(url))
        app = create_app(sessions, WebConfig(clock=Clock(), secure_cookies=False))
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        try:
            with httpx2.Client(base_url=f"http://127.0.0.1:{port}") as client:
                path = f"/feeds/{token}.ics"
                first = client.get(path)
                etag, size = first.headers["etag"], len(first.content)
                measure(client, path, {}, 5, 200)  # warm up
                unchanged = measure(client, path, {"If-None-Match": etag}, args.polls, 304)
                full = measure(client, path, {}, max(args.polls // 4, 20), 200)
        finally:
            server.should_exit = True
            thread.join()
    backend = url.split(":", 1)[0]
    print(f"feed of one rektor, {size} bytes, {backend}; {args.polls} unchanged polls\n")
    print("| poll | median ms | p90 ms | requests/s (sequential) |")
    print("|---|---|---|---|")
    print(row("unchanged (304, If-None-Match)", unchanged))
    print(row("full (200, body built)", full))
    ratio = statistics.median(full) / statistics.median(unchanged)
    print(f"\nfull / unchanged, medians: {ratio:.1f}×")


if __name__ == "__main__":
    main()
