"""Texter: every message's wording, a municipality's own wording of it, a live preview.

Coordinators only. Each route: the rule, the viewer, a call into `service.texts`, a template.
The preview is an htmx POST (the form's fields, CSRF token included) answered with a fragment;
without JavaScript the "Förhandsgranska" button posts the same form and gets the whole page.
"""

from __future__ import annotations

from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import RedirectResponse, Response

from service import texts
from web.access import Rule, Viewer, rule
from web.deps import Db, Refused, csrf, now, page, viewer

router = APIRouter()

Coordinator = Annotated[Viewer, Depends(viewer(Rule.COORDINATOR))]
Name = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]{0,79}$")]
NOT_FOUND = "Meddelandet finns inte."


def _dir(request: Request) -> FilePath:
    templates_dir: FilePath = request.app.state.config.templates_dir
    return templates_dir


Body = Annotated[str | None, Form(max_length=texts.MAX_BODY)]


def _bodies(subject: str | None, txt: str | None, html: str | None) -> dict[str, str]:
    given = {"subject": subject, "txt": txt, "html": html}
    return {part: body for part, body in given.items() if body is not None}


def _view(session: Db, who: Viewer, request: Request, name: str) -> texts.TextView:
    try:
        return texts.text_view(session, who, _dir(request), name)
    except texts.TextNotFound:
        raise Refused(404, NOT_FOUND) from None


def _page(
    request: Request,
    view: texts.TextView,
    *,
    status: int = 200,
    typed: dict[str, str] | None = None,
    **context: Any,
) -> Response:
    current = {p.part: p.current for p in view.parts}
    return page(
        request,
        "texts_edit.html",
        status=status,
        text=view,
        typed={**current, **(typed or {})},
        done=request.query_params.get("klart"),
        **context,
    )


@router.get("/texter")
@rule(Rule.COORDINATOR)
def text_list(request: Request, session: Db, who: Coordinator) -> Response:
    rows = texts.catalogue(session, who, _dir(request))
    return page(request, "texts.html", rows=rows, parts=texts.PART_TEXT)


@router.get("/texter/{name}")
@rule(Rule.COORDINATOR)
def text_page(request: Request, session: Db, who: Coordinator, name: Name) -> Response:
    return _page(request, _view(session, who, request, name))


@router.post("/texter/{name}/forhandsgranska", dependencies=[Depends(csrf)])
@rule(Rule.COORDINATOR)
def text_preview(
    request: Request,
    session: Db,
    who: Coordinator,
    name: Name,
    subject: Body = None,
    txt: Body = None,
    html: Body = None,
) -> Response:
    view = _view(session, who, request, name)
    bodies = _bodies(subject, txt, html)
    found = texts.preview(_dir(request), name, bodies)
    status = 200 if not found.problems else 400
    if request.headers.get("HX-Request") == "true":
        # htmx swaps only 2xx answers by default: the problems are the preview's content
        return page(request, "texts_preview.html", preview=found)
    return _page(request, view, status=status, typed=bodies, preview=found)


@router.post("/texter/{name}", dependencies=[Depends(csrf)])
@rule(Rule.COORDINATOR)
def text_save(
    request: Request,
    session: Db,
    who: Coordinator,
    name: Name,
    subject: Body = None,
    txt: Body = None,
    html: Body = None,
) -> Response:
    view = _view(session, who, request, name)
    bodies = _bodies(subject, txt, html)
    try:
        texts.save(session, who, _dir(request), name, bodies, now(request))
    except texts.TextRefused as refused:
        preview = texts.Preview(None, refused.problems)
        return _page(request, view, status=400, typed=bodies, preview=preview, refused=True)
    return RedirectResponse(f"/texter/{name}?klart=sparat", status_code=303)


@router.post("/texter/{name}/aterstall", dependencies=[Depends(csrf)])
@rule(Rule.COORDINATOR)
def text_revert(request: Request, session: Db, who: Coordinator, name: Name) -> Response:
    try:
        texts.revert(session, who, _dir(request), name, now(request))
    except texts.TextNotFound:
        raise Refused(404, NOT_FOUND) from None
    return RedirectResponse(f"/texter/{name}?klart=aterstallt", status_code=303)
