"""Case work: reports of concern (orosanmälan), cooperation cases (samverkansmöte), SIP plans.

A report or a case is known by a neutral reference ("2027-0042"), allocated per municipality
and year from one series, so a reference names exactly one of them. Nothing here holds a
child's name, personal identity number or address. Free text typed by staff (notes, consent
details, a plan's goals and actions) is kept for signed-in staff and never put into a message.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, UtcDateTime


class ReferenceCounter(Base):
    """The last number handed out in one municipality's series for one year."""

    __tablename__ = "reference_counter"
    __table_args__ = (UniqueConstraint("municipality_id", "year"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    municipality_id: Mapped[int] = mapped_column(ForeignKey("municipality.id"))
    year: Mapped[int] = mapped_column(Integer)
    last: Mapped[int] = mapped_column(Integer)


class Report(Base):
    """A report of concern: who reported from where, to which intake unit, and its state."""

    __tablename__ = "report"
    __table_args__ = (UniqueConstraint("municipality_id", "reference"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    municipality_id: Mapped[int] = mapped_column(ForeignKey("municipality.id"))
    reference: Mapped[str] = mapped_column(String(16))
    reporting_unit_id: Mapped[int] = mapped_column(ForeignKey("unit.id"))
    reporter_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    district_id: Mapped[int] = mapped_column(ForeignKey("district.id"))
    intake_unit_id: Mapped[int] = mapped_column(ForeignKey("unit.id"))
    acute: Mapped[bool] = mapped_column(default=False)
    suspected_abuse: Mapped[bool] = mapped_column(default=False)
    wants_feedback: Mapped[bool] = mapped_column(default=False)
    # Guardians' e-mail addresses, for the notice that a report is made (never on abuse).
    guardian_emails: Mapped[list[str]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16))
    registered_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    received_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    received_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))


class Case(Base):
    """A cooperation case (samverkansärende) around one child, led by its case owner."""

    __tablename__ = "cooperation_case"
    __table_args__ = (UniqueConstraint("municipality_id", "reference"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    municipality_id: Mapped[int] = mapped_column(ForeignKey("municipality.id"))
    reference: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    # The processbärare, and the role under which they own the case (decides their manager).
    owner_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    owner_role: Mapped[str] = mapped_column(String(64))
    known_on: Mapped[dt.date] = mapped_column(Date)
    school_unit_id: Mapped[int | None] = mapped_column(ForeignKey("unit.id"))
    family_worker_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    # Further staff participants (person keys) and the external ones: [{kind, email}].
    staff: Mapped[list[str]] = mapped_column(JSON)
    externals: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    adult_pupil: Mapped[bool] = mapped_column(default=False)
    sip: Mapped[bool] = mapped_column(default=False)
    report_id: Mapped[int | None] = mapped_column(ForeignKey("report.id"))
    opened_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    opened_by_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    # The consent in force (staff-only free text: who gave it and what it covers).
    consent_given_by: Mapped[str | None] = mapped_column(Text)
    consent_scope: Mapped[str | None] = mapped_column(Text)
    consent_pupil_own: Mapped[bool] = mapped_column(default=False)
    consent_given_on: Mapped[dt.date | None] = mapped_column(Date)
    consent_recorded_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    consent_recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    consent_withdrawn_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    # How many times consent was withdrawn: reminders of a later round get their own keys.
    rounds: Mapped[int] = mapped_column(Integer, default=0)
    follow_ups: Mapped[list[str]] = mapped_column(JSON)  # ISO dates from the minutes
    sip_follow_up: Mapped[dt.date | None] = mapped_column(Date)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))

    meetings: Mapped[list[CaseMeeting]] = relationship(
        order_by="CaseMeeting.number", cascade="all, delete-orphan"
    )
    sip_items: Mapped[list[SipItem]] = relationship(
        order_by="SipItem.number", cascade="all, delete-orphan"
    )


class CaseMeeting(Base):
    __tablename__ = "case_meeting"
    __table_args__ = (UniqueConstraint("case_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cooperation_case.id"))
    number: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))  # booked, held, cancelled
    starts_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    ends_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    # The key of one of the profile's places (never free text: see scheduler/places.py).
    location: Mapped[str | None] = mapped_column(String(200))
    # Raised on every change (and on cancelling), so calendars replace the event.
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    booked_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    held_on: Mapped[dt.date | None] = mapped_column(Date)
    held_recorded_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class SipItem(Base):
    """One row of a coordinated individual plan: goal, action, responsibility, time."""

    __tablename__ = "sip_item"
    __table_args__ = (UniqueConstraint("case_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cooperation_case.id"))
    number: Mapped[int] = mapped_column(Integer)
    goal: Mapped[str] = mapped_column(Text)  # staff-only free text
    action: Mapped[str] = mapped_column(Text)  # staff-only free text
    responsible: Mapped[str] = mapped_column(String(200))  # a role reference, e.g. rektor@x
    due_on: Mapped[dt.date] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class CaseNote(Base):
    """Free text about a report or case, for signed-in staff only; never in any message."""

    __tablename__ = "case_note"

    id: Mapped[int] = mapped_column(primary_key=True)
    municipality_id: Mapped[int] = mapped_column(ForeignKey("municipality.id"))
    series: Mapped[str] = mapped_column(String(8))  # report or case
    reference: Mapped[str] = mapped_column(String(16), index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    text: Mapped[str] = mapped_column(Text)


class CaseAudit(Base):
    """Who did what to which report or case, and when; never personal data about the child."""

    __tablename__ = "case_audit"

    id: Mapped[int] = mapped_column(primary_key=True)
    municipality_id: Mapped[int] = mapped_column(ForeignKey("municipality.id"))
    series: Mapped[str] = mapped_column(String(8))
    reference: Mapped[str] = mapped_column(String(16), index=True)
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    actor: Mapped[str] = mapped_column(String(64))  # a person key, or "system"
    action: Mapped[str] = mapped_column(String(64))
    # Structured facts only: meeting numbers, dates, counts, purposes of cancelled messages.
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
