"""The FastAPI application: its state, its guards, and the check that every route has a rule.

`create_app(sessions, config)` is what `samverkan web` serves and what the tests call. What a
route depends on lives in `web/deps.py`: each request runs in one transaction (`db`); the
session cookie is read once (`cookie`); a route
states its access rule with `@rule(...)` and takes `Depends(viewer(...))`; every POST takes
`Depends(csrf)`. A route without a rule, or a POST route without the CSRF check, stops the
app from being created.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException as StarletteHTTPException

from web import api, auth, cases, meetings, ops, pages, profiles, signin, texts
from web.access import RULES, Rule
from web.config import WebConfig
from web.deps import Refused, SignInNeeded, csrf, page
from worker.render import Renderer

STATIC = Path(__file__).resolve().parent / "static"


def create_app(sessions: sessionmaker[Session], config: WebConfig | None = None) -> FastAPI:
    config = config or WebConfig()
    app = FastAPI(title="Samverkan", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.sessions = sessions
    app.state.config = config
    app.state.jar = auth.CookieJar(auth.signing_key(sessions, config.clock.now()), config)
    app.state.renderer = Renderer(config.templates_dir)
    app.state.templates = Environment(
        loader=FileSystemLoader(config.templates_dir / "web"),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )
    for module in (signin, pages, cases, ops, meetings, profiles, texts, api):
        # The routes themselves, not `include_router`: this FastAPI wraps an included router
        # in one opaque route, and `check_routes` and the permission test read each route.
        app.router.routes.extend(module.router.routes)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _handlers(app)
    check_routes(app)
    return app


def check_routes(app: FastAPI) -> None:
    """Every route has an access rule; every POST route checks the CSRF token, except the
    API's, which take a token and never a session cookie (web/api.py)."""
    for route in app.routes:
        if not isinstance(route, APIRoute):
            continue
        if route.endpoint.__name__ not in RULES:
            raise RuntimeError(f"route {route.path} has no access rule (web.access.rule)")
        calls = {d.call for d in route.dependant.dependencies}
        if RULES[route.endpoint.__name__] is Rule.API:
            if api.caller not in calls or csrf in calls:
                raise RuntimeError(f"API route {route.path} must take the token, not the cookie")
            continue
        if "POST" in (route.methods or set()) and csrf not in calls:
            raise RuntimeError(f"POST {route.path} does not check the CSRF token")


def _handlers(app: FastAPI) -> None:
    @app.middleware("http")
    async def set_cookie(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        html = response.headers.get("content-type", "").startswith("text/html")
        if (
            html
            and getattr(request.state, "new_cookie", False)
            and "set-cookie" not in response.headers
        ):
            request.app.state.jar.set_on(response, request.state.session_cookie)
        return response

    @app.exception_handler(SignInNeeded)
    async def sign_in_needed(request: Request, _exc: SignInNeeded) -> Response:
        if request.method != "GET":
            return page(request, "error.html", status=403, message="Logga in först.")
        target = quote(request.url.path, safe="/")
        return RedirectResponse(f"/logga-in?nasta={target}", status_code=303)

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> Response:
        return page(request, "error.html", status=exc.status, message=exc.message)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        names = sorted({str(e["loc"][-1]) for e in exc.errors() if e.get("loc")})
        message = "Felaktig uppgift: " + ", ".join(names) if names else "Felaktig begäran."
        return page(request, "error.html", status=400, message=message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        messages = {404: "Sidan finns inte.", 405: "Det går inte att göra så här."}
        message = messages.get(exc.status_code, "Något gick fel.")
        return page(request, "error.html", status=exc.status_code, message=message)
