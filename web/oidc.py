"""Sign-in through the municipality's OpenID Connect provider, instead of the password form.

The authorization-code flow with PKCE (RFC 7636, S256) and a nonce:

1. `GET /oidc/login?next=/path` makes a random state, nonce and code verifier, keeps them in a
   short-lived signed cookie (`samverkan_oidc`, ten minutes, HttpOnly, path /oidc) and sends the
   browser to the provider's authorization endpoint with the verifier's S256 challenge.
2. `GET /oidc/callback?code=…&state=…` refuses unless the cookie is there, unexpired and
   signed by us, the state equals the cookie's, and the issuer (RFC 9207 `iss`, when sent) is the
   configured one. It then exchanges the code at the token endpoint with the client's secret and
   the code verifier (the provider checks the verifier against the challenge), and validates the
   ID token: signature by the provider's published keys, issuer, audience, expiry, nonce.
   Claims the ID token leaves out are read from the userinfo endpoint (same subject only).
3. The e-mail claim (`SAMVERKAN_OIDC_EMAIL_CLAIM`, `email` by default; a claim
   `email_verified: false` is refused) is mapped to the one active person of the configured
   municipality (`SAMVERKAN_OIDC_MUNICIPALITY`) with that address. Nobody else signs in: an
   unknown address, or a person of another municipality, is refused. The cookie is single-use:
   every answer of the callback deletes it.

The app decides what signing in means: it passes `sign_in(request, person, next_path) ->
Response` (sets its session cookie and sends the browser on to `next_path`, a local path)
and, if it likes, `refuse(request, message, status) -> Response` (renders the refusal in its
own layout). Refusals name no personal data; the reason is logged
as a short code.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from html import escape
from typing import Any
from urllib.parse import urlsplit

import requests
from authlib.integrations.requests_client import OAuth2Session, OAuthError
from authlib.oidc.core import CodeIDToken
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.errors import SettingsError
from core.settings import PREFIX, Settings
from models import Municipality, Person
from models.db import transaction

log = logging.getLogger(__name__)

COOKIE = "samverkan_oidc"
FLOW_SECONDS = 600
SCOPE = "openid email"
# Signature algorithms accepted on an ID token (never "none", never a symmetric one).
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]
_REQUIRED = ("issuer", "client_id", "client_secret", "redirect_url", "municipality")
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}


@dataclass(frozen=True)
class OidcConfig:
    """One provider, signing in the people of one municipality."""

    issuer: str
    client_id: str
    client_secret: str
    redirect_url: str
    municipality: str
    email_claim: str = "email"
    timeout: float = 10.0

    @classmethod
    def from_settings(cls, settings: Settings) -> OidcConfig | None:
        """The configuration, or None when no SAMVERKAN_OIDC_* setting is given.

        Raises SettingsError naming the settings that are missing or malformed."""
        values = {name: getattr(settings, f"oidc_{name}").strip() for name in _REQUIRED}
        if not any(values.values()):
            return None
        missing = [_variable(name) for name, value in values.items() if not value]
        if missing:
            raise SettingsError(
                "OpenID Connect is configured only in part; also set " + ", ".join(missing)
            )
        for name in ("issuer", "redirect_url"):
            problem = _url_problem(values[name])
            if problem:
                raise SettingsError(f"{_variable(name)}: {problem}")
        claim = settings.oidc_email_claim.strip()
        if not claim:
            raise SettingsError(f"{_variable('email_claim')}: must name a claim")
        return cls(email_claim=claim, **values)


def _variable(name: str) -> str:
    return f"{PREFIX}OIDC_{name.upper()}"


def _url_problem(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "must be an https:// URL"
    if parts.scheme == "http" and parts.hostname not in _LOCAL_HOSTS:
        return "must be an https:// URL (http:// only for localhost)"
    if parts.fragment or parts.query:
        return "must have no query or fragment"
    return None


@dataclass(frozen=True)
class SignedInPerson:
    """Who the provider vouched for, as a person of the profile."""

    id: int
    key: str
    name: str
    municipality_id: int
    municipality_key: str


def person_for_email(session: Session, municipality: str, email: str) -> SignedInPerson | None:
    """The one active person of `municipality` with this address (case-insensitive), or None
    (no such person, or two people share the address: then nobody is chosen)."""
    rows = session.execute(
        select(Person, Municipality.key)
        .join(Municipality, Person.municipality_id == Municipality.id)
        .where(
            Municipality.key == municipality,
            Person.active.is_(True),
            func.lower(Person.email) == email.strip().lower(),
        )
    ).all()
    if len(rows) != 1:
        return None
    person, municipality_key = rows[0]
    return SignedInPerson(
        person.id, person.key, person.name, person.municipality_id, municipality_key
    )


class OidcRefused(Exception):
    """The sign-in is refused. `reason` is a short code for the log; `message` is shown."""

    def __init__(self, reason: str, message: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.message = message
        self.status = status


_FAILED = "Inloggningen kunde inte slutföras. Börja om från inloggningssidan."
_UNKNOWN = (
    "Du är inloggad hos kommunens inloggningstjänst, men din e-postadress hör inte till någon "
    "person i samverkanskalendern. Kontakta samordnaren om du ska ha tillgång."
)
_UNREACHABLE = "Kommunens inloggningstjänst svarar inte just nu. Försök igen om en stund."


class OidcClient:
    """The relying party: builds the authorization request and checks what comes back."""

    def __init__(self, config: OidcConfig, secret: str | bytes) -> None:
        self.config = config
        self._flows = URLSafeTimedSerializer(secret, salt="samverkan-oidc-flow")
        self._lock = threading.Lock()
        self._metadata: dict[str, Any] | None = None
        self._keys: KeySet | None = None

    # -- the provider's published metadata and keys, fetched once ------------------------------

    def _get_json(self, url: str) -> dict[str, Any]:
        try:
            response = requests.get(url, timeout=self.config.timeout)
            response.raise_for_status()
            data = response.json()
        except (requests.RequestException, ValueError):
            raise OidcRefused("provider-unreachable", _UNREACHABLE, 502) from None
        if not isinstance(data, dict):
            raise OidcRefused("provider-answer-malformed", _UNREACHABLE, 502)
        return data

    def metadata(self) -> dict[str, Any]:
        with self._lock:
            if self._metadata is None:
                url = self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
                data = self._get_json(url)
                wanted = ("authorization_endpoint", "token_endpoint", "jwks_uri")
                if data.get("issuer") != self.config.issuer or not all(
                    isinstance(data.get(name), str) for name in wanted
                ):
                    raise OidcRefused("provider-metadata-mismatch", _UNREACHABLE, 502)
                self._metadata = data
            return self._metadata

    def keys(self, refresh: bool = False) -> KeySet:
        jwks_uri = self.metadata()["jwks_uri"]
        with self._lock:
            if self._keys is None or refresh:
                try:
                    self._keys = KeySet.import_key_set(self._get_json(jwks_uri))  # type: ignore[arg-type]
                except (ValueError, KeyError, JoseError):
                    raise OidcRefused("provider-keys-malformed", _UNREACHABLE, 502) from None
            return self._keys

    def _session(self) -> OAuth2Session:
        return OAuth2Session(
            client_id=self.config.client_id,
            client_secret=self.config.client_secret,
            scope=SCOPE,
            redirect_uri=self.config.redirect_url,
            code_challenge_method="S256",
            token_endpoint_auth_method="client_secret_basic",
        )

    # -- the flow -------------------------------------------------------------------------------

    def begin(self, next_path: str) -> tuple[str, str]:
        """The authorization URL to send the browser to, and the flow cookie's value."""
        flow = {
            "state": secrets.token_urlsafe(32),
            "nonce": secrets.token_urlsafe(32),
            "verifier": secrets.token_urlsafe(64),
            "next": safe_next(next_path),
        }
        with self._session() as oauth:
            url, _ = oauth.create_authorization_url(
                self.metadata()["authorization_endpoint"],
                state=flow["state"],
                code_verifier=flow["verifier"],
                nonce=flow["nonce"],
            )
        return str(url), self.seal(flow)

    def seal(self, flow: Mapping[str, str]) -> str:
        return self._flows.dumps(dict(flow))

    def open(self, cookie: str | None) -> dict[str, str]:
        if not cookie:
            raise OidcRefused("flow-cookie-missing", _FAILED)
        try:
            flow = self._flows.loads(cookie, max_age=FLOW_SECONDS)
        except BadSignature:  # also SignatureExpired
            raise OidcRefused("flow-cookie-invalid", _FAILED) from None
        if not isinstance(flow, dict) or not all(
            isinstance(flow.get(name), str) for name in ("state", "nonce", "verifier", "next")
        ):
            raise OidcRefused("flow-cookie-invalid", _FAILED)
        return flow

    def finish(self, params: Mapping[str, str], cookie: str | None) -> tuple[str, str]:
        """Check the provider's answer; return the signed-in e-mail address and the next path."""
        flow = self.open(cookie)
        code = self._code(params, flow)
        token = self._exchange(code, flow["verifier"])
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise OidcRefused("id-token-missing", _FAILED, 403)
        claims: Mapping[str, Any] = self._claims(id_token, flow["nonce"])
        if self.config.email_claim not in claims:
            claims = self._userinfo(token, claims["sub"])
        email = claims.get(self.config.email_claim)
        if not isinstance(email, str) or "@" not in email:
            raise OidcRefused("email-claim-missing", _UNKNOWN, 403)
        if claims.get("email_verified") is False:
            raise OidcRefused("email-not-verified", _UNKNOWN, 403)
        return email, flow["next"]

    def _code(self, params: Mapping[str, str], flow: Mapping[str, str]) -> str:
        """The authorization code, once the answer is shown to belong to this flow."""
        if "error" in params:
            raise OidcRefused("provider-error", _FAILED, 403)
        if not hmac.compare_digest(params.get("state", "").encode(), flow["state"].encode()):
            raise OidcRefused("state-mismatch", _FAILED)
        if "iss" in params and params["iss"] != self.config.issuer:
            raise OidcRefused("issuer-mismatch", _FAILED)
        code = params.get("code", "")
        if not code:
            raise OidcRefused("code-missing", _FAILED)
        return code

    def _exchange(self, code: str, verifier: str) -> Mapping[str, Any]:
        """The token endpoint's answer for the code; the provider checks the verifier."""
        token_endpoint = self.metadata()["token_endpoint"]
        with self._session() as oauth:
            try:
                token: Mapping[str, Any] = oauth.fetch_token(
                    token_endpoint,
                    grant_type="authorization_code",
                    code=code,
                    code_verifier=verifier,
                    timeout=self.config.timeout,
                )
            except OAuthError:
                raise OidcRefused("token-refused", _FAILED, 403) from None
            except (requests.RequestException, ValueError):
                raise OidcRefused("provider-unreachable", _UNREACHABLE, 502) from None
        return token

    def _userinfo(self, token: Mapping[str, Any], subject: str) -> dict[str, Any]:
        """The claims of the userinfo endpoint (for providers that keep the ID token small);
        they must be about the same subject as the ID token (OpenID Connect Core 5.3.2)."""
        endpoint = self.metadata().get("userinfo_endpoint")
        access_token = token.get("access_token")
        if not isinstance(endpoint, str) or not isinstance(access_token, str):
            raise OidcRefused("email-claim-missing", _UNKNOWN, 403)
        try:
            response = requests.get(
                endpoint,
                headers={"Authorization": f"Bearer {access_token}"},
                timeout=self.config.timeout,
            )
            response.raise_for_status()
            data = response.json()
        except (requests.RequestException, ValueError):
            raise OidcRefused("provider-unreachable", _UNREACHABLE, 502) from None
        if not isinstance(data, dict) or data.get("sub") != subject:
            raise OidcRefused("userinfo-subject-mismatch", _FAILED, 403)
        return data

    def _claims(self, id_token: str, nonce: str) -> CodeIDToken:
        try:
            token = self._decode(id_token)
            claims = CodeIDToken(
                token.claims,
                token.header,
                options={
                    "iss": {"essential": True, "value": self.config.issuer},
                    "aud": {"essential": True, "value": self.config.client_id},
                    "nonce": {"essential": True},
                },
                params={"nonce": nonce, "client_id": self.config.client_id},
            )
            claims.validate(leeway=60)
        except (JoseError, ValueError):
            raise OidcRefused("id-token-invalid", _FAILED, 403) from None
        return claims

    def _decode(self, id_token: str) -> jwt.Token:
        try:
            return jwt.decode(id_token, self.keys(), algorithms=ALGORITHMS)
        except (JoseError, ValueError):
            # The provider may have rolled its keys since we fetched them: fetch once more.
            return jwt.decode(id_token, self.keys(refresh=True), algorithms=ALGORITHMS)


def safe_next(path: str) -> str:
    """A path on this site to go to after signing in; anything else becomes "/"."""
    if not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    parts = urlsplit(path)
    if parts.scheme or parts.netloc:
        return "/"
    return path


def refusal_page(request: Request, message: str, status: int) -> Response:
    """A plain page for a refused sign-in (apps pass their own `refuse` to use their layout)."""
    body = (
        '<!doctype html><html lang="sv"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>Inloggningen nekades – Samverkan</title></head><body><main>"
        f"<h1>Inloggningen nekades</h1><p>{escape(message)}</p>"
        '<p><a href="/">Till startsidan</a></p></main></body></html>'
    )
    return HTMLResponse(body, status_code=status)


SignIn = Callable[[Request, SignedInPerson, str], Response]
Refuse = Callable[[Request, str, int], Response]


def oidc_router(
    config: OidcConfig,
    *,
    secret: str | bytes,
    session_factory: Callable[[], Session],
    sign_in: SignIn,
    refuse: Refuse = refusal_page,
    secure_cookies: bool = True,
) -> APIRouter:
    """The routes /oidc/login and /oidc/callback for one provider."""
    client = OidcClient(config, secret)
    router = APIRouter(prefix="/oidc")

    @router.get("/login", include_in_schema=False)
    def oidc_login(request: Request, next: str = "/") -> Response:
        try:
            url, cookie = client.begin(next)
        except OidcRefused as refused:
            log.warning("OpenID Connect sign-in not started: %s", refused.reason)
            return refuse(request, refused.message, refused.status)
        response = RedirectResponse(url, status_code=303)
        response.set_cookie(
            COOKIE,
            cookie,
            max_age=FLOW_SECONDS,
            path="/oidc",
            httponly=True,
            secure=secure_cookies,
            samesite="lax",
        )
        return response

    @router.get("/callback", include_in_schema=False)
    def oidc_callback(request: Request) -> Response:
        try:
            email, next_path = client.finish(request.query_params, request.cookies.get(COOKIE))
            with session_factory() as session:
                person = person_for_email(session, config.municipality, email)
            if person is None:
                raise OidcRefused("no-such-person", _UNKNOWN, 403)
            response = sign_in(request, person, next_path)
        except OidcRefused as refused:
            log.warning("OpenID Connect sign-in refused: %s", refused.reason)
            response = refuse(request, refused.message, refused.status)
        else:
            log.info("OpenID Connect sign-in: person id %s", person.id)
        response.delete_cookie(
            COOKIE, path="/oidc", httponly=True, secure=secure_cookies, samesite="lax"
        )
        return response

    return router


def install(app: FastAPI, config: OidcConfig) -> None:
    """Offer sign-in through `config`'s provider in the web app made by `web.app.create_app`.

    The person the provider vouches for signs in to their account; a person without one gets
    an account without a password (user name: the address, lower case), so the profile decides
    who may sign in. A disabled account (`samverkan user disable`) is refused, and so is an
    address that another account already uses as its user name."""
    from web import auth
    from web.access import Rule, rule
    from web.deps import page
    from web.signin import open_session

    sessions = app.state.sessions
    clock = app.state.config.clock

    def sign_in(request: Request, person: SignedInPerson, next_path: str) -> Response:
        with transaction(sessions) as session:
            account_id = _account_for(session, person, clock.now())
        if account_id is None:
            return refuse(request, _UNKNOWN, 403)
        return open_session(request, account_id, next_path)

    def refuse(request: Request, message: str, status: int) -> Response:
        return page(request, "error.html", status=status, message=message)

    router = oidc_router(
        config,
        secret=auth.signing_key(sessions, clock.now()),
        session_factory=sessions,
        sign_in=sign_in,
        refuse=refuse,
        secure_cookies=app.state.config.secure_cookies,
    )
    for route in router.routes:
        rule(Rule.PUBLIC)(route.endpoint)  # type: ignore[attr-defined]
    app.router.routes.extend(router.routes)


def _account_for(session: Session, person: SignedInPerson, now: dt.datetime) -> int | None:
    from models import Account

    account = session.scalar(select(Account).where(Account.person_id == person.id))
    if account is None:
        username = session.get_one(Person, person.id).email.strip().lower()
        if session.scalar(select(Account.id).where(Account.username == username)) is not None:
            return None
        account = Account(
            person_id=person.id, username=username, password_hash=None, created_at=now
        )
        session.add(account)
        session.flush()
    return None if account.disabled else account.id
