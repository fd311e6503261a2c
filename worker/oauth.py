"""OAuth2 bearer tokens for IMAP and SMTP (SASL XOAUTH2), by the client-credentials grant.

Microsoft 365 is retiring password login for SMTP and IMAP; an application registered in
Entra ID gets a token for ``https://outlook.office365.com/.default`` with its client id and
secret (RFC 6749 4.4) and logs in to the mailbox with SASL XOAUTH2 (docs/operations.md).

`TokenProvider.token()` returns a token that is valid for at least `refresh_margin` more
seconds: the cached one, or a new one from the token endpoint. It is thread-safe (one
request at a time; other threads wait for its result) and fork-safe (a child process never
uses its parent's cache or lock). Errors name the endpoint and what it answered, never the
secret or the token.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from core.errors import OAuthError

__all__ = ["OAuthError", "TokenProvider", "xoauth2_string"]

# A token is renewed this long before it expires, so one handed out stays valid for a login.
DEFAULT_REFRESH_MARGIN = 300.0
MAX_RESPONSE_BYTES = 1_000_000


@dataclass(frozen=True)
class _Token:
    value: str
    expires_at: float  # on the provider's clock


class TokenProvider:
    """Client-credentials tokens from one endpoint, cached until shortly before they expire."""

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        scope: str = "",
        *,
        refresh_margin: float = DEFAULT_REFRESH_MARGIN,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        scheme = urllib.parse.urlsplit(token_url).scheme
        if scheme not in ("https", "http"):
            raise OAuthError(
                f"the token URL must be https:// (or http:// for tests), not {scheme!r}"
            )
        self.token_url = token_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._scope = scope
        self._margin = refresh_margin
        self._timeout = timeout
        self._clock = clock
        self._ssl_context = ssl_context
        self._lock = threading.Lock()
        self._token: _Token | None = None
        self._pid = os.getpid()
        self.requests = 0  # tokens fetched by this process (for tests and logs)

    def token(self) -> str:
        """A token valid for at least `refresh_margin` seconds more."""
        self._after_fork()
        with self._lock:
            current = self._token
            if current is not None and self._clock() < current.expires_at - self._margin:
                return current.value
            self._token = self._fetch()
            return self._token.value

    def invalidate(self) -> None:
        """Forget the cached token (the server refused it): the next call fetches a new one."""
        self._after_fork()
        with self._lock:
            self._token = None

    def _after_fork(self) -> None:
        if self._pid != os.getpid():
            self._lock = threading.Lock()
            self._token = None
            self._pid = os.getpid()

    def _fetch(self) -> _Token:
        form = {
            "grant_type": "client_credentials",
            "client_id": self._client_id,
            "client_secret": self._client_secret,
        }
        if self._scope:
            form["scope"] = self._scope
        request = urllib.request.Request(
            self.token_url,
            data=urllib.parse.urlencode(form).encode("ascii"),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
            method="POST",
        )
        started = self._clock()
        try:
            with urllib.request.urlopen(  # the scheme is checked above
                request, timeout=self._timeout, context=self._ssl_context
            ) as response:
                body = response.read(MAX_RESPONSE_BYTES)
        except urllib.error.HTTPError as exc:
            raise OAuthError(
                f"the token endpoint {self.token_url} answered HTTP {exc.code}"
                f"{_error_field(exc.read(MAX_RESPONSE_BYTES))}"
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            raise OAuthError(
                f"the token endpoint {self.token_url} cannot be reached: {exc}"
            ) from None
        try:
            data = json.loads(body)
            value = data["access_token"]
            lifetime = float(data.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError):
            raise OAuthError(
                f"the token endpoint {self.token_url} did not answer with an access_token"
            ) from None
        if not isinstance(value, str) or not value or not value.isascii():
            raise OAuthError(f"the token endpoint {self.token_url} sent an unusable token")
        self.requests += 1
        return _Token(value, started + lifetime)


def _error_field(body: bytes) -> str:
    """The `error` code of an OAuth error response (RFC 6749 5.2), which holds no secret."""
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        return ""
    return f" ({error})" if isinstance(error, str) and error.isascii() and len(error) < 100 else ""


def xoauth2_string(user: str, token: str) -> str:
    """The SASL XOAUTH2 initial response, before base64 (Google's and Microsoft's format)."""
    return f"user={user}\x01auth=Bearer {token}\x01\x01"


def xoauth2_base64(user: str, token: str) -> str:
    return base64.b64encode(xoauth2_string(user, token).encode("ascii")).decode("ascii")


def provider_from_settings(settings: object) -> TokenProvider | None:
    """The provider for `settings` (SAMVERKAN_OAUTH_*), or None when none is configured."""
    url = getattr(settings, "oauth_token_url", "")
    if not url:
        return None
    return TokenProvider(
        url,
        getattr(settings, "oauth_client_id", ""),
        getattr(settings, "oauth_client_secret", ""),
        getattr(settings, "oauth_scope", ""),
    )
