"""The six fault-injection scenarios of issue 4, against real processes (see harness.py).

Each drives a mailout (or, in scenario 5, a simulated year) through `samverkan worker`
processes, Redis, PostgreSQL and an SMTP server, then counts per Message-ID what arrived:
lost, duplicated, and the time to drain. Figures: docs/reliability.md.
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from celery import Celery

from models import Status
from tests.faults.harness import (
    Cluster,
    Outbox,
    all_final,
    arrivals,
    bad_address,
    count,
    drain_timeout,
    messages,
    start_mailout,
    wait_until,
    write_profile,
)
from tests.fixtures.services import RedisProcess
from tests.fixtures.smtp import SmtpRecorder

MakeCluster = Callable[..., Cluster]


def mailout(tmp_path: Path, outbox: Outbox, n: int, **options: object) -> list[int]:
    profile = write_profile(tmp_path / "felprov.yaml", n, **options)  # type: ignore[arg-type]
    outbox.load(profile)
    ids = outbox.mailout_ids()
    assert len(ids) == n
    return ids


def assert_no_loss(report_lost: int, cluster: Cluster) -> None:
    assert report_lost == 0, cluster.logs()


# --------------------------------------------------------------------------- 1. kill -9


def test_1_worker_killed_mid_mailout_loses_nothing(
    tmp_path: Path, outbox: Outbox, smtp_server: SmtpRecorder, make_cluster: MakeCluster
) -> None:
    n = messages()
    ids = mailout(tmp_path, outbox, n)
    cluster = make_cluster()
    first = cluster.worker()
    cluster.beat()
    began = start_mailout(outbox, smtp_server, ids)
    wait_until(lambda: len(smtp_server.received) >= n // 3, drain_timeout(n, cluster), "a third")
    # kill -9 while sends are in flight: wait (briefly) for a row to be in `sending`.
    wait_until(lambda: bool(outbox.ids_in(Status.SENDING, ids)), 10, "a send in flight", 0.005)
    cluster.kill(first)
    killed_at = time.monotonic()
    in_flight = outbox.ids_in(Status.SENDING, ids)
    cluster.worker()
    wait_until(all_final(outbox, ids), drain_timeout(n, cluster), "the mailout to drain")
    drained = time.monotonic()
    rows = {r.id: r for r in outbox.rows(ids)}
    got = arrivals(smtp_server)
    duplicated_rows = {i for i, r in rows.items() if got[r.message_id] > 1}
    attempts = outbox.attempts()
    report = count(
        "1. kill -9 of the worker, restart",
        outbox,
        smtp_server,
        ids,
        drained - began,
        worker_restarts=cluster.restarts,
        in_flight_at_kill=len(in_flight),
        recovery_seconds=round(drained - killed_at, 1),
    )
    assert_no_loss(report.lost, cluster)
    assert all(r.status == Status.SENT for r in rows.values())
    # A duplicate only where the killed worker had the row in `sending`: the window.
    assert duplicated_rows <= in_flight
    assert report.duplicated <= len(in_flight)
    for i in duplicated_rows:
        # The first send was never recorded: claimed twice, one attempt in the log.
        assert rows[i].attempts == 2 and len(attempts[i]) == 1
        copies = [m for m in smtp_server.received if m.message["Message-ID"] == rows[i].message_id]
        assert len({m.message["Message-ID"] for m in copies}) == 1


# --------------------------------------------------------------------------- 2. Redis


def test_2_redis_restarted_and_flushed_mid_mailout_loses_nothing(
    tmp_path: Path,
    outbox: Outbox,
    smtp_server: SmtpRecorder,
    redis_server: RedisProcess,
    make_cluster: MakeCluster,
) -> None:
    n = messages()
    ids = mailout(tmp_path, outbox, n)
    cluster = make_cluster()
    cluster.worker()
    cluster.beat()
    began = start_mailout(outbox, smtp_server, ids)
    wait_until(lambda: len(smtp_server.received) >= n // 3, drain_timeout(n, cluster), "a third")
    queued = len(outbox.ids_in(Status.QUEUED, ids))
    redis_server.flushall()
    redis_server.restart(down_for=1.0)
    restarted = time.monotonic()
    wait_until(all_final(outbox, ids), drain_timeout(n, cluster), "the mailout to drain")
    drained = time.monotonic()
    report = count(
        "2. Redis flushed and restarted",
        outbox,
        smtp_server,
        ids,
        drained - began,
        worker_restarts=cluster.restarts,
        queued_when_flushed=queued,
        recovery_seconds=round(drained - restarted, 1),
    )
    assert_no_loss(report.lost, cluster)
    assert report.duplicated == 0
    assert outbox.statuses(ids) == Counter({Status.SENT: n})


# --------------------------------------------------------------------------- 3. SMTP outage


def test_3_smtp_refuses_then_defers_then_recovers(
    tmp_path: Path, outbox: Outbox, smtp_server: SmtpRecorder, make_cluster: MakeCluster
) -> None:
    n = messages()
    ids = mailout(tmp_path, outbox, n)
    cluster = make_cluster()
    cluster.worker()
    cluster.beat()
    outage = 6.0 + n / 200  # long enough, at either size, for rows to be retried several times
    began = start_mailout(outbox, smtp_server, ids)
    wait_until(lambda: len(smtp_server.received) >= n // 4, drain_timeout(n, cluster), "a quarter")
    smtp_server.stop()  # connections refused
    time.sleep(outage)
    smtp_server.start()
    smtp_server.fail_all(451, "4.3.0 Try again later", commands=("RCPT", "DATA"))
    time.sleep(outage / 2)
    smtp_server.fail_all(421, "4.3.2 Service not available, closing channel", commands=("MAIL",))
    time.sleep(outage / 2)
    smtp_server.recover()
    recovered = time.monotonic()
    wait_until(all_final(outbox, ids), drain_timeout(n, cluster), "the mailout to drain")
    drained = time.monotonic()
    attempts = outbox.attempts()
    codes: Counter[str] = Counter()
    retried = 0
    for log in attempts.values():
        transient = [a for a in log if a.outcome == "transient"]
        if transient:
            retried += 1
        for a in transient:
            codes[str(a.smtp_code or "refused")] += 1
        # Backoff: the n-th retry waits at least half of base·2^(n−1) (base 1 s here).
        for earlier, later in itertools.pairwise(log):
            if earlier.outcome == "transient":
                gap = (later.at - earlier.at).total_seconds()
                assert gap >= 0.5 * 2 ** (earlier.number - 1) - 0.01, (earlier.number, gap)
    most = max((len(log) for log in attempts.values()), default=0)
    report = count(
        "3. SMTP refused, then 451/421, then recovers",
        outbox,
        smtp_server,
        ids,
        drained - began,
        worker_restarts=cluster.restarts,
        retried_rows=retried,
        transient_attempts=dict(codes),
        most_attempts=most,
        rows_by_attempts=dict(sorted(Counter(len(log) for log in attempts.values()).items())),
        recovery_seconds=round(drained - recovered, 1),
    )
    assert_no_loss(report.lost, cluster)
    assert report.duplicated == 0
    assert outbox.statuses(ids) == Counter({Status.SENT: n})
    assert retried > 0 and most >= 2
    assert {"refused", "451", "421"} <= set(codes)


# --------------------------------------------------------------------------- 4. 550 + digest


def test_4_refused_addresses_fail_once_and_the_digest_lists_exactly_them(
    tmp_path: Path,
    outbox: Outbox,
    smtp_server: SmtpRecorder,
    redis_server: RedisProcess,
    make_cluster: MakeCluster,
) -> None:
    n = messages()
    bad = set(range(3, n, 20))  # one address in twenty
    ids = mailout(tmp_path, outbox, n, bad_addresses=bad)
    for i in bad:
        smtp_server.fail_rcpt(bad_address(i), 550, "5.1.1 No such user")
    cluster = make_cluster()
    cluster.worker()
    cluster.beat()
    began = time.monotonic()
    outbox.make_due(ids)
    wait_until(all_final(outbox, ids), drain_timeout(n, cluster), "the mailout to drain")
    drained = time.monotonic()
    rows = outbox.rows(ids)
    failed = [r for r in rows if r.status == Status.FAILED]
    attempts = outbox.attempts()
    assert {r.recipient_email for r in failed} == {bad_address(i) for i in bad}
    for r in failed:
        assert r.attempts == 1
        assert [(a.outcome, a.smtp_code) for a in attempts[r.id]] == [("permanent", 550)]

    # The digest: planned by the worker (the task beat sends at 07:00), sent by the next tick.
    time.sleep(cluster.lease + 1)  # the digest leaves the last lease to the next one
    before = len(smtp_server.received)
    client = Celery(broker=redis_server.url)
    try:
        client.send_task("samverkan.digest")
    finally:
        client.close()
    mails = smtp_server.wait_for(before + 2, timeout=60)[before:]
    listed: list[set[str]] = []
    for mail in mails:
        assert mail.rcpt_tos[0].startswith("samordnare-")
        body = mail.message.get_body(preferencelist=("plain",))
        assert body is not None
        content = body.get_content()
        found = re.findall(r"Mottagare: (\S+)", content)
        assert len(found) == len(set(found))
        listed.append(set(found))
        html = mail.message.get_body(preferencelist=("html",))
        assert html is not None and all(addr in html.get_content() for addr in found)
    assert listed == [{bad_address(i) for i in bad}] * 2
    report = count(
        "4. 550 for some addresses, digest",
        outbox,
        smtp_server,
        ids,
        drained - began,
        worker_restarts=cluster.restarts,
        refused_addresses=len(bad),
        digest_lists=len(listed[0]),
        digests_sent=len(mails),
    )
    assert_no_loss(report.lost, cluster)
    assert report.duplicated == 0
    assert report.details["failed_rows_that_arrived"] == 0
    # A second digest the same day plans nothing new.
    client = Celery(broker=redis_server.url)
    try:
        client.send_task("samverkan.digest")
    finally:
        client.close()
    time.sleep(3)
    assert len(smtp_server.received) == before + 2


# --------------------------------------------------------------------------- 5. a year, 3 + 2


def test_5_three_tickers_and_two_workers_over_a_simulated_year(
    tmp_path: Path, outbox: Outbox, smtp_server: SmtpRecorder, make_cluster: MakeCluster
) -> None:
    n = messages()
    rektorer = max(5, -(-n // 12))
    outbox.load(write_profile(tmp_path / "felprov.yaml", rektorer, monthly=True))
    batch = str(max(5, rektorer // 4))  # several claims per due moment, so the three interleave
    cluster = make_cluster(tick_batch=batch)
    cluster.worker()
    cluster.worker()
    began = time.monotonic()
    simulations = [
        cluster.start(
            "simulate", "--from", "2027-01-01", "--to", "2027-12-31", "--worker", "external",
            "--no-progress",
        )
        for _ in range(3)
    ]  # fmt: skip
    deadline = drain_timeout(12 * rektorer, cluster) + 120
    for process in simulations:
        assert process.wait(timeout=deadline) == 0, cluster.logs()
    drained = time.monotonic()
    year = [
        r.id
        for r in outbox.rows()
        if r.routine_key.startswith("utskick-") and r.due_at.year == 2027
    ]
    outputs = [p.read_text() for p in sorted(tmp_path.glob("*-simulate.log"))]
    claimed = [int(m.group(1)) for o in outputs for m in re.finditer(r"messages sent: (\d+)", o)]
    report = count(
        "5. three tickers + two workers, a year",
        outbox,
        smtp_server,
        year,
        drained - began,
        worker_restarts=cluster.restarts,
        sent_per_ticker=claimed,
    )
    assert len(year) >= 12 * rektorer
    assert_no_loss(report.lost, cluster)
    assert report.duplicated == 0
    assert outbox.statuses(year) == Counter({Status.SENT: len(year)})
    assert sum(claimed) == len(year)  # each row claimed by exactly one of the three


# --------------------------------------------------------------------------- 6. PostgreSQL


def test_6_postgres_connections_dropped_mid_tick(
    tmp_path: Path, outbox: Outbox, smtp_server: SmtpRecorder, make_cluster: MakeCluster
) -> None:
    n = messages()
    ids = mailout(tmp_path, outbox, n)
    cluster = make_cluster()
    cluster.worker()
    cluster.beat()
    began = start_mailout(outbox, smtp_server, ids)
    states: Counter[str] = Counter()
    stop = threading.Event()

    def drop_connections() -> None:
        while not stop.is_set() and sum(states.values()) < 60:
            states.update(outbox.terminate(cluster.application_name))
            stop.wait(0.3)

    wait_until(lambda: len(smtp_server.received) >= n // 5, drain_timeout(n, cluster), "a fifth")
    dropper = threading.Thread(target=drop_connections, daemon=True)
    dropper.start()
    wait_until(lambda: len(smtp_server.received) >= 3 * n // 5, drain_timeout(n, cluster), "more")
    stop.set()
    dropper.join(timeout=10)
    stopped = time.monotonic()
    wait_until(all_final(outbox, ids), drain_timeout(n, cluster), "the mailout to drain")
    drained = time.monotonic()
    report = count(
        "6. PostgreSQL connections dropped",
        outbox,
        smtp_server,
        ids,
        drained - began,
        worker_restarts=cluster.restarts,
        backends_terminated=dict(states),
        recovery_seconds=round(drained - stopped, 1),
    )
    assert sum(states.values()) > 0
    assert_no_loss(report.lost, cluster)
    assert report.duplicated == 0
    assert outbox.statuses(ids) == Counter({Status.SENT: n})
