"""The lifecycle of a meeting's invitation after it went out: call-off and hand-over.

Pure: what to plan follows from the occurrence, who holds the invitation's roles today, and
the record of who was sent what (`invite_record`, read into `Sent`). The ordinary plan covers
invitations still to come; this covers what calendars already hold:

- **called off** (the booking's `cancelled_at`): a CANCEL (STATUS:CANCELLED, the booking's
  raised SEQUENCE) to everyone whose calendar holds the meeting, from the record, not from
  who holds the role now (RFC 5546 3.2.5);
- **hand-over / participant removed**: once an invitation is due, whoever holds it in the
  record but no longer holds its roles gets a CANCEL (current SEQUENCE, for that attendee
  only, RFC 5546 3.2.5), and whoever holds the roles but not the invitation gets the
  REQUEST (current SEQUENCE). Checked again at send time (roles, and the record).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from scheduler.directory import Holder
from scheduler.occurrences import MessageTiming

CALLED_OFF_TEMPLATE = "mote-installt"
REMOVED_TEMPLATE = "mote-avbokad"


@dataclass(frozen=True)
class Sent:
    """One recipient's last invitation to one meeting (a row of `invite_record`)."""

    email: str  # lower-cased
    person_key: str  # the person's key in the profile (the address for someone unknown)
    name: str
    person_id: int | None
    sequence: int
    method: str
    status: str  # CONFIRMED: in their calendar; CANCELLED: taken out
    notification_id: int

    @property
    def holds(self) -> bool:
        return self.status == "CONFIRMED"


@dataclass(frozen=True)
class Change:
    """One lifecycle message to plan: CANCEL or REQUEST to one recipient."""

    kind: str  # "called-off", "leaves", "arrives"
    purpose: str
    recipient: Holder
    timing: MessageTiming  # the invitation this follows from (its context and roles)
    method: str
    sequence: int


def as_holder(sent: Sent) -> Holder:
    """A recipient from the record: addressed directly (no roles to check again)."""
    return Holder(
        person_id=sent.person_id or 0,
        person_key=sent.person_key,
        name=sent.name,
        email=sent.email,
        roles=(),
        role_names=(),
        units=(),
    )


def called_off(invitation: MessageTiming, record: list[Sent], sequence: int) -> list[Change]:
    """A CANCEL to everyone whose calendar holds the meeting."""
    return [
        Change(
            "called-off",
            f"avlyst-v{sequence}",
            as_holder(sent),
            invitation,
            "CANCEL",
            sequence,
        )
        for sent in record
        if sent.holds
    ]


def handed_over(
    invitations: list[tuple[MessageTiming, list[Holder]]], record: list[Sent], sequence: int
) -> list[Change]:
    """CANCEL to whoever holds the invitation without its roles, REQUEST to whoever holds the
    roles without the invitation. `invitations`: each invitation already due, with who holds
    its roles today. Nothing before the first invitation went out (the record is empty)."""
    if not record:
        return []
    by_email = {sent.email: sent for sent in record}
    wanted: dict[str, tuple[Holder, MessageTiming]] = {}
    for timing, holders in invitations:
        for holder in holders:
            wanted.setdefault(holder.email.strip().lower(), (holder, timing))
    if not invitations:
        return []
    changes = []
    first = invitations[0][0]
    for sent in record:
        if sent.holds and sent.email not in wanted:
            changes.append(
                Change(
                    "leaves",
                    f"{_base(first)}-lamnar-{sent.notification_id}",
                    as_holder(sent),
                    first,
                    "CANCEL",
                    sequence,
                )
            )
    for email, (holder, timing) in wanted.items():
        had = by_email.get(email)
        if had is not None and had.holds:
            continue
        # The invitation's own key, so a copy planned by the worker's hand-over at send time
        # is the same row; someone invited again after a CANCEL gets a new key.
        purpose = _base(timing) if had is None else f"{_base(timing)}-ater-{had.notification_id}"
        changes.append(Change("arrives", purpose, holder, timing, "REQUEST", sequence))
    return changes


def _base(timing: MessageTiming) -> str:
    sequence = timing.extra.get("sequence")
    purpose = timing.message.purpose
    return f"{purpose}-v{sequence}" if sequence not in (None, "0") else purpose


def due(moment: dt.datetime, start: dt.datetime) -> dt.datetime:
    return max(moment, start)
