"""A mailout's attachment through the real delivery path: every recipient gets the file's
exact bytes, and a worker process reads those bytes from the database once, not once per
message (worker.outgoing's cache), while name and type are read for every message."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session, sessionmaker

import models
from core.settings import ROOT
from models.db import transaction
from scheduler.outbox import claim_due, sweep_expired
from tests.profiles import load, write_variant
from worker import outgoing
from worker.delivery import Delivery, DeliveryOutcome, deliver_one
from worker.mailers import MemoryMailer, wire_bytes
from worker.prebuilt import PART_CACHE
from worker.render import Renderer

NOW = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC)
END_OF_2027 = dt.datetime(2027, 12, 31, tzinfo=dt.UTC)
PDF = bytes(range(256)) * 600 + b"%%EOF"


@pytest.fixture(autouse=True)
def empty_caches() -> Iterator[None]:
    outgoing.CONTENT_CACHE.clear()
    PART_CACHE.clear()
    yield
    outgoing.CONTENT_CACHE.clear()
    PART_CACHE.clear()


def with_pdf(tmp_path: Path, content: bytes) -> Path:
    (tmp_path / "Föräldrastöd.pdf").write_bytes(content)
    return write_variant(
        tmp_path,
        "    kind: deadline\n",
        '    kind: deadline\n    attachments: ["Föräldrastöd.pdf"]\n',
    )


def content_reads(engine: Engine) -> list[str]:
    seen: list[str] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "material.content" in statement:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", capture)
    return seen


def deliver_all(
    sessions: sessionmaker[Session], mailer: MemoryMailer, limit: int = 10_000
) -> list[int]:
    with transaction(sessions) as session:
        ids = claim_due(session, END_OF_2027, limit)
    delivery = Delivery(sessions, mailer, Renderer(ROOT / "templates"))
    outcomes = [deliver_one(delivery, i, END_OF_2027) for i in ids]
    assert set(outcomes) == {DeliveryOutcome.SENT}
    return ids


def attachments_of(message: email.message.EmailMessage) -> list[tuple[str | None, bytes]]:
    parsed = email.message_from_bytes(
        wire_bytes(message, email.policy.SMTP), policy=email.policy.default
    )
    return [
        (part.get_filename(), part.get_payload(decode=True))  # type: ignore[misc]
        for part in parsed.iter_attachments()
    ]


def test_every_recipient_gets_the_exact_bytes_read_once_per_process(
    tmp_path: Path, session_factory: sessionmaker[Session]
) -> None:
    load(session_factory, with_pdf(tmp_path, PDF), NOW)
    engine = session_factory.kw["bind"]
    reads = content_reads(engine)
    mailer = MemoryMailer()
    deliver_all(session_factory, mailer)
    with_file = [m for m in mailer.messages if attachments_of(m)]
    assert len(with_file) >= 2, "the routine with the attachment sends several messages"
    for message in with_file:
        assert attachments_of(message) == [("Föräldrastöd.pdf", PDF)]
    assert len({str(m["To"]) for m in with_file}) >= 2
    assert len(reads) == 1, reads


def test_a_new_file_is_read_and_sent_not_the_one_kept_in_memory(
    tmp_path: Path, session_factory: sessionmaker[Session]
) -> None:
    """The cache is keyed by the material row and its hash: a profile loaded again with
    another file under the same name sends the new bytes."""
    first = tmp_path / "first"
    first.mkdir()
    load(session_factory, with_pdf(first, PDF), NOW)
    mailer = MemoryMailer()
    with transaction(session_factory) as session:
        ids = claim_due(session, END_OF_2027, 10_000)
    delivery = Delivery(session_factory, mailer, Renderer(ROOT / "templates"))
    for notification_id in ids:  # until the first message with the file: it is kept now
        deliver_one(delivery, notification_id, END_OF_2027)
        if attachments_of(mailer.messages[-1]):
            break
    assert attachments_of(mailer.messages[-1]) == [("Föräldrastöd.pdf", PDF)]
    with transaction(session_factory) as session:  # the rest back to pending
        sweep_expired(session, END_OF_2027 + dt.timedelta(days=1), dt.timedelta(0))

    second = tmp_path / "second"
    second.mkdir()
    load(session_factory, with_pdf(second, b"%PDF-1.7 version 2"), NOW)
    with transaction(session_factory) as session:
        assert len(session.scalars(select(models.Material)).all()) == 2
    later = MemoryMailer()
    deliver_all(session_factory, later)
    sent = [attachments_of(m) for m in later.messages if attachments_of(m)]
    assert sent and all(a == [("Föräldrastöd.pdf", b"%PDF-1.7 version 2")] for a in sent), sent
