"""The one window SMTP leaves open: the server accepted the message, the row is not yet `sent`.

Measured here over a mailout through the real SmtpMailer to a real SMTP server and PostgreSQL,
and shown to be the only source of a second copy: a worker that dies inside it leaves the row
`sending`, the sweeper puts it back after the lease, and the copy sent again carries the same
Message-ID (so mail clients and servers that de-duplicate on it show one message).
"""

from __future__ import annotations

import datetime as dt
import statistics
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

import worker.delivery as delivery_module
from core.settings import ROOT, Settings
from models import Status
from models.db import transaction
from scheduler.outbox import claim_due, sweep_expired
from tests.faults.harness import FaultReport, Outbox, messages, mode, write_profile
from tests.fixtures.services import PostgresSchema
from tests.fixtures.smtp import SmtpRecorder
from worker.delivery import Delivery, DeliveryOutcome, deliver_batch, deliver_one
from worker.mailers import SendResult
from worker.render import Renderer
from worker.smtp_mailer import SmtpMailer


class TimedMailer:
    """SmtpMailer that notes when the server's 250 to DATA came back."""

    def __init__(self, inner: SmtpMailer) -> None:
        self.inner = inner
        self.accepted: dict[str, float] = {}

    def send(self, message: EmailMessage) -> SendResult:
        result = self.inner.send(message)
        self.accepted[str(message["Message-ID"])] = time.perf_counter()
        return result

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def outbox(postgres_schema: PostgresSchema) -> Iterator[Outbox]:
    box = Outbox(postgres_schema.url)
    try:
        yield box
    finally:
        box.close()


def test_the_window_between_accepted_and_recorded_is_milliseconds(
    tmp_path: Path, outbox: Outbox, smtp_server: SmtpRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    n = messages()
    outbox.load(write_profile(tmp_path / "felprov.yaml", n))
    ids = outbox.mailout_ids()
    now = dt.datetime.now(dt.UTC)
    outbox.make_due(ids, now)
    mailer = TimedMailer(SmtpMailer(smtp_server.smtp_config()))
    recorded: dict[int, float] = {}
    original = delivery_module._record_sent

    def timed_record(*args: Any, **kwargs: Any) -> None:
        original(*args, **kwargs)
        recorded[args[1]] = time.perf_counter()

    monkeypatch.setattr(delivery_module, "_record_sent", timed_record)
    delivery = Delivery(outbox.sessions, mailer, Renderer(ROOT / "templates"))
    with transaction(outbox.sessions) as session:
        claimed = claim_due(session, now, n)
    began = time.monotonic()
    try:
        size = Settings().deliver_batch  # the service's batches, as a worker takes them
        for start in range(0, len(claimed), size):
            outcomes = deliver_batch(delivery, claimed[start : start + size], now)
            assert set(outcomes.values()) == {DeliveryOutcome.SENT}
    finally:
        mailer.close()
    seconds = time.monotonic() - began
    by_id = {r.id: r.message_id for r in outbox.rows(ids)}
    windows = sorted(
        (recorded[i] - mailer.accepted[by_id[i]]) * 1000 for i in claimed if i in recorded
    )
    assert len(windows) == n
    p50 = statistics.median(windows)
    p99 = windows[min(n - 1, int(n * 0.99))]
    FaultReport(
        scenario="window: SMTP 250 → row sent (one worker)",
        mode=mode(),
        planned=n,
        sent=len(smtp_server.received),
        lost=0,
        duplicated=0,
        drain_seconds=round(seconds, 1),
        details={
            "window_ms_p50": round(p50, 2),
            "window_ms_p99": round(p99, 2),
            "window_ms_max": round(windows[-1], 2),
        },
    ).record()
    assert len(smtp_server.received) == n
    assert p50 < 50 and windows[-1] < 2000  # milliseconds: one small transaction


class Crash(BaseException):
    """The worker process dies (not an exception any code would catch)."""


def test_a_worker_dying_inside_the_window_sends_the_same_message_id_again(
    tmp_path: Path, outbox: Outbox, smtp_server: SmtpRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    outbox.load(write_profile(tmp_path / "felprov.yaml", 3))
    ids = outbox.mailout_ids()
    now = dt.datetime.now(dt.UTC)
    outbox.make_due(ids, now)
    mailer = SmtpMailer(smtp_server.smtp_config())
    delivery = Delivery(outbox.sessions, mailer, Renderer(ROOT / "templates"))
    original = delivery_module._record_sent

    def die(*_args: Any, **_kwargs: Any) -> None:
        raise Crash

    try:
        with transaction(outbox.sessions) as session:
            first, *rest = claim_due(session, now, 10)
        monkeypatch.setattr(delivery_module, "_record_sent", die)
        with pytest.raises(Crash):
            deliver_one(delivery, first, now)
        monkeypatch.setattr(delivery_module, "_record_sent", original)
        for other in rest:
            assert deliver_one(delivery, other, now) is DeliveryOutcome.SENT
        assert outbox.ids_in(Status.SENDING, ids) == {first}
        lease = dt.timedelta(seconds=600)
        with transaction(outbox.sessions) as session:
            # Not before the lease has run out ...
            assert sweep_expired(session, dt.datetime.now(dt.UTC), lease) == 0
        later = dt.datetime.now(dt.UTC) + lease + dt.timedelta(seconds=1)
        with transaction(outbox.sessions) as session:
            assert sweep_expired(session, later, lease) == 1  # ... then it is put back
            assert claim_due(session, later, 10) == [first]
        assert deliver_one(delivery, first, later) is DeliveryOutcome.SENT
    finally:
        mailer.close()
    (row,) = outbox.rows([first])
    copies = [m for m in smtp_server.received if m.message["Message-ID"] == row.message_id]
    assert len(copies) == 2 and len(smtp_server.received) == 4
    assert row.status == Status.SENT and row.attempts == 2
    assert [a.outcome for a in outbox.attempts()[first]] == ["sent"]  # the first never recorded
    assert copies[0].message["Subject"] == copies[1].message["Subject"]
    assert copies[0].rcpt_tos == copies[1].rcpt_tos
