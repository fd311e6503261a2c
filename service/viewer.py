"""Who is looking at a web page: the signed-in person, their municipality and their roles.

Every page query (service.web_views, service.todo_view, service.delivery_log) starts from the
`Viewer`, so no page can show another municipality's rows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

import models

COORDINATOR_ROLES = frozenset({"samordnare"})


@dataclass(frozen=True)
class Role:
    role: str
    unit_id: int | None
    unit_key: str | None


@dataclass(frozen=True)
class Viewer:
    """The signed-in person as the web app sees them, on one day."""

    account_id: int
    person_id: int
    person_key: str
    name: str
    email: str
    municipality_id: int
    municipality_name: str
    roles: tuple[Role, ...]

    @property
    def is_staff(self) -> bool:
        return bool(self.roles)

    @property
    def is_coordinator(self) -> bool:
        return any(r.role in COORDINATOR_ROLES for r in self.roles)

    @property
    def unit_ids(self) -> frozenset[int]:
        return frozenset(r.unit_id for r in self.roles if r.unit_id is not None)

    def holds(self, role: str, unit_id: int | None = None) -> bool:
        return any(r.role == role and (unit_id is None or r.unit_id == unit_id) for r in self.roles)

    def allowed(self, which: str) -> bool:
        """May see what the rule `which` guards (web.access.Rule: a str enum)."""
        if which == "coordinator":
            return self.is_coordinator
        if which == "staff":
            return self.is_staff
        return True


def load_viewer(session: Session, account_id: int, today: dt.date) -> Viewer | None:
    """The viewer behind an account, or None when it is disabled or its person left."""
    account = session.get(models.Account, account_id)
    if account is None or account.disabled:
        return None
    person = session.get(models.Person, account.person_id)
    if person is None or not person.active:
        return None
    municipality = session.get_one(models.Municipality, person.municipality_id)
    units = {
        u.id: u.key
        for u in session.scalars(
            select(models.Unit).where(models.Unit.municipality_id == person.municipality_id)
        )
    }
    roles = tuple(
        Role(a.role, a.unit_id, units.get(a.unit_id) if a.unit_id is not None else None)
        for a in person.roles
        if (a.valid_from is None or a.valid_from <= today)
        and (a.valid_to is None or today <= a.valid_to)
    )
    return Viewer(
        account_id=account.id,
        person_id=person.id,
        person_key=person.key,
        name=person.name,
        email=person.email,
        municipality_id=person.municipality_id,
        municipality_name=municipality.name,
        roles=roles,
    )
