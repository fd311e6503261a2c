"""Profilen: upload a new version of the municipality's profile, see what it would change,
then apply exactly what was previewed (coordinators only).

Each route: a rule, the viewer, a call into `service.profilepreview`, a template. The upload
is previewed in a transaction that is rolled back; the preview page carries the text back
(base64, so no browser rewrites its line breaks) with its SHA-256 and the digest of the
database as previewed, and `apply_upload` refuses anything else.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import RedirectResponse, Response

from core.errors import ProfileError
from core.settings import load_settings
from service import profilepreview as preview
from service.yamlsource import MAX_BYTES
from web.access import Rule, Viewer, rule
from web.deps import Db, Refused, csrf, now, page, viewer

router = APIRouter()

Coordinator = Annotated[Viewer, Depends(viewer(Rule.COORDINATOR))]
LIMIT_TEXT = f"{MAX_BYTES // (1024 * 1024)} MB"
# The text is carried back base64-encoded: a third larger than the file.
MAX_FIELD = (MAX_BYTES + 2) // 3 * 4 + 4
DIGEST = Annotated[str, Form(min_length=64, max_length=64, pattern="^[0-9a-f]{64}$")]


def _horizon() -> int:
    return load_settings().horizon_days


def _problems(session: Db, who: Viewer, exc: ProfileError) -> list[str]:
    """The validator's lines (file:line: field: problem), without the server's folders."""
    folder = f"{preview.upload_path(session, who).parent}/"
    return [line.replace(folder, "") for line in str(exc).splitlines()]


@router.get("/profil")
@rule(Rule.COORDINATOR)
def profile_page(
    request: Request,
    who: Coordinator,
    klart: Annotated[int | None, Query(ge=1, le=1)] = None,
) -> Response:
    return page(request, "profile.html", limit=LIMIT_TEXT, done=klart is not None)


@router.post("/profil/granska", dependencies=[Depends(csrf)])
@rule(Rule.COORDINATOR)
def profile_preview(
    request: Request, session: Db, who: Coordinator, fil: Annotated[UploadFile, File()]
) -> Response:
    raw = fil.file.read(MAX_BYTES + 1)
    if not raw:
        return page(request, "profile.html", status=400, limit=LIMIT_TEXT, error="Filen är tom.")
    if len(raw) > MAX_BYTES:
        error = f"Filen är för stor: en profil får vara högst {LIMIT_TEXT}."
        return page(request, "profile.html", status=413, limit=LIMIT_TEXT, error=error)
    try:
        changes = preview.preview_upload(session, who, raw, now(request), _horizon())
    except ProfileError as exc:
        return page(
            request,
            "profile.html",
            status=400,
            limit=LIMIT_TEXT,
            error="Profilen har fel och kan inte läsas in. Inget har ändrats.",
            problems=_problems(session, who, exc),
        )
    except preview.NotYours:
        raise Refused(403, "Profilen gäller inte din kommun.") from None
    return page(
        request,
        "profile_preview.html",
        changes=changes,
        text=base64.b64encode(raw).decode("ascii"),
    )


@router.post("/profil/verkstall", dependencies=[Depends(csrf)])
@rule(Rule.COORDINATOR)
def profile_apply(
    request: Request,
    session: Db,
    who: Coordinator,
    text: Annotated[str, Form(max_length=MAX_FIELD)],
    sha256: DIGEST,
    state: DIGEST,
) -> Response:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise Refused(400, "Felaktig uppgift: text") from None
    try:
        preview.apply_upload(session, who, raw, sha256, state, now(request), _horizon())
    except preview.StalePreview:
        raise Refused(
            409,
            "Profilen verkställdes inte: texten är inte den som granskades, eller så har "
            "databasen ändrats sedan granskningen (till exempel av en annan inläsning). "
            "Ladda upp filen igen och granska ändringarna på nytt.",
        ) from None
    except preview.NotYours:
        raise Refused(403, "Profilen gäller inte din kommun.") from None
    except ProfileError as exc:
        return page(
            request,
            "profile.html",
            status=400,
            limit=LIMIT_TEXT,
            error="Profilen har fel och kan inte läsas in. Inget har ändrats.",
            problems=_problems(session, who, exc),
        )
    return RedirectResponse("/profil?klart=1", status_code=303)
