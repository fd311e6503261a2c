"""A small app for the browser test of OpenID Connect sign-in: `uvicorn --factory
tests.browser.oidc_app:create_app`, configured by the SAMVERKAN_* settings (the database and
the SAMVERKAN_OIDC_* ones) and SAMVERKAN_TEST_WEB_SECRET. Its one page says who is signed in.
"""

from __future__ import annotations

import os
from html import escape

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from itsdangerous import BadSignature, URLSafeSerializer

from models.db import make_engine, make_sessionmaker
from samverkan.settings import load_settings
from web.oidc import OidcConfig, SignedInPerson, oidc_router

COOKIE = "test_session"


def create_app() -> FastAPI:
    settings = load_settings()
    config = OidcConfig.from_settings(settings)
    assert config is not None, "set the SAMVERKAN_OIDC_* settings"
    secret = os.environ["SAMVERKAN_TEST_WEB_SECRET"]
    signer = URLSafeSerializer(secret, salt="test-session")
    sessions = make_sessionmaker(make_engine(settings.database_url))

    def sign_in(request: Request, person: SignedInPerson, next_path: str) -> Response:
        response = RedirectResponse(next_path, status_code=303)
        response.set_cookie(COOKIE, signer.dumps(person.name), httponly=True, samesite="lax")
        return response

    app = FastAPI()
    app.include_router(
        oidc_router(
            config, secret=secret, session_factory=sessions, sign_in=sign_in, secure_cookies=False
        )
    )

    @app.get("/")
    def home(request: Request) -> Response:
        try:
            name = signer.loads(request.cookies.get(COOKIE, ""))
            body = f"<p>Inloggad som {escape(name)}.</p>"
        except BadSignature:
            body = '<p><a href="/oidc/login?next=/">Logga in med kommunens konto</a></p>'
        return HTMLResponse(
            '<!doctype html><html lang="sv"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            "<title>Samverkan</title></head><body><main><h1>Samverkan</h1>"
            f"{body}</main></body></html>"
        )

    return app
