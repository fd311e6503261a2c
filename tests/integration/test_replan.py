"""Re-planning never loses a message: far rows are checked again, not cancelled for being
far, and a cancelled message planned again comes back with its key and Message-ID."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import models
from models.db import transaction
from scheduler import outbox
from tests.profiles import EXAMPLE, MINIMAL, load
from tests.simulation import outbox_problems, routine_rows, simulate_inline

NOW = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC)
TEXT = MINIMAL.read_text(encoding="utf-8")


def rows_by_key(sessions: sessionmaker[Session]) -> dict[str, models.Notification]:
    with sessions() as session:
        found = routine_rows(session)
        for r in found:
            session.expunge(r)
    return {r.idempotency_key: r for r in found}


def statuses(sessions: sessionmaker[Session]) -> dict[str, str]:
    return {k: r.status for k, r in rows_by_key(sessions).items()}


def without(tmp_path: Path, start: str, end: str) -> Path:
    """MINIMAL with the text from `start` up to `end` taken out."""
    target = tmp_path / "variant.yaml"
    target.write_text(TEXT[: TEXT.index(start)] + TEXT[TEXT.index(end) :], encoding="utf-8")
    return target


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ((NOW, 400), (NOW, 30)),  # the same moment, a shorter horizon
        ((NOW, 400), (NOW + dt.timedelta(days=1), 1)),
        ((NOW + dt.timedelta(days=120), 400), (NOW, 30)),  # an earlier moment
        ((NOW + dt.timedelta(days=120), 400), (NOW, 400)),
    ],
)
def test_a_replan_with_a_shorter_reach_cancels_nothing(
    first: tuple[dt.datetime, int],
    second: tuple[dt.datetime, int],
    session_factory: sessionmaker[Session],
) -> None:
    load(session_factory, MINIMAL, *first)
    before = statuses(session_factory)
    result = load(session_factory, MINIMAL, *second)
    after = statuses(session_factory)
    assert result.plan.cancelled == 0
    assert {k: after[k] for k in before} == before
    assert models.Status.CANCELLED not in after.values()
    with session_factory() as session:
        assert outbox_problems(session, second[0], second[1]) == []


CECILIA_IS_RECTOR = "      - role: rektor\n        unit: ekskolan\n        from: 2027-02-01\n"
TAKEN_OUT = {
    "routine": ("  - key: utvardering\n", "  - key: samverkansmote-var\n"),
    "message": ("      - purpose: underlag\n", "  - key: samverkansmote-var\n"),
    "role": (CECILIA_IS_RECTOR, "      - role: samordnare\n"),
}


def variant(tmp_path: Path, what: str) -> Path:
    old, new = TAKEN_OUT[what]
    if what == "role":  # a person keeps at least one role: she holds another one instead
        target = tmp_path / "variant.yaml"
        target.write_text(TEXT.replace(old, new), encoding="utf-8")
        return target
    return without(tmp_path, old, new)


@pytest.mark.parametrize("what", sorted(TAKEN_OUT))
def test_a_cancelled_message_planned_again_comes_back_with_its_key_and_message_id(
    what: str, tmp_path: Path, session_factory: sessionmaker[Session]
) -> None:
    load(session_factory, MINIMAL, NOW)
    original = rows_by_key(session_factory)
    changed = load(session_factory, variant(tmp_path, what), NOW)
    cancelled = {
        k for k, r in rows_by_key(session_factory).items() if r.status == models.Status.CANCELLED
    }
    assert cancelled
    assert changed.plan.cancelled == len(cancelled)
    restored = load(session_factory, MINIMAL, NOW + dt.timedelta(hours=1))
    assert restored.plan.revived == len(cancelled)
    assert restored.plan.created == 0
    back = rows_by_key(session_factory)
    for key in cancelled:
        assert back[key].status == models.Status.PENDING
        assert back[key].id == original[key].id
        assert back[key].message_id == original[key].message_id
        assert back[key].cancel_reason is None
    with session_factory() as session:
        assert outbox_problems(session, NOW, 400) == []


def test_running_the_demo_twice_cancels_nothing(session_factory: sessionmaker[Session]) -> None:
    """What `samverkan demo` does: load the example, book the autumn meeting, simulate next
    year; then all of it again. The second load used to cancel every row beyond its horizon."""
    from service.booking import book_meeting

    results = []
    for _ in range(2):
        results.append(load(session_factory, EXAMPLE, NOW))
        with transaction(session_factory) as session:
            municipality_id = session.scalars(select(models.Municipality.id)).one()
            booked = session.scalar(
                select(models.Booking.id).where(models.Booking.occurrence == "2027")
            )
            if booked is None:
                book_meeting(
                    session,
                    municipality_id,
                    "samverkansmote-host",
                    "2027-10-12",
                    "13:00",
                    None,
                    NOW,
                    400,
                )
        simulate_inline(session_factory, dt.date(2027, 1, 1), dt.date(2027, 12, 31))
    assert results[1].plan.cancelled == 0
    assert models.Status.CANCELLED not in statuses(session_factory).values()


def test_every_cancel_reason_is_trimmed_to_the_column(
    session_factory: sessionmaker[Session],
) -> None:
    load(session_factory, MINIMAL, NOW)
    with transaction(session_factory) as session:
        row = next(r for r in routine_rows(session) if r.status == models.Status.PENDING)
        outbox.cancel(row, NOW, "x" * 500)
    with session_factory() as session:
        stored = session.get_one(models.Notification, row.id)
        assert stored.cancel_reason == "x" * outbox.CANCEL_REASON_CHARS


def test_a_retry_belongs_to_the_sender_and_a_replan_leaves_it(
    session_factory: sessionmaker[Session],
) -> None:
    from core.errors import TransientDeliveryError
    from tests.simulation import TEMPLATES
    from worker.delivery import Delivery, Outcome, RetryPolicy, deliver_one
    from worker.mailers import MemoryMailer
    from worker.render import Renderer

    load(session_factory, MINIMAL, NOW)
    mailer = MemoryMailer()
    mailer.fail_recipient("anna@liten.se", TransientDeliveryError("451 later", smtp_code=451))
    delivery = Delivery(session_factory, mailer, Renderer(TEMPLATES), RetryPolicy())
    first = min((r for r in rows_by_key(session_factory).values()), key=lambda r: r.due_at)
    assert first.recipient_email == "anna@liten.se"
    with transaction(session_factory) as session:
        assert outbox.claim_due(session, first.due_at, 10) == [first.id]
    assert deliver_one(delivery, first.id, first.due_at) is Outcome.RETRY
    waiting = rows_by_key(session_factory)[first.idempotency_key]
    assert waiting.due_at > first.due_at
    # Re-planned after its planned moment: the message is no longer "to come" in the plan,
    # yet its retry is neither cancelled nor moved back.
    result = load(session_factory, MINIMAL, first.due_at + dt.timedelta(seconds=1))
    assert result.plan.cancelled == 0
    after = rows_by_key(session_factory)[first.idempotency_key]
    assert (after.status, after.due_at, after.attempts) == (
        models.Status.PENDING,
        waiting.due_at,
        1,
    )
