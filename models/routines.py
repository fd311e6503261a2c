"""Routines as data, and the bookings of their meetings."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UtcDateTime


class Routine(Base):
    __tablename__ = "routine"
    __table_args__ = (UniqueConstraint("municipality_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    municipality_id: Mapped[int] = mapped_column(ForeignKey("municipality.id"))
    key: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    # The validated routine from the profile (scheduler.spec.Routine as JSON).
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    spec_sha256: Mapped[str] = mapped_column(String(64))
    # A routine removed from the profile is kept for history but plans nothing.
    active: Mapped[bool] = mapped_column(default=True)


class Booking(Base):
    """The booked date and time of one occurrence of a meeting routine."""

    __tablename__ = "booking"
    __table_args__ = (UniqueConstraint("routine_id", "occurrence"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    routine_id: Mapped[int] = mapped_column(ForeignKey("routine.id"))
    occurrence: Mapped[str] = mapped_column(String(32))
    starts_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    ends_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    # The key of one of the profile's places (never free text: see scheduler/places.py).
    location: Mapped[str | None] = mapped_column(String(200))
    # Raised on every change, so calendar clients replace the event instead of adding one.
    sequence: Mapped[int] = mapped_column(default=0)
    booked_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    source: Mapped[str] = mapped_column(String(16))  # "profile" or "command"
    # Called off (`samverkan meeting cancel`, or its routine or booking removed from the
    # profile): the plan sends CANCEL to everyone who was invited and nothing else.
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, default=None)


class Material(Base):
    """A file a routine attaches (parent-support material), kept as it was when loaded.

    Stored in the database, not referenced by path, so every worker sends the same bytes
    wherever it runs and a later edit of the file on disk cannot change a planned mailout.
    """

    __tablename__ = "material"
    __table_args__ = (UniqueConstraint("municipality_id", "sha256"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    municipality_id: Mapped[int] = mapped_column(ForeignKey("municipality.id"))
    sha256: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(255))
    mime_type: Mapped[str] = mapped_column(String(100))
    content: Mapped[bytes] = mapped_column(LargeBinary)


class PlanStamp(Base):
    """A municipality's last full re-plan of its routines: a digest of everything that plan
    read, and until when the same input gives the same rows (scheduler/planstamp.py). The
    nightly re-plan stands on it instead of planning again while both hold."""

    __tablename__ = "plan_stamp"

    municipality_id: Mapped[int] = mapped_column(ForeignKey("municipality.id"), primary_key=True)
    digest: Mapped[str] = mapped_column(String(64))
    planned_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    valid_until: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    rows: Mapped[int]  # the rows it found as planned (a re-plan standing on it reports them)
    # The rows still to be sent in its scope, as it left them: a row cancelled, deleted or
    # added behind the planner's back changes the count, and the next night plans in full.
    pending: Mapped[int]
