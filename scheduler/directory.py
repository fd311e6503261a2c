"""Role addressing: a message goes to a role, resolved to whoever holds it on a given day."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from sqlalchemy import select
from sqlalchemy.orm import Session

import models
from scheduler.spec import RoleRef


@dataclass(frozen=True)
class Assignment:
    person_id: int
    person_key: str
    name: str
    email: str
    role: str
    unit_key: str | None
    unit_name: str | None
    unit_kind: str | None
    valid_from: dt.date | None
    valid_to: dt.date | None

    def holds(self, ref: RoleRef, on: dt.date) -> bool:
        if self.role != ref.role:
            return False
        if self.valid_from is not None and on < self.valid_from:
            return False
        if self.valid_to is not None and on > self.valid_to:
            return False
        return ref.scope is None or ref.scope in (self.unit_key, self.unit_kind)


@dataclass(frozen=True)
class Holder:
    """One person and why they were chosen (the references they matched, and where)."""

    person_id: int
    person_key: str
    name: str
    email: str
    roles: tuple[str, ...]
    role_names: tuple[str, ...]
    units: tuple[tuple[str, str], ...]  # (unit name, unit kind)
    unit_keys: tuple[str, ...] = ()  # the same units' keys, in the same order


class RoleDirectory:
    def __init__(self, assignments: Iterable[Assignment], role_names: dict[str, str]):
        self.assignments = list(assignments)
        self.role_names = role_names
        # Each reference looks only at the assignments of its role (a plan resolves a few
        # hundred references against every assignment of the municipality otherwise).
        self.by_role: dict[str, list[Assignment]] = {}
        for a in self.assignments:
            self.by_role.setdefault(a.role, []).append(a)

    def holds(self, person_id: int, refs: Iterable[str], on: dt.date) -> bool:
        """True when `person_id` holds any of `refs` on `on`."""
        return any(
            a.person_id == person_id and a.holds(ref, on)
            for ref in map(_parse, refs)
            for a in self.by_role.get(ref.role, ())
        )

    def resolve(self, refs: Iterable[str], on: dt.date) -> list[Holder]:
        """Everyone holding any of `refs` on `on`, once each, in a stable order."""
        found: dict[int, _Found] = {}
        for text in refs:
            ref = _parse(text)
            for a in self.by_role.get(ref.role, ()):
                if a.holds(ref, on):
                    found.setdefault(a.person_id, _Found(a)).add(
                        str(ref), self.role_names.get(a.role, a.role), a
                    )
        return sorted((f.holder() for f in found.values()), key=lambda h: h.person_key)


@lru_cache(maxsize=4096)
def _parse(text: str) -> RoleRef:
    return RoleRef.parse(text)


@dataclass
class _Found:
    first: Assignment
    refs: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    units: list[tuple[str, str]] = field(default_factory=list)
    unit_keys: list[str] = field(default_factory=list)

    def add(self, ref: str, role_name: str, a: Assignment) -> None:
        for items, value in ((self.refs, ref), (self.names, role_name)):
            if value not in items:
                items.append(value)
        if a.unit_name is not None and a.unit_kind is not None:
            unit = (a.unit_name, a.unit_kind)
            if unit not in self.units:
                self.units.append(unit)
                self.unit_keys.append(a.unit_key or "")

    def holder(self) -> Holder:
        a = self.first
        return Holder(
            a.person_id,
            a.person_key,
            a.name,
            a.email,
            tuple(self.refs),
            tuple(self.names),
            tuple(self.units),
            tuple(self.unit_keys),
        )


def load_directory(
    session: Session,
    municipality_id: int,
    role_names: dict[str, str],
    person_id: int | None = None,
    person_ids: Collection[int] | None = None,
) -> RoleDirectory:
    """The role assignments of a municipality's active people (or of one person, or of the
    people in `person_ids`: a worker's batch checks all its recipients in one query)."""
    return RoleDirectory(
        assignment_rows(session, municipality_id, person_id, person_ids), role_names
    )


def assignment_rows(
    session: Session,
    municipality_id: int,
    person_id: int | None = None,
    person_ids: Collection[int] | None = None,
) -> list[Assignment]:
    """`load_directory`'s assignments, in the order they were made."""
    # Columns, not entities: a plan reads a few hundred assignments and changes none of them.
    a, p, u = models.RoleAssignment, models.Person, models.Unit
    query = (
        select(
            p.id.label("person_id"),
            p.key.label("person_key"),
            p.name,
            p.email,
            a.role,
            u.key.label("unit_key"),
            u.name.label("unit_name"),
            u.kind.label("unit_kind"),
            a.valid_from,
            a.valid_to,
        )
        .select_from(a)
        .join(p, a.person_id == p.id)
        .outerjoin(u, a.unit_id == u.id)
        .where(p.municipality_id == municipality_id, p.active.is_(True))
        .order_by(a.id)  # a holder's roles and units in a stable order, run after run
    )
    if person_id is not None:
        query = query.where(p.id == person_id)
    if person_ids is not None:
        query = query.where(p.id.in_(sorted(set(person_ids))))
    return [Assignment(**row._asdict()) for row in session.execute(query)]
