"""The web app for the browser tests: `uvicorn --factory tests.browser.web_app:create_app`.

The real app (`web.app.create_app`) on SAMVERKAN_DATABASE_URL, with plain-http cookies (the
tests speak http://127.0.0.1) and a clock standing still at SAMVERKAN_TEST_WEB_NOW (ISO 8601),
so the wheel and the to-do list show the same states at every run; with OpenID Connect
sign-in when the SAMVERKAN_OIDC_* settings are given (as `samverkan web` does).
"""

from __future__ import annotations

import datetime as dt
import os

from fastapi import FastAPI

from core.settings import load_settings
from models.db import make_engine, make_sessionmaker
from tests.clocks import FixedClock
from web.app import create_app as create_web_app
from web.config import WebConfig
from web.oidc import OidcConfig, install


def create_app() -> FastAPI:
    settings = load_settings()
    now = dt.datetime.fromisoformat(os.environ["SAMVERKAN_TEST_WEB_NOW"])
    sessions = make_sessionmaker(make_engine(settings.database_url))
    config = WebConfig(secure_cookies=False, clock=FixedClock(now))
    app = create_web_app(sessions, config)
    oidc = OidcConfig.from_settings(settings)
    if oidc is not None:
        install(app, oidc)
    return app
