"""The one typed settings object, read from the environment (prefix SAMVERKAN_).

Unknown SAMVERKAN_* variables and malformed values stop start-up with a message naming them:
a misspelled setting must never be silently ignored.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.errors import SettingsError

PREFIX = "SAMVERKAN_"
# Variables with our prefix that belong to the test suite, not to the service.
_NOT_SETTINGS = ("SAMVERKAN_TEST_",)

ROOT = Path(__file__).resolve().parent.parent

DAY_SECONDS = 24 * 3600
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class SmtpConfig:
    """Where and how to reach the municipality's SMTP relay."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    ssl: bool = False  # implicit TLS (smtps://, usually port 465)
    timeout: float = 30.0
    # "password" (AUTH PLAIN/LOGIN) or "xoauth2" (a bearer token from SAMVERKAN_OAUTH_*; the
    # user name is the mailbox to send as).
    auth: str = "password"

    @classmethod
    def from_url(cls, url: str) -> SmtpConfig:
        """Parse `smtp://user:pass@host:587?starttls=true` or `smtps://host:465`;
        `?auth=xoauth2` logs in with an OAuth2 token instead of the password."""
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise ValueError(f"scheme must be smtp:// or smtps://, not {parts.scheme!r}")
        if not parts.hostname:
            raise ValueError("the URL names no host")
        ssl = parts.scheme == "smtps"
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        unknown = set(query) - {"starttls", "timeout", "auth"}
        if unknown:
            raise ValueError(f"unknown option(s) {', '.join(sorted(unknown))}")
        auth = _parse_auth(query.get("auth", "password"), parts.username)
        starttls = _parse_bool("starttls", query.get("starttls", "false"))
        if ssl and starttls:
            raise ValueError("smtps:// is already TLS; starttls=true does not apply")
        timeout = float(query.get("timeout", "30"))
        try:
            port = parts.port or (465 if ssl else 25)
        except ValueError as exc:  # urlsplit raises on a non-numeric port
            raise ValueError(f"invalid port: {exc}") from None
        return cls(
            host=parts.hostname,
            port=port,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            starttls=starttls,
            ssl=ssl,
            timeout=timeout,
            auth=auth,
        )


@dataclass(frozen=True)
class ImapConfig:
    """The mailbox the service reads calendar replies from (worker/imapbox.py)."""

    host: str
    port: int
    username: str
    password: str | None = None
    ssl: bool = True  # imaps:// (993); imap:// needs starttls=true: never in clear text
    starttls: bool = False
    folder: str = "INBOX"
    # Where read messages are moved (created when missing); unreadable ones go to `junk`.
    done_folder: str = "Samverkan/Lasta"
    junk_folder: str = "Samverkan/Ignorerade"
    auth: str = "password"  # or "xoauth2"
    timeout: float = 30.0

    @classmethod
    def from_url(cls, url: str) -> ImapConfig:
        """Parse `imaps://user:pass@host:993/INBOX?auth=xoauth2&done=Read&junk=Ignored`."""
        parts = urlsplit(url)
        if parts.scheme not in ("imap", "imaps"):
            raise ValueError(f"scheme must be imap:// or imaps://, not {parts.scheme!r}")
        if not parts.hostname:
            raise ValueError("the URL names no host")
        if not parts.username:
            raise ValueError("the URL names no user (the mailbox to log in as)")
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        unknown = set(query) - {"starttls", "timeout", "auth", "done", "junk"}
        if unknown:
            raise ValueError(f"unknown option(s) {', '.join(sorted(unknown))}")
        ssl = parts.scheme == "imaps"
        starttls = _parse_bool("starttls", query.get("starttls", "false"))
        if ssl and starttls:
            raise ValueError("imaps:// is already TLS; starttls=true does not apply")
        if not ssl and not starttls:
            raise ValueError("imap:// without starttls=true would send the login in clear text")
        try:
            port = parts.port or (993 if ssl else 143)
        except ValueError as exc:
            raise ValueError(f"invalid port: {exc}") from None
        folder = unquote(parts.path.lstrip("/")) or "INBOX"
        return cls(
            host=parts.hostname,
            port=port,
            username=unquote(parts.username),
            password=unquote(parts.password) if parts.password else None,
            ssl=ssl,
            starttls=starttls,
            folder=folder,
            done_folder=query.get("done") or cls.done_folder,
            junk_folder=query.get("junk") or cls.junk_folder,
            auth=_parse_auth(query.get("auth", "password"), parts.username),
            timeout=float(query.get("timeout", "30")),
        )


def _parse_auth(value: str, username: str | None) -> str:
    lowered = value.strip().lower()
    if lowered not in ("password", "xoauth2"):
        raise ValueError(f"auth must be password or xoauth2, not {value!r}")
    if lowered == "xoauth2" and not username:
        raise ValueError("auth=xoauth2 needs the user name (the mailbox) in the URL")
    return lowered


def _parse_bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"{name} must be true or false, not {value!r}")


class Settings(BaseSettings):
    """Everything the service can be told from outside. Defaults are the embedded mode."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="forbid", frozen=True)

    # Unset, the SQLite database and the outbox folder live in var_dir (see _inside_var_dir).
    database_url: str = f"sqlite:///{ROOT / 'var' / 'samverkan.db'}"
    # Empty means the embedded transport (see docs/architecture.md for why this one).
    broker_url: str = ""
    # Empty means no SMTP: messages are written as .eml files into outbox_dir.
    smtp_url: str = ""
    outbox_dir: Path = ROOT / "var" / "outbox"
    var_dir: Path = ROOT / "var"
    templates_dir: Path = ROOT / "templates"
    timezone: str = "Europe/Stockholm"
    # How far ahead the planner writes outbox rows (at most ten years: dates stay in range).
    horizon_days: Annotated[int, Field(ge=1, le=3660)] = 400
    # A claimed row not finished within this lease is put back by the sweeper.
    lease_seconds: Annotated[int, Field(ge=1, le=DAY_SECONDS)] = 600
    # Transient failures are retried with backoff for this long after the first attempt.
    retry_horizon_hours: Annotated[float, Field(gt=0, le=24 * 31, allow_inf_nan=False)] = 72.0
    retry_base_seconds: Annotated[float, Field(gt=0, le=DAY_SECONDS, allow_inf_nan=False)] = 60.0
    # Rows handed to workers per tick at the most (the rest wait for the next tick).
    tick_batch: Annotated[int, Field(ge=1, le=1_000_000)] = 2000
    # Rows one delivery task claims, builds and sends (one after another, each recorded before
    # the next is sent); chosen by bench/mailout.py (docs/performance.md).
    deliver_batch: Annotated[int, Field(ge=1, le=1000)] = 100
    # Seconds between two beat ticks (one heartbeat: what is due is asked of the database).
    tick_seconds: Annotated[float, Field(gt=0, le=DAY_SECONDS, allow_inf_nan=False)] = 60.0
    # Seconds between two sweeps (rows claimed longer ago than the lease are put back).
    sweep_seconds: Annotated[float, Field(gt=0, le=DAY_SECONDS, allow_inf_nan=False)] = 300.0
    log_level: LogLevel = "INFO"
    # The mailbox calendar replies go to: invitations name it as ORGANIZER (docs/invites.md).
    # Empty: the convener is the ORGANIZER and replies go to her own mailbox, unread.
    reply_mailbox: str = ""
    # How the service reads that mailbox; empty: replies are not read.
    imap_url: str = ""
    # Seconds between two polls of the reply mailbox.
    reply_poll_seconds: Annotated[float, Field(gt=0, le=DAY_SECONDS, allow_inf_nan=False)] = 300.0
    # OAuth2 client credentials for auth=xoauth2 in smtp_url or imap_url (Microsoft 365:
    # https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token and the scope
    # https://outlook.office365.com/.default; docs/operations.md).
    oauth_token_url: str = ""
    oauth_client_id: str = ""
    oauth_client_secret: str = ""
    oauth_scope: str = ""
    # OpenID Connect sign-in (web/oidc.py, docs/web.md "OpenID Connect"); all empty: passwords only.
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: str = ""
    oidc_redirect_url: str = ""
    oidc_municipality: str = ""
    oidc_email_claim: str = "email"

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_in_capitals(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @model_validator(mode="before")
    @classmethod
    def _inside_var_dir(cls, values: Any) -> Any:
        """SAMVERKAN_VAR_DIR moves everything kept on disk that is not given its own setting:
        the SQLite database, the outbox folder, the broker folder and the beat schedule."""
        if not isinstance(values, dict) or not values.get("var_dir"):
            return values
        var_dir = Path(values["var_dir"])
        values = dict(values)
        values.setdefault("database_url", f"sqlite:///{var_dir / 'samverkan.db'}")
        values.setdefault("outbox_dir", var_dir / "outbox")
        return values

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url_parses(cls, value: str) -> str:
        if value:
            SmtpConfig.from_url(value)
        return value

    @field_validator("imap_url")
    @classmethod
    def _imap_url_parses(cls, value: str) -> str:
        if value:
            ImapConfig.from_url(value)
        return value

    @field_validator("reply_mailbox")
    @classmethod
    def _reply_mailbox_is_an_address(cls, value: str) -> str:
        value = value.strip()
        local, at, domain = value.rpartition("@")
        if value and not (at and local and "." in domain and " " not in value):
            raise ValueError("must be an e-mail address such as svar@kommun.se")
        return value

    @model_validator(mode="after")
    def _oauth_when_asked_for(self) -> Settings:
        wants = [
            name
            for name, url in (
                ("SAMVERKAN_SMTP_URL", self.smtp_url),
                ("SAMVERKAN_IMAP_URL", self.imap_url),
            )
            if url and "auth=xoauth2" in url.lower()
        ]
        missing = [
            PREFIX + name.upper()
            for name in ("oauth_token_url", "oauth_client_id", "oauth_client_secret")
            if not getattr(self, name)
        ]
        if wants and missing:
            raise ValueError(
                f"{' and '.join(wants)} ask for auth=xoauth2, which needs {', '.join(missing)}"
            )
        return self

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("database_url")
    @classmethod
    def _database_scheme(cls, value: str) -> str:
        scheme = value.split(":", 1)[0]
        if not scheme.startswith(("sqlite", "postgresql")):
            raise ValueError("must be a sqlite:/// or postgresql:// URL")
        return value

    @property
    def smtp(self) -> SmtpConfig | None:
        return SmtpConfig.from_url(self.smtp_url) if self.smtp_url else None

    @property
    def imap(self) -> ImapConfig | None:
        return ImapConfig.from_url(self.imap_url) if self.imap_url else None

    @property
    def embedded_broker(self) -> bool:
        return not self.broker_url

    @property
    def effective_broker_url(self) -> str:
        return self.broker_url or "samverkanfs://localhost/"  # worker/fstransport.py

    @property
    def broker_dir(self) -> Path:
        return self.var_dir / "broker"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def _known_names() -> set[str]:
    return {PREFIX + name.upper() for name in Settings.model_fields}


def load_settings(environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
    """Read and validate the settings; raise SettingsError naming every bad variable."""
    env = dict(os.environ if environ is None else environ)
    unknown = sorted(
        key
        for key in env
        if key.startswith(PREFIX)
        and not key.startswith(_NOT_SETTINGS)
        and key not in _known_names()
    )
    if unknown:
        known = ", ".join(sorted(_known_names()))
        raise SettingsError(f"unknown setting(s) {', '.join(unknown)}; known settings: {known}")
    values: dict[str, Any] = {
        key[len(PREFIX) :].lower(): value for key, value in env.items() if key in _known_names()
    }
    values.update(overrides)
    try:
        # Values come from our own dict, not the process environment, so tests can pass their own.
        return Settings.model_validate(values)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = PREFIX + ".".join(str(p) for p in error["loc"]).upper()
            problems.append(f"{field}: {error['msg']}")
        raise SettingsError("invalid setting(s): " + "; ".join(problems)) from None


def demo_settings(settings: Settings) -> Settings:
    """The demo's own world: a folder `demo` inside var_dir with its own SQLite database,
    outbox, broker folder and beat schedule, the embedded broker and .eml files. Never the
    configured database, broker or SMTP relay, so a demo cannot plan, send or cancel anything
    real."""
    folder = settings.var_dir / "demo"
    return settings.model_copy(
        update={
            "var_dir": folder,
            "database_url": f"sqlite:///{folder / 'samverkan.db'}",
            "outbox_dir": folder / "outbox",
            "broker_url": "",
            "smtp_url": "",
        }
    )
