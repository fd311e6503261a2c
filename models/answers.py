"""Participants' answers to meeting invitations (iTIP REPLY, RFC 5546 3.2.3).

One row per meeting (its calendar UID) and attendee address: the latest answer read from the
reply mailbox. The meeting and the person are found through the outbox (who was sent which
invitation), so an answer can only exist for someone who was invited.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UtcDateTime


class Answer(Base):
    __tablename__ = "answer"
    __table_args__ = (
        UniqueConstraint("uid", "attendee_email"),
        Index("ix_answer_routine_occurrence", "municipality_id", "routine_key", "occurrence"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    municipality_id: Mapped[int] = mapped_column(ForeignKey("municipality.id"))
    # The meeting: its calendar UID, and the outbox's routine key and occurrence of it.
    uid: Mapped[str] = mapped_column(String(400))
    routine_key: Mapped[str] = mapped_column(String(64))
    occurrence: Mapped[str] = mapped_column(String(64))
    # Who answered: the address the invitation went to (lower case), and the person if known.
    attendee_email: Mapped[str] = mapped_column(String(320))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    # ACCEPTED, DECLINED, TENTATIVE or DELEGATED.
    partstat: Mapped[str] = mapped_column(String(16))
    # The SEQUENCE and DTSTAMP the reply carried: an older reply never replaces a newer one.
    sequence: Mapped[int] = mapped_column(Integer)
    dtstamp: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    received_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
