"""Who may see what: the signed-in person, their municipality and roles, and the page rules.

Every route is registered with one rule (`RULES`, filled by `rule(...)` when the route is
declared); `web.app.create_app` refuses to start if a route has none, and the permission test
enumerates the routes to check each rule for every kind of user.

- public: anyone (sign-in, health, metrics, static files; feeds carry their own token);
- signed_in: any signed-in person, role or not (the start page, signing out);
- staff: a person holding at least one role today in their municipality; what they see is
  narrowed to their units and cases by `web.queries`;
- coordinator: a person holding the coordinator role (`samordnare`) today.

A person is only ever shown rows of their own municipality: every query in `web.queries`
starts from `Viewer.municipality_id`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

import models

COORDINATOR_ROLES = frozenset({"samordnare"})


class Rule(StrEnum):
    PUBLIC = "public"
    SIGNED_IN = "signed_in"
    STAFF = "staff"
    COORDINATOR = "coordinator"


# endpoint name -> rule; filled by the `rule` decorator as the route modules are imported.
RULES: dict[str, Rule] = {}

F = TypeVar("F", bound=Callable[..., object])


def rule(which: Rule) -> Callable[[F], F]:
    """Declare the access rule of a route (its endpoint function's name is the key)."""

    def mark(endpoint: F) -> F:
        RULES[endpoint.__name__] = which
        return endpoint

    return mark


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

    def allowed(self, which: Rule) -> bool:
        if which is Rule.COORDINATOR:
            return self.is_coordinator
        if which is Rule.STAFF:
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
