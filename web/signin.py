"""Signing in with a local account and signing out.

An OpenID Connect route would end the same way as `sign_in_post`: find the account, then
`_open` a new session (a new cookie and CSRF token) and redirect.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from web import auth
from web.access import Rule, rule
from web.deps import Db, csrf, now, page, viewer

router = APIRouter()


def safe_next(target: str | None) -> str:
    """Only a path of this site (not `//host`, not a URL) may be where sign-in leads."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def open_session(request: Request, account_id: int, target: str) -> Response:
    response = RedirectResponse(safe_next(target), status_code=303)
    request.app.state.jar.set_on(response, auth.new_session(account_id))
    return response


@router.get("/logga-in")
@rule(Rule.PUBLIC)
def sign_in_form(
    request: Request,
    _: Annotated[None, Depends(viewer(Rule.PUBLIC))],
    nasta: str = "/",
) -> Response:
    return page(request, "signin.html", next=safe_next(nasta), message=None, username="")


@router.post("/logga-in", dependencies=[Depends(csrf)])
@rule(Rule.PUBLIC)
def sign_in_post(
    request: Request,
    session: Db,
    _: Annotated[None, Depends(viewer(Rule.PUBLIC))],
    anvandarnamn: Annotated[str, Form(max_length=200)] = "",
    losenord: Annotated[str, Form(max_length=1000)] = "",
    nasta: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    address = request.client.host if request.client else "unknown"
    result = auth.sign_in(
        session, anvandarnamn, losenord, address, now(request), request.app.state.config
    )
    if result.account is None:
        status = 429 if result.throttled else 401
        return page(
            request,
            "signin.html",
            status=status,
            next=safe_next(nasta),
            message=result.message,
            username=anvandarnamn[:200],
        )
    return open_session(request, result.account.id, nasta)


@router.post("/logga-ut", dependencies=[Depends(csrf)])
@rule(Rule.SIGNED_IN)
def sign_out(request: Request, _: Annotated[object, Depends(viewer(Rule.SIGNED_IN))]) -> Response:
    response = RedirectResponse("/logga-in", status_code=303)
    response.delete_cookie(auth.COOKIE, path="/")
    return response
