"""What every route depends on: the request's transaction, its clock, the session cookie, the
signed-in viewer allowed by the route's rule, the CSRF check and the page renderer.

Routes (`pages`, `signin`, `ops`, `oidc`) import these; `app.py` assembles the routes, so no
route module imports the app.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment
from sqlalchemy.orm import Session, sessionmaker

from scheduler.calendar import local_date
from web import auth
from web.access import Rule, Viewer, load_viewer
from web.config import WebConfig


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
