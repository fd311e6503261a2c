"""Tokens of the JSON API: one per system (an e-service, a case-management system).

A token is bound to one municipality and to the staff person the system acts as, so the
service's permission checks and its audit apply to what the system does as to that person
(the audit also names the system). Like feed tokens, a token is shown once when made and kept
only as its SHA-256 digest; a revoked token stays as a row, so the audit can still say which
system it was.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UtcDateTime


class ApiToken(Base):
    __tablename__ = "api_token"
    __table_args__ = (Index("ix_api_token_municipality_system", "municipality_id", "system"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    municipality_id: Mapped[int] = mapped_column(ForeignKey("municipality.id"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    # The system's name, as given to `samverkan api-token new` (a short key, no personal data).
    system: Mapped[str] = mapped_column(String(64))
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
