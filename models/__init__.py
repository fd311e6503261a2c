"""SQLAlchemy 2 typed models: the directory, routines, bookings and the outbox."""

from models.base import Base, UtcDateTime
from models.directory import District, Municipality, Person, RoleAssignment, Unit
from models.outbox import OPEN_STATUSES, DeliveryAttempt, Notification, Status
from models.routines import Booking, Material, Routine

__all__ = [
    "OPEN_STATUSES",
    "Base",
    "Booking",
    "DeliveryAttempt",
    "District",
    "Material",
    "Municipality",
    "Notification",
    "Person",
    "RoleAssignment",
    "Routine",
    "Status",
    "Unit",
    "UtcDateTime",
]
