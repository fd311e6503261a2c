"""Who was sent what: per meeting UID and recipient, the last invitation sent.

One row per (uid, recipient address), written by the outbox when a message carrying an
invitation is sent (`scheduler/outbox/invites.py`). Everything about a meeting's lifecycle
reads it: a call-off cancels the invitation of everyone who holds one (not of whoever holds
the role now), a hand-over cancels it for the one who leaves, and a message carrying an older
SEQUENCE than the recipient already has is not sent.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UtcDateTime


class InviteRecord(Base):
    __tablename__ = "invite_record"
    __table_args__ = (
        UniqueConstraint("uid", "recipient_email"),
        Index("ix_invite_record_routine_occurrence", "routine_key", "occurrence"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    municipality_id: Mapped[int] = mapped_column(ForeignKey("municipality.id"))
    routine_key: Mapped[str] = mapped_column(String(64))
    occurrence: Mapped[str] = mapped_column(String(32))
    uid: Mapped[str] = mapped_column(String(400))
    # Lower-cased: the address is the recipient as calendars know them.
    recipient_email: Mapped[str] = mapped_column(String(320))
    recipient_name: Mapped[str] = mapped_column(String(200))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    sequence: Mapped[int] = mapped_column()
    method: Mapped[str] = mapped_column(String(16))  # REQUEST, CANCEL or PUBLISH
    # CONFIRMED: the meeting is in the recipient's calendar; CANCELLED: it was taken out.
    status: Mapped[str] = mapped_column(String(16))
    notification_id: Mapped[int] = mapped_column(ForeignKey("notification.id"))
    sent_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
