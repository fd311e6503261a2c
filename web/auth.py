"""Who is signed in: password check, rate limit, signed session cookies and CSRF tokens.

The password form is one way to reach `open_session`; an OpenID Connect callback is another
(it finds the account for the provider's subject and calls `open_session` the same way).
A session is a cookie signed with the key in `web_secret` (itsdangerous), holding the account
id and the session's CSRF token; every POST must carry that token in its form.
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

import models
from models.db import transaction
from web.config import WebConfig

COOKIE = "samverkan_session"
CSRF_FIELD = "csrf"
USERNAME_CHARS = 200
ADDRESS_CHARS = 64

_hasher = PasswordHasher()
# Verified against when the name is unknown, so both answers take the same time.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_matches(stored: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored or _DUMMY_HASH, password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def normal_username(text: str) -> str:
    return text.strip().lower()[:USERNAME_CHARS]


# --- the signing key ----------------------------------------------------------------------------


def signing_key(sessions: sessionmaker[Session], now: dt.datetime) -> bytes:
    """The installation's cookie key: made by the first process that asks, read by the rest."""
    query = select(models.WebSecret.value).where(models.WebSecret.name == "session")
    with transaction(sessions) as session:
        found = session.scalar(query)
    if found is not None:
        return found
    try:
        with transaction(sessions) as session:
            session.add(
                models.WebSecret(name="session", value=secrets.token_bytes(32), created_at=now)
            )
    except IntegrityError:
        pass  # another process made it first: use theirs
    with transaction(sessions) as session:
        return session.scalars(query).one()


# --- sessions -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionCookie:
    account_id: int | None
    csrf: str


class CookieJar:
    """Signs and reads the session cookie."""

    def __init__(self, key: bytes, config: WebConfig):
        self.serializer = URLSafeTimedSerializer(key, salt="samverkan-session")
        self.config = config

    def read(self, value: str | None) -> SessionCookie | None:
        if not value:
            return None
        try:
            data: Any = self.serializer.loads(
                value, max_age=int(self.config.session_lifetime.total_seconds())
            )
        except BadSignature:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("c"), str):
            return None
        account = data.get("a")
        return SessionCookie(account if isinstance(account, int) else None, data["c"])

    def write(self, cookie: SessionCookie) -> str:
        return str(self.serializer.dumps({"a": cookie.account_id, "c": cookie.csrf}))

    def set_on(self, response: Any, cookie: SessionCookie) -> None:
        response.set_cookie(
            COOKIE,
            self.write(cookie),
            max_age=int(self.config.session_lifetime.total_seconds()),
            httponly=True,
            samesite="lax",
            secure=self.config.secure_cookies,
            path="/",
        )


def new_session(account_id: int | None) -> SessionCookie:
    """A fresh session (a new CSRF token too, so a token seen before sign-in is worth nothing)."""
    return SessionCookie(account_id, secrets.token_urlsafe(32))


def csrf_ok(cookie: SessionCookie | None, sent: object) -> bool:
    return (
        cookie is not None
        and isinstance(sent, str)
        and hmac.compare_digest(cookie.csrf.encode(), sent.encode())
    )


# --- sign-in and its rate limit -----------------------------------------------------------------


@dataclass(frozen=True)
class SignInResult:
    """The account signed in, or the message to show; the attempt is recorded either way."""

    account: models.Account | None
    message: str | None = None
    throttled: bool = False


WRONG = "Fel användarnamn eller lösenord."
THROTTLED = "För många misslyckade inloggningar. Vänta en stund och försök igen."


def _failures(session: Session, column: Any, value: str, since: dt.datetime) -> int:
    a = models.SignInAttempt
    return int(
        session.scalar(
            select(func.count()).where(column == value, a.at > since, a.succeeded.is_(False))
        )
        or 0
    )


def throttled(
    session: Session, username: str, address: str, now: dt.datetime, config: WebConfig
) -> bool:
    a = models.SignInAttempt
    since = now - config.failure_window
    last_success = session.scalar(
        select(func.max(a.at)).where(a.username == username, a.succeeded.is_(True))
    )
    account_since = max(since, last_success) if last_success is not None else since
    return (
        _failures(session, a.username, username, account_since) >= config.max_failures_per_account
        or _failures(session, a.address, address, since) >= config.max_failures_per_address
    )


def sign_in(
    session: Session,
    username: str,
    password: str,
    address: str,
    now: dt.datetime,
    config: WebConfig,
) -> SignInResult:
    """Check a name and password; the attempt is added to `session` whatever the outcome, so
    the caller commits it (a refusal is not an error: the failure must count)."""
    name = normal_username(username)
    address = address[:ADDRESS_CHARS]
    if throttled(session, name, address, now, config):
        session.add(models.SignInAttempt(username=name, address=address, at=now, succeeded=False))
        return SignInResult(None, THROTTLED, throttled=True)
    account = session.scalar(select(models.Account).where(models.Account.username == name))
    ok = password_matches(account.password_hash if account else None, password)
    ok = ok and account is not None and not account.disabled and _active(session, account)
    session.add(models.SignInAttempt(username=name, address=address, at=now, succeeded=ok))
    return SignInResult(account, None) if ok else SignInResult(None, WRONG)


def _active(session: Session, account: models.Account) -> bool:
    person = session.get(models.Person, account.person_id)
    return person is not None and person.active
