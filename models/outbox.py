"""The transactional outbox: every message that will ever be sent is first a row here."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, UtcDateTime


class Status(StrEnum):
    PENDING = "pending"  # waiting for due_at
    QUEUED = "queued"  # claimed by a tick, handed to a worker
    SENDING = "sending"  # claimed by a worker
    SENT = "sent"
    FAILED = "failed"  # permanently, or transiently beyond the retry horizon
    CANCELLED = "cancelled"  # no longer applies (re-planned, booked, role gone)


OPEN_STATUSES = (Status.PENDING, Status.QUEUED, Status.SENDING)


class Notification(Base):
    __tablename__ = "notification"
    __table_args__ = (
        # The tick's query: what is pending and due. Its cost grows with what is due.
        Index("ix_notification_status_due_at", "status", "due_at"),
        # The re-plan's rows: one municipality's pending rows from now (scheduler/planner.py).
        Index("ix_notification_municipality_status_due_at", "municipality_id", "status", "due_at"),
        Index("ix_notification_routine_occurrence", "routine_key", "occurrence"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # routine/occurrence/purpose/person: the database refuses a second copy.
    idempotency_key: Mapped[str] = mapped_column(String(400), unique=True)
    municipality_id: Mapped[int] = mapped_column(ForeignKey("municipality.id"))
    routine_key: Mapped[str] = mapped_column(String(64))
    occurrence: Mapped[str] = mapped_column(String(32))
    purpose: Mapped[str] = mapped_column(String(64))
    template: Mapped[str] = mapped_column(String(64))
    # Structured fields the template renders; never free text about a child.
    context: Mapped[dict[str, Any]] = mapped_column(JSON)
    # None for an external recipient of case work (a guardian, an adult pupil): an address only.
    person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    # The role references that made this person a recipient, checked again at send time;
    # empty when the message is addressed to the person (or address) directly.
    roles: Mapped[list[str]] = mapped_column(JSON)
    recipient_email: Mapped[str] = mapped_column(String(320))
    recipient_name: Mapped[str] = mapped_column(String(200))
    due_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(16), default=Status.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    smtp_reply: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[str] = mapped_column(String(200))
    claimed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    cancel_reason: Mapped[str | None] = mapped_column(String(200))

    attempts_log: Mapped[list[DeliveryAttempt]] = relationship(
        back_populates="notification", order_by="DeliveryAttempt.id"
    )


class DeliveryAttempt(Base):
    """One try at sending one notification: every attempt is data."""

    __tablename__ = "delivery_attempt"

    id: Mapped[int] = mapped_column(primary_key=True)
    notification_id: Mapped[int] = mapped_column(ForeignKey("notification.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    # The logical moment (simulated time in `simulate`) and the wall-clock duration.
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    duration_ms: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))  # sent, transient, permanent, skipped
    smtp_code: Mapped[int | None] = mapped_column(Integer)
    reply: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    worker: Mapped[str | None] = mapped_column(String(200))

    notification: Mapped[Notification] = relationship(back_populates="attempts_log")
