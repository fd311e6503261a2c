"""SQLAlchemy 2 typed models: the directory, routines, bookings and the outbox."""

from models.answers import Answer
from models.base import Base, UtcDateTime
from models.cases import (
    Case,
    CaseAudit,
    CaseMeeting,
    CaseNote,
    ReferenceCounter,
    Report,
    SipItem,
)
from models.directory import District, Municipality, Person, RoleAssignment, Unit
from models.invites import InviteRecord
from models.outbox import OPEN_STATUSES, DeliveryAttempt, Notification, Status
from models.routines import Booking, Material, Routine

__all__ = [
    "OPEN_STATUSES",
    "Answer",
    "Base",
    "Booking",
    "Case",
    "CaseAudit",
    "CaseMeeting",
    "CaseNote",
    "DeliveryAttempt",
    "District",
    "InviteRecord",
    "Material",
    "Municipality",
    "Notification",
    "Person",
    "ReferenceCounter",
    "Report",
    "RoleAssignment",
    "Routine",
    "SipItem",
    "Status",
    "Unit",
    "UtcDateTime",
]
