"""The FastAPI application: its state, its guards, and the check that every route has a rule.

`create_app(sessions, config)` is what `samverkan web` serves and what the tests call. Each
request runs in one transaction (`db`); the session cookie is read once (`cookie`); a route
states its access rule with `@rule(...)` and takes `Depends(viewer(...))`; every POST takes
`Depends(csrf)`. A route without a rule, or a POST route without the CSRF check, stops the
app from being created.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException as StarletteHTTPException

from scheduler.calendar import local_date
from web import auth
from web.access import RULES, Rule, Viewer, load_viewer
from web.config import WebConfig
from worker.render import Renderer

STATIC = Path(__file__).resolve().parent / "static"


class Refused(Exception):
    """The request may not go on: answered with `status` and a page saying why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class SignInNeeded(Exception):
    pass


def now(request: Request) -> dt.datetime:
    config: WebConfig = request.app.state.config
    return config.clock.now()


def db(request: Request) -> Iterator[Session]:
    """One transaction per request: committed when the route returns, rolled back on error."""
    sessions: sessionmaker[Session] = request.app.state.sessions
    with sessions() as session, session.begin():
        yield session


def cookie(request: Request) -> auth.SessionCookie:
    """The session (signed in or not); a visitor without one gets a new one on the response."""
    found = getattr(request.state, "session_cookie", None)
    if isinstance(found, auth.SessionCookie):
        return found
    jar: auth.CookieJar = request.app.state.jar
    read = jar.read(request.cookies.get(auth.COOKIE))
    if read is None:
        read = auth.new_session(None)
        request.state.new_cookie = True
    request.state.session_cookie = read
    return read


Db = Annotated[Session, Depends(db)]
CookieDep = Annotated[auth.SessionCookie, Depends(cookie)]


def viewer(which: Rule) -> Callable[..., Viewer | None]:
    """A dependency: the signed-in viewer, allowed by `which`, or a refusal."""

    def dependency(request: Request, session: Db, session_cookie: CookieDep) -> Viewer | None:
        if which is Rule.PUBLIC:
            return None
        found = None
        if session_cookie.account_id is not None:
            found = load_viewer(session, session_cookie.account_id, local_date(now(request)))
        if found is None:
            raise SignInNeeded()
        if not found.allowed(which):
            raise Refused(403, "Du har inte behörighet till den här sidan.")
        request.state.viewer = found
        return found

    dependency.__name__ = f"viewer_{which.value}"
    return dependency


async def csrf(request: Request, session_cookie: CookieDep) -> None:
    """Every POST carries the session's CSRF token in its form, or is refused."""
    form = await request.form()
    if not auth.csrf_ok(session_cookie, form.get(auth.CSRF_FIELD)):
        raise Refused(403, "Formuläret har gått ut. Ladda om sidan och försök igen.")


def page(request: Request, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    env: Environment = request.app.state.templates
    session_cookie = cookie(request)
    body = env.get_template(template).render(
        request=request,
        viewer=getattr(request.state, "viewer", None),
        csrf_token=session_cookie.csrf,
        csrf_field=auth.CSRF_FIELD,
        **context,
    )
    return HTMLResponse(body, status_code=status)


def create_app(sessions: sessionmaker[Session], config: WebConfig | None = None) -> FastAPI:
    from web import ops, pages, signin

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
    for module in (signin, pages, ops):
        # The routes themselves, not `include_router`: this FastAPI wraps an included router
        # in one opaque route, and `check_routes` and the permission test read each route.
        app.router.routes.extend(module.router.routes)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _handlers(app)
    check_routes(app)
    return app


def check_routes(app: FastAPI) -> None:
    """Every route has an access rule; every POST route checks the CSRF token."""
    for route in app.routes:
        if not isinstance(route, APIRoute):
            continue
        if route.endpoint.__name__ not in RULES:
            raise RuntimeError(f"route {route.path} has no access rule (web.access.rule)")
        calls = {d.call for d in route.dependant.dependencies}
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
