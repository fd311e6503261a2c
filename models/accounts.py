"""The web app's own rows: accounts, sign-in attempts, calendar-feed tokens, its audit, its key.

An account belongs to one person of one municipality's profile; what it may see follows from
that person's roles. Passwords are kept as argon2 hashes and feed tokens as SHA-256 digests,
so the database never holds anything that signs somebody in. Sign-in attempts are rows (not
process memory) so every process of the web service counts the same failures.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UtcDateTime


class Account(Base):
    """A local sign-in for one person (the OpenID Connect route signs in the same person)."""

    __tablename__ = "web_account"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), unique=True)
    # What is typed in the sign-in form; unique over the installation (every municipality).
    username: Mapped[str] = mapped_column(String(200), unique=True)
    # argon2id; None for an account that signs in only through the OpenID provider.
    password_hash: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    disabled: Mapped[bool] = mapped_column(default=False)


class SignInAttempt(Base):
    """One try at signing in, counted per account name and per client address."""

    __tablename__ = "web_sign_in_attempt"
    __table_args__ = (
        Index("ix_web_sign_in_attempt_username_at", "username", "at"),
        Index("ix_web_sign_in_attempt_address_at", "address", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # The typed name, lowercased and cut to the column (it may name no account).
    username: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    succeeded: Mapped[bool] = mapped_column(default=False)


class FeedToken(Base):
    """A personal calendar feed: shown once when made, kept here only as its SHA-256 digest."""

    __tablename__ = "web_feed_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class WebAudit(Base):
    """What was done through the web app outside a case (a resent message, a feed made)."""

    __tablename__ = "web_audit"

    id: Mapped[int] = mapped_column(primary_key=True)
    municipality_id: Mapped[int] = mapped_column(ForeignKey("municipality.id"), index=True)
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    action: Mapped[str] = mapped_column(String(64))
    # Structured facts only: row ids, counts; never a message's content.
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)


class WebSecret(Base):
    """The key that signs session cookies, made once, so every web process signs alike."""

    __tablename__ = "web_secret"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    value: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class Heartbeat(Base):
    """The last moment a process of the service showed it was alive (`tick`, `worker:<host>`)."""

    __tablename__ = "heartbeat"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
