"""Whom a case or report message reaches: recipients resolved on the message's due day, as
typed results, and the one question asked of each of them when the subject concerns suspected
violence or abuse: is this the municipality's staff (scheduler/confidential.py)?"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

import models
from scheduler.cases.messages import PlannedMessage, Recipient
from scheduler.cases.subjects import Subject, staff_rule_of
from scheduler.directory import RoleDirectory, load_directory
from scheduler.municipality import MunicipalitySettings

log = logging.getLogger("samverkan.cases")

EXTERNAL_NAMES = {"guardian": "Vårdnadshavare", "pupil": "Elev"}


@dataclass(frozen=True)
class Resolved:
    """One recipient of a message: a person of the profile or an external address."""

    slot: str  # the key's last part: the person's key, or the external's slot ("vardnadshavare-1")
    person_id: int | None  # None for an external recipient (an address only)
    name: str
    email: str
    refs: tuple[str, ...] = ()  # the role references the person was reached by
    role_names: tuple[str, ...] = ()
    units: tuple[tuple[str, str], ...] = ()  # (name, kind) of the units of those roles
    external: Literal["guardian", "pupil"] | None = None


def recipient_problem(
    session: Session, municipality: models.Municipality, person_id: int | None, email: str
) -> str | None:
    """Why this recipient is not the municipality's staff (scheduler/confidential.py), or None.

    Asked of every recipient of a subject that concerns suspected violence or abuse, when its
    message is planned and again when it is sent, whatever route made them a recipient.
    """
    roles: list[str] = []
    if person_id is not None:
        person = session.get(models.Person, person_id)
        if person is None:
            return "a person no longer in the profile"
        roles = [a.role for a in person.roles]
    return staff_rule_of(municipality).problem(email, roles, person_id is not None)


class Resolver:
    """Recipients → the people (or addresses) they stand for on a given day."""

    def __init__(self, session: Session, municipality: models.Municipality) -> None:
        self.session = session
        self.municipality = municipality
        self.role_names: dict[str, str] = dict(MunicipalitySettings.of(municipality).role_names)
        self._directory: RoleDirectory | None = None

    @property
    def directory(self) -> RoleDirectory:
        if self._directory is None:
            self._directory = load_directory(self.session, self.municipality.id, self.role_names)
        return self._directory

    def resolve(self, recipient: Recipient, on: dt.date) -> list[Resolved]:
        if recipient.kind == "external":
            return [self._external(recipient)]
        if recipient.kind == "person":
            return self._person(recipient.key)
        return self._role(recipient.key, on)

    def _external(self, recipient: Recipient) -> Resolved:
        assert recipient.email is not None and recipient.external is not None
        name = EXTERNAL_NAMES[recipient.external]
        return Resolved(
            recipient.key,
            None,
            name,
            recipient.email,
            role_names=(name,),
            external=recipient.external,
        )

    def _person(self, key: str) -> list[Resolved]:
        person = self.session.scalar(
            select(models.Person).where(
                models.Person.municipality_id == self.municipality.id, models.Person.key == key
            )
        )
        if person is None or not person.active:
            log.warning("case recipient %s is not an active person; skipped", key)
            return []
        names = sorted({self.role_names.get(r.role, r.role) for r in person.roles})
        return [Resolved(person.key, person.id, person.name, person.email, role_names=tuple(names))]

    def _role(self, ref: str, on: dt.date) -> list[Resolved]:
        holders = self.directory.resolve([ref], on)
        if not holders:
            log.warning("nobody holds %s on %s; message not planned", ref, on)
        return [
            Resolved(
                h.person_key,
                h.person_id,
                h.name,
                h.email,
                tuple(h.roles),
                tuple(h.role_names),
                tuple(h.units),
            )
            for h in holders
        ]


def withheld(
    session: Session,
    municipality: models.Municipality,
    subject: Subject,
    message: PlannedMessage,
    found: Resolved,
) -> bool:
    """True for a person reached by a role, escalation or SIP item who is not staff, when the
    subject concerns suspected abuse: that message is not planned for them.

    External participants (typed for the case) are not withheld here but refused by the
    insert, so that asking for one is an error the person asking sees.
    """
    if not subject.suspected_abuse or found.person_id is None:
        return False
    problem = recipient_problem(session, municipality, found.person_id, found.email)
    if problem is None:
        return False
    log.warning(
        "withheld a %s message of %s from %s: it concerns suspected violence or sexual abuse",
        message.purpose,
        subject.label,
        problem,
        extra={"action": "case.confidentiality_withheld", "reference": subject.reference},
    )
    return True


def invited(
    session: Session, municipality: models.Municipality, uid: str, participants: list[Resolved]
) -> list[Resolved]:
    """Everyone whose calendar holds the case meeting `uid`, from the record of who was sent
    what (`invite_record`), not from who holds the participants' roles today (RFC 5546 3.2.5).

    Addressed directly (no role references), so the send-time role check does not hand the
    CANCEL to the role's current holder. `participants` (resolved today) only lends an
    external recipient its slot and kind; someone of the profile is keyed by their person key.
    """
    by_email = {p.email.strip().lower(): p for p in participants}
    found: list[Resolved] = []
    for record in session.scalars(
        select(models.InviteRecord)
        .where(
            models.InviteRecord.municipality_id == municipality.id,
            models.InviteRecord.uid == uid,
            models.InviteRecord.status == "CONFIRMED",
        )
        .order_by(models.InviteRecord.id)
    ):
        email = record.recipient_email
        person = session.get(models.Person, record.person_id) if record.person_id else None
        if person is not None:
            found.append(Resolved(person.key, person.id, record.recipient_name, email))
            continue
        current = by_email.get(email)
        external = current.external if current is not None else None
        slot = current.slot if current is not None else f"inbjuden-{record.notification_id}"
        found.append(
            Resolved(
                slot,
                None,
                EXTERNAL_NAMES[external] if external else record.recipient_name,
                email,
                role_names=(EXTERNAL_NAMES[external],) if external else (),
                external=external or "guardian",
            )
        )
    return found
