"""Per-system tokens of the JSON API, and the desk a system works at.

`samverkan api-token new SYSTEM --as PERSON` makes a token for one system (an e-service, a
case-management system) in one municipality, acting as one staff person of its profile. The
token is 32 random bytes, shown once; only its SHA-256 digest is kept (like feed tokens).
A request's token gives an `ApiCaller`; `desk_for` opens the ordinary desk (service/desk.py)
for the person the system acts as, so the same permission checks apply, and its audit rows
also name the system (`detail.system`). A revoked token, a token of a person who left the
profile, or a token that matches nothing gives no caller.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

import models
from core.errors import CaseInputError, NotFoundError
from scheduler.cases.subjects import Subject
from service.desk import Desk, find_person

TOKEN_BYTES = 32
MAX_TOKEN = 200  # longer than any token we make: refused before it is hashed
SYSTEM = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
SYSTEM_RULE = "1–64 characters: a–z, 0–9 and . _ - (lower case, starting with a letter or digit)"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_system(system: str) -> str:
    if not SYSTEM.fullmatch(system):
        raise CaseInputError(f"SYSTEM-NAME: give {SYSTEM_RULE}")
    return system


def new_token(
    session: Session, municipality_id: int, person_key: str, system: str, now: dt.datetime
) -> str:
    """A new token for `system`, acting as the person `person_key`; returned once."""
    check_system(system)
    person = find_person(session, municipality_id, person_key, "--as")
    token = secrets.token_urlsafe(TOKEN_BYTES)
    session.add(
        models.ApiToken(
            municipality_id=municipality_id,
            person_id=person.id,
            system=system,
            digest=digest(token),
            created_at=now,
        )
    )
    return token


def revoke_tokens(session: Session, municipality_id: int, system: str, now: dt.datetime) -> int:
    """Revoke every live token of `system` in the municipality; how many (none live: refused)."""
    check_system(system)
    found = list(
        session.scalars(
            select(models.ApiToken).where(
                models.ApiToken.municipality_id == municipality_id,
                models.ApiToken.system == system,
                models.ApiToken.revoked_at.is_(None),
            )
        )
    )
    if not found:
        raise NotFoundError("SYSTEM-NAME: no live token for that system in this municipality")
    for row in found:
        row.revoked_at = now
    return len(found)


@dataclass(frozen=True)
class ApiCaller:
    """Who is calling: the system, its municipality and the person it acts as."""

    token_id: int
    system: str
    municipality_id: int
    person_key: str


def caller_for(session: Session, token: str) -> ApiCaller | None:
    """The caller a live token belongs to, or None (unknown, revoked, or its person left)."""
    if not token or len(token) > MAX_TOKEN:
        return None
    row = session.scalar(select(models.ApiToken).where(models.ApiToken.digest == digest(token)))
    if row is None or row.revoked_at is not None:
        return None
    person = session.get(models.Person, row.person_id)
    if person is None or not person.active or person.municipality_id != row.municipality_id:
        return None
    return ApiCaller(row.id, row.system, row.municipality_id, person.key)


@dataclass(frozen=True)
class ApiDesk(Desk):
    """The desk of a system acting as a person: every audit row also names the system."""

    system: str = ""

    def audit(self, action: str, subject: Subject, **details: Any) -> None:
        super().audit(action, subject, **details, via="api", system=self.system)


def desk_for(session: Session, caller: ApiCaller, now: dt.datetime) -> ApiDesk:
    """The desk for the person the caller's system acts as, in the caller's municipality."""
    desk = Desk.open(session, caller.municipality_id, caller.person_key, now, option="token")
    return ApiDesk(desk.session, desk.municipality, desk.actor, desk.now, system=caller.system)


def audit_viewed(desk: ApiDesk, series: str, reference: str) -> None:
    """A system read a report's or case's status: written to its audit like every view."""
    desk.audit("api.viewed", Subject(desk.municipality_id, series, reference, False))
