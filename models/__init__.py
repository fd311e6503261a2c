"""SQLAlchemy 2 typed models: the directory, routines, bookings, the outbox, the web app."""

from models.accounts import Account, FeedToken, Heartbeat, SignInAttempt, WebAudit, WebSecret
from models.answers import Answer
from models.apitokens import ApiToken
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
from models.routines import Booking, Material, PlanStamp, Routine
from models.texts import MessageText

__all__ = [
    "OPEN_STATUSES",
    "Account",
    "Answer",
    "ApiToken",
    "Base",
    "Booking",
    "Case",
    "CaseAudit",
    "CaseMeeting",
    "CaseNote",
    "DeliveryAttempt",
    "District",
    "FeedToken",
    "Heartbeat",
    "InviteRecord",
    "Material",
    "MessageText",
    "Municipality",
    "Notification",
    "Person",
    "PlanStamp",
    "ReferenceCounter",
    "Report",
    "RoleAssignment",
    "Routine",
    "SignInAttempt",
    "SipItem",
    "Status",
    "Unit",
    "UtcDateTime",
    "WebAudit",
    "WebSecret",
]
