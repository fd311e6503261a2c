"""`samverkan web`, `samverkan user …` and `samverkan feed …`: the web app from the shell.

Like the other commands: parse, call, print. A password or feed link is made here and
printed once; the database keeps only its hash. Output never repeats a typed value.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from typing import TYPE_CHECKING, Annotated

import typer

from core.errors import AccountError, NotFoundError
from samverkan.cli import common

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    import models
    from core.settings import Settings

user_app = typer.Typer(help="Sign-in accounts for the web app.", no_args_is_help=True)
feed_app = typer.Typer(help="Personal calendar feeds (/feeds/<token>.ics).", no_args_is_help=True)

USERNAME = re.compile(r"[a-z0-9][a-z0-9._@-]{0,199}")
USERNAME_RULE = "1–200 characters: a–z, 0–9 and . _ @ - (lower case)"
HOST = re.compile(r"[A-Za-z0-9.:\[\]-]{1,253}")
# The demo's accounts: profile person → username; all with DEMO_PASSWORD (docs/web.md).
DEMO_ACCOUNTS = {
    "elin-bergstrom": "elin",  # samordnare
    "per-sundberg": "per",  # rektor, two schools in the north
    "emma-sandberg": "emma",  # familjebehandlare
    "linda-karlsson": "linda",  # mottagningsenheten Norr
}
DEMO_PASSWORD = "demo-samverkan"

Municipality = Annotated[str | None, typer.Option("--municipality", "-m")]
PersonKey = Annotated[str, typer.Argument(help="The person's key in the profile.")]


def _person(session: Session, municipality_id: int, key: str) -> models.Person:
    from sqlalchemy import select

    import models

    person = session.scalar(
        select(models.Person).where(
            models.Person.municipality_id == municipality_id, models.Person.key == key
        )
    )
    if person is None or not person.active:
        raise NotFoundError("PERSON: no active person with that key in this municipality")
    return person


def set_password(
    session: Session, person: models.Person, username: str, now: dt.datetime, reset: bool
) -> str:
    """Create (or with `reset`, give a new password to) the person's account; the password."""
    from sqlalchemy import select

    import models
    from web.auth import hash_password

    if not USERNAME.fullmatch(username):
        raise AccountError(f"--username: give {USERNAME_RULE}")
    account = session.scalar(select(models.Account).where(models.Account.person_id == person.id))
    taken = session.scalar(select(models.Account).where(models.Account.username == username))
    if taken is not None and (account is None or taken.id != account.id):
        raise AccountError("--username: that username is taken")
    if account is not None and not reset:
        raise AccountError("PERSON: already has an account (--reset gives it a new password)")
    password = secrets.token_urlsafe(12)
    if account is None:
        session.add(
            models.Account(
                person_id=person.id,
                username=username,
                password_hash=hash_password(password),
                created_at=now,
            )
        )
    else:
        account.username = username
        account.password_hash = hash_password(password)
        account.disabled = False
    return password


@user_app.command("add")
def user_add(
    person: PersonKey,
    username: Annotated[
        str, typer.Option("--username", help=f"The sign-in name: {USERNAME_RULE}.")
    ],
    reset: Annotated[
        bool, typer.Option("--reset", help="The person has an account: give it a new password.")
    ] = False,
    municipality: Municipality = None,
) -> None:
    """Make a sign-in for a person of the profile; prints a new password once."""
    from models.db import transaction

    settings = common.settings()
    common.prepare(settings)
    now = dt.datetime.now(dt.UTC)
    with transaction(common.runtime().sessions) as session:
        found = _person(session, common.municipality_id(session, municipality), person)
        password = set_password(session, found, username, now, reset)
    common.console.print("account ready; its password (shown only now):", highlight=False)
    common.console.print(password, highlight=False)


@user_app.command("disable")
def user_disable(person: PersonKey, municipality: Municipality = None) -> None:
    """Stop a person's account from signing in (its sessions end at their next request)."""
    from sqlalchemy import select

    import models
    from models.db import transaction

    settings = common.settings()
    common.prepare(settings)
    with transaction(common.runtime().sessions) as session:
        found = _person(session, common.municipality_id(session, municipality), person)
        account = session.scalar(select(models.Account).where(models.Account.person_id == found.id))
        if account is None:
            raise NotFoundError("PERSON: has no account")
        account.disabled = True
    common.console.print("account disabled", highlight=False)


@feed_app.command("new")
def feed_new(person: PersonKey, municipality: Municipality = None) -> None:
    """Make a calendar feed for a person; prints its path once (only a hash is kept)."""
    from models.db import transaction
    from web.feeds import new_token

    settings = common.settings()
    common.prepare(settings)
    now = dt.datetime.now(dt.UTC)
    with transaction(common.runtime().sessions) as session:
        found = _person(session, common.municipality_id(session, municipality), person)
        token = new_token(session, found.id, now)
    common.console.print("feed ready; its address (shown only now), after the web app's origin:")
    common.console.print(f"/feeds/{token}.ics", highlight=False)


@feed_app.command("revoke")
def feed_revoke(person: PersonKey, municipality: Municipality = None) -> None:
    """Revoke every calendar feed of a person."""
    from models.db import transaction
    from web.feeds import revoke_tokens

    settings = common.settings()
    common.prepare(settings)
    now = dt.datetime.now(dt.UTC)
    with transaction(common.runtime().sessions) as session:
        found = _person(session, common.municipality_id(session, municipality), person)
        count = revoke_tokens(session, found.id, now)
    common.console.print(f"{count} feed(s) revoked", highlight=False)


def web(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
    dev: Annotated[
        bool, typer.Option("--dev", help="Cookies without Secure, for http://localhost.")
    ] = False,
    demo: Annotated[
        bool,
        typer.Option("--demo", help="Serve the demo's database (make demo) with its accounts."),
    ] = False,
) -> None:
    """Serve the web app (uvicorn). Behind a TLS proxy in production; --dev for plain http."""
    from core.settings import demo_settings

    if not HOST.fullmatch(host):
        raise typer.BadParameter("give an IP address or a host name", param_hint="--host")
    settings = common.settings()
    if demo:
        settings = demo_settings(settings)
    common.prepare(settings)
    from worker.runtime import get_runtime

    sessions = get_runtime().sessions if not demo else _demo_sessions(settings)
    if demo:
        _demo_accounts(sessions)
    serve(sessions, settings, host, port, not (dev or demo))


def _demo_sessions(settings: Settings) -> object:
    from models.db import make_engine, make_sessionmaker

    return make_sessionmaker(make_engine(settings.database_url))


def _demo_accounts(sessions: object) -> None:
    from sqlalchemy import select

    import models
    from models.db import transaction
    from web.auth import hash_password

    now = dt.datetime.now(dt.UTC)
    with transaction(sessions) as session:  # type: ignore[arg-type]
        municipality = session.scalar(select(models.Municipality))
        if municipality is None:
            raise NotFoundError("the demo has no data yet: run `make demo` first")
        for key, username in DEMO_ACCOUNTS.items():
            person = session.scalar(
                select(models.Person).where(
                    models.Person.municipality_id == municipality.id, models.Person.key == key
                )
            )
            exists = session.scalar(
                select(models.Account).where(models.Account.username == username)
            )
            if person is not None and exists is None:
                session.add(
                    models.Account(
                        person_id=person.id,
                        username=username,
                        password_hash=hash_password(DEMO_PASSWORD),
                        created_at=now,
                    )
                )


def serve(sessions: object, settings: Settings, host: str, port: int, secure: bool) -> None:
    """Run uvicorn on the app (the fuzz and canary tests replace this with a stub)."""
    import uvicorn

    from web.app import create_app
    from web.config import WebConfig

    config = WebConfig(
        templates_dir=settings.templates_dir,
        secure_cookies=secure,
        horizon_days=settings.horizon_days,
    )
    app = create_app(sessions, config)  # type: ignore[arg-type]
    from web.oidc import OidcConfig, install

    oidc = OidcConfig.from_settings(settings)  # SAMVERKAN_OIDC_*: docs/web.md
    if oidc is not None:
        install(app, oidc)
    uvicorn.run(app, host=host, port=port, proxy_headers=True, log_level=settings.log_level.lower())
