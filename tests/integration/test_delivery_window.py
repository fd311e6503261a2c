"""A batch through the real SMTP mailer to a real server: no message reaches the server before
the record of the one before it (the window of docs/reliability.md stays one message)."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import models
from core.settings import ROOT
from models import Status
from tests.fixtures.smtp import Received, SmtpRecorder
from tests.integration.test_mailers import smtp_server
from tests.integration.test_outbox_delivery import END_OF_2027, claim, loaded
from worker.delivery import Delivery, DeliveryOutcome, deliver_batch
from worker.render import Renderer
from worker.smtp_mailer import SmtpMailer

__all__ = ["loaded", "smtp_server"]  # the fixtures, used by name

pytestmark = pytest.mark.integration


def _message_ids(sessions: sessionmaker[Session], ids: list[int]) -> dict[str, int]:
    with sessions() as session:
        rows = session.execute(
            select(models.Notification.message_id, models.Notification.id).where(
                models.Notification.id.in_(ids)
            )
        )
        return {message_id.strip("<>"): notification_id for message_id, notification_id in rows}


def _sent(sessions: sessionmaker[Session], ids: list[int]) -> set[int]:
    with sessions() as session:
        return set(
            session.scalars(
                select(models.Notification.id).where(
                    models.Notification.id.in_(ids), models.Notification.status == Status.SENT
                )
            )
        )


def test_no_message_reaches_the_server_before_the_record_of_the_one_before_it(
    smtp_server: SmtpRecorder, loaded: sessionmaker[Session]
) -> None:
    ids = claim(loaded, END_OF_2027)[:3]
    assert len(ids) == 3
    by_message_id = _message_ids(loaded, ids)
    accepted: list[int] = []
    unrecorded_at_accept: list[set[int]] = []

    def on_accept(received: Received) -> None:
        # The server is about to take a message: every message it took before must be
        # recorded by now.
        unrecorded_at_accept.append(set(accepted) - _sent(loaded, ids))
        accepted.append(by_message_id[str(received.message["Message-ID"]).strip("<>")])

    smtp_server.on_accept = on_accept
    mailer = SmtpMailer(smtp_server.smtp_config(), local_hostname="worker.test")
    delivery = Delivery(loaded, mailer, Renderer(ROOT / "templates"))
    try:
        outcomes = deliver_batch(delivery, ids, END_OF_2027)
    finally:
        mailer.close()

    assert outcomes == {i: DeliveryOutcome.SENT for i in ids}
    assert accepted == ids
    assert unrecorded_at_accept == [set()] * len(ids)
    assert smtp_server.connections == 1
