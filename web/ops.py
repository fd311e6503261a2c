"""For machines: the calendar feed, `/healthz` for the container, `/metrics` for Prometheus."""

from __future__ import annotations

import email.utils
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse, Response

from web import feeds, metrics
from web.access import Rule, rule
from web.deps import Db, now, viewer

router = APIRouter()
Public = Annotated[None, Depends(viewer(Rule.PUBLIC))]


@router.get("/feeds/{token}.ics")
@rule(Rule.PUBLIC)
def feed(request: Request, session: Db, _: Public, token: str) -> Response:
    """The token is the access check: unknown or revoked, the answer is a plain 404."""
    person = feeds.person_for(session, token)
    if person is None:
        return PlainTextResponse("Okänd eller återkallad kalenderlänk.\n", status_code=404)
    moment = now(request)
    version = feeds.version(session, person, moment)
    headers = {
        "ETag": version.etag,
        "Last-Modified": email.utils.format_datetime(version.last_modified, usegmt=True),
        "Cache-Control": "private, no-cache",
    }
    if _unchanged(request, version):
        return Response(status_code=304, headers=headers)
    body = feeds.ics(feeds.events(session, person, moment), version.last_modified, "Samverkan")
    return Response(body, media_type="text/calendar; charset=utf-8", headers=headers)


def _unchanged(request: Request, version: feeds.Version) -> bool:
    match = request.headers.get("if-none-match")
    if match is not None:
        return version.etag in {tag.strip() for tag in match.split(",")} or match.strip() == "*"
    since = request.headers.get("if-modified-since")
    if since is None:
        return False
    try:
        moment = email.utils.parsedate_to_datetime(since)
    except (TypeError, ValueError):
        return False
    return moment.tzinfo is not None and version.last_modified <= moment


@router.get("/healthz")
@rule(Rule.PUBLIC)
def healthz(session: Db, _: Public) -> Response:
    ok = metrics.healthy(session)
    return PlainTextResponse("ok\n" if ok else "fel\n", status_code=200 if ok else 503)


@router.get("/metrics")
@rule(Rule.PUBLIC)
def prometheus(request: Request, session: Db, _: Public) -> Response:
    return PlainTextResponse(
        metrics.render(session, now(request)), media_type="text/plain; version=0.0.4"
    )
