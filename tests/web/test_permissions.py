"""Every route of the app, for every kind of user, allowed or refused.

The routes are read from the app itself (`app.routes`): a new route without a row in EXPECTED
fails `test_every_route_has_a_row`, so nobody adds a page without deciding who may see it.
Users (tests/web/conftest.py): a coordinator, a rektor of one school, a family worker, an
intake officer of one district, a person with no role that day, and the coordinator of
another municipality; and a visitor who is not signed in.
"""

from __future__ import annotations

import pytest
from fastapi.routing import APIRoute
from starlette.routing import Mount

from models.db import transaction
from service import apitokens
from tests.web.conftest import NOW, USERS, World, csrf_of, failed_row, municipality_id

ANON = "anon"
KINDS = [ANON, *USERS]
STAFF_PAGE = {ANON: 303, "ingenroll": 403} | {u: 200 for u in USERS if u != "ingenroll"}
PUBLIC_OK = dict.fromkeys(KINDS, 200)
COORDINATOR_PAGE = {ANON: 303, "samordnare": 200, "annan": 200} | {
    u: 403 for u in ("rektor", "familj", "mottagning", "ingenroll")
}
# The fixture's report went to the intake unit Norr; its case is the rektor's, with the family
# worker in it (tests/web/conftest.py).
SEES_REPORT = {ANON: 303, "ingenroll": 403, "samordnare": 200, "mottagning": 200} | {
    u: 404 for u in ("rektor", "familj", "annan")
}
SEES_CASE = {ANON: 303, "ingenroll": 403, "samordnare": 200, "rektor": 200, "familj": 200} | {
    u: 404 for u in ("mottagning", "annan")
}
FORM_FOR_STAFF = {ANON: 403, "ingenroll": 403} | {u: 400 for u in USERS if u != "ingenroll"}
OWNERS_FORM = SEES_CASE | {ANON: 403, "samordnare": 403, "rektor": 400, "familj": 403}

# (method, path) -> user kind -> status
EXPECTED: dict[tuple[str, str], dict[str, int]] = {
    ("GET", "/logga-in"): PUBLIC_OK,
    ("POST", "/logga-in"): dict.fromkeys(KINDS, 401),  # wrong password, for everyone
    ("POST", "/logga-ut"): {ANON: 403} | dict.fromkeys(USERS, 303),
    ("GET", "/"): {ANON: 303, "ingenroll": 200} | {u: 303 for u in USERS if u != "ingenroll"},
    ("GET", "/arshjul"): STAFF_PAGE,
    ("GET", "/arshjul/utskrift"): STAFF_PAGE,
    ("GET", "/att-gora"): STAFF_PAGE,
    ("GET", "/personer"): STAFF_PAGE,
    ("GET", "/leveranslogg"): COORDINATOR_PAGE,
    # A failed message of Exempelby: the other municipality's coordinator does not find it.
    ("POST", "/leveranslogg/{notification_id}/skicka-igen"): COORDINATOR_PAGE
    | {"samordnare": 303, "annan": 404, ANON: 403},
    # Möten: the April meeting of Exempelby (a rektor and the family worker are invited, the
    # intake officer is not); moving it with an empty form is refused for its empty fields,
    # for whoever may move it; the coordinator calls it off, which needs no more.
    ("GET", "/moten"): STAFF_PAGE,
    ("GET", "/moten/rutin/{routine}/{occurrence}"): STAFF_PAGE | {"mottagning": 404, "annan": 404},
    ("GET", "/moten/rutin/{routine}/{occurrence}/stall-in"): STAFF_PAGE
    | {"rektor": 403, "familj": 403, "mottagning": 404, "annan": 404},
    ("POST", "/moten/rutin/{routine}/{occurrence}/flytta"): {ANON: 403, "samordnare": 400}
    | {"rektor": 403, "familj": 403, "mottagning": 404, "ingenroll": 403, "annan": 404},
    # Booking it: it is booked already (a conflict) for those who may book; the other
    # municipality's April meeting has no booking, so its empty form is refused for its fields.
    ("POST", "/moten/rutin/{routine}/{occurrence}/boka"): {ANON: 403, "samordnare": 409}
    | {"rektor": 403, "familj": 403, "mottagning": 403, "ingenroll": 403, "annan": 400},
    ("POST", "/moten/rutin/{routine}/{occurrence}/stall-in"): {ANON: 403, "samordnare": 303}
    | {"rektor": 403, "familj": 403, "mottagning": 404, "ingenroll": 403, "annan": 404},
    # No meeting booked in the case: found by nobody (tests/web/test_meetings.py books one).
    ("GET", "/moten/arende/{reference}/{number}"): STAFF_PAGE
    | {u: 404 for u in USERS if u != "ingenroll"},
    ("GET", "/profil"): COORDINATOR_PAGE,
    # Without a file (or the previewed text): a coordinator's request is incomplete.
    ("POST", "/profil/granska"): COORDINATOR_PAGE | {"samordnare": 400, "annan": 400, ANON: 403},
    ("POST", "/profil/verkstall"): COORDINATOR_PAGE | {"samordnare": 400, "annan": 400, ANON: 403},
    ("GET", "/texter"): COORDINATOR_PAGE,
    ("GET", "/texter/{name}"): COORDINATOR_PAGE,
    # Each coordinator changes their own municipality's wording.
    ("POST", "/texter/{name}"): COORDINATOR_PAGE | {"samordnare": 303, "annan": 303, ANON: 403},
    ("POST", "/texter/{name}/forhandsgranska"): COORDINATOR_PAGE | {ANON: 403},
    ("POST", "/texter/{name}/aterstall"): COORDINATOR_PAGE
    | {"samordnare": 303, "annan": 303, ANON: 403},
    ("GET", "/feeds/{token}.ics"): dict.fromkeys(KINDS, 404),  # no such token
    # Reports and cases (web/cases.py). A POST carries the CSRF token and no field: 400 is
    # "allowed, the form is incomplete"; 404: the viewer may not see that report or case.
    ("GET", "/anmalningar"): STAFF_PAGE,
    ("GET", "/anmalningar/ny"): STAFF_PAGE,
    ("GET", "/anmalningar/{reference}"): SEES_REPORT,
    ("POST", "/anmalningar"): FORM_FOR_STAFF,
    ("POST", "/anmalningar/{reference}/mottagen"): SEES_REPORT
    | {"samordnare": 403, "mottagning": 200, ANON: 403},
    ("POST", "/anmalningar/{reference}/misstankt-vald"): SEES_REPORT
    | {"samordnare": 403, "mottagning": 200, ANON: 403},
    ("POST", "/anmalningar/{reference}/anteckning"): SEES_REPORT
    | {"samordnare": 400, "mottagning": 400, ANON: 403},
    ("GET", "/arenden"): STAFF_PAGE,
    ("GET", "/arenden/ny"): STAFF_PAGE,
    ("GET", "/arenden/{reference}"): SEES_CASE,
    # Whoever raises a case owns it: the rektor and the family worker hold an owner role.
    ("POST", "/arenden"): FORM_FOR_STAFF | {"rektor": 200, "familj": 200},
    ("POST", "/arenden/{reference}/samtycke"): OWNERS_FORM,
    ("POST", "/arenden/{reference}/boka"): OWNERS_FORM,
    ("POST", "/arenden/{reference}/hallet"): OWNERS_FORM,
    ("POST", "/arenden/{reference}/minnesanteckningar"): OWNERS_FORM,
    ("POST", "/arenden/{reference}/sip"): OWNERS_FORM | {"rektor": 200},  # no field needed
    ("POST", "/arenden/{reference}/sip-insats"): OWNERS_FORM,
    ("POST", "/arenden/{reference}/anteckning"): SEES_CASE
    | {"samordnare": 400, "rektor": 400, "familj": 400, ANON: 403},
    ("POST", "/arenden/{reference}/aterkalla-samtycke"): OWNERS_FORM,  # no consent to withdraw
    ("POST", "/arenden/{reference}/avsluta"): OWNERS_FORM | {"rektor": 200},  # last: it closes
    ("GET", "/healthz"): PUBLIC_OK,
    ("GET", "/metrics"): PUBLIC_OK,
    ("GET", "/static"): PUBLIC_OK,
    # The JSON API: a visitor has no token (401); every other kind calls with a token acting as
    # that person (a session cookie is never enough). Exempelby's report (to the intake unit of
    # Norr) and case (owned by the rektor); the other municipality's token finds neither.
    ("GET", "/openapi.json"): PUBLIC_OK,
    ("POST", "/api/reports"): {ANON: 401, "annan": 422} | {u: 201 for u in USERS if u != "annan"},
    ("GET", "/api/reports/{reference}"): {ANON: 401, "mottagning": 200, "annan": 404}
    | {u: 403 for u in ("samordnare", "rektor", "familj", "ingenroll")},
    ("POST", "/api/reports/{reference}/receipt"): {ANON: 401, "mottagning": 200, "annan": 404}
    | {u: 403 for u in ("samordnare", "rektor", "familj", "ingenroll")},
    ("POST", "/api/cases"): {ANON: 401, "annan": 422} | {u: 201 for u in USERS if u != "annan"},
    ("GET", "/api/cases/{reference}"): {ANON: 401, "rektor": 200, "familj": 200, "annan": 404}
    | {u: 403 for u in ("samordnare", "mottagning", "ingenroll")},
    ("POST", "/api/cases/{reference}/consent"): {ANON: 401, "rektor": 200, "annan": 404}
    | {u: 403 for u in ("samordnare", "familj", "mottagning", "ingenroll")},
    ("POST", "/api/cases/{reference}/meetings"): {ANON: 401, "rektor": 200, "annan": 404}
    | {u: 403 for u in ("samordnare", "familj", "mottagning", "ingenroll")},
    ("POST", "/api/cases/{reference}/close"): {ANON: 401, "rektor": 200, "annan": 404}
    | {u: 403 for u in ("samordnare", "familj", "mottagning", "ingenroll")},
}
# A valid body for each API route that takes one (Exempelby's keys).
API_BODIES = {
    "/api/reports": {"unit": "bjorkhagsskolan", "reporter": "per-sundberg", "district": "norr"},
    "/api/cases": {"owner": "ingrid-mattsson", "school": "kyrkbacksskolan"},
    "/api/cases/{reference}/consent": {"given_by": "vårdnadshavarna", "scope": "möte"},
    "/api/cases/{reference}/meetings": {"date": "2027-03-05", "time": "13:00"},
}


def routes(world: World) -> set[tuple[str, str]]:
    app = world.client().app
    found = set()
    for route in app.routes:  # type: ignore[attr-defined]
        if isinstance(route, APIRoute):
            found |= {(method, route.path) for method in route.methods}
        elif isinstance(route, Mount):
            found.add(("GET", route.path))
    return found


def test_every_route_has_a_row(world: World) -> None:
    assert routes(world) == set(EXPECTED)


@pytest.mark.parametrize("part", ["pages", "api"])
def test_each_route_allows_and_refuses_as_expected(
    world: World, signed_in: dict, part: str
) -> None:
    """The pages and the API each on a world of their own: a form of one would change what the
    other finds (a report received on the page is no longer there to receive by the API)."""
    anon = world.client()
    clients = {ANON: anon, **signed_in}
    expected = {r: v for r, v in EXPECTED.items() if r[1].startswith("/api/") == (part == "api")}
    found: dict[tuple[str, str], dict[str, int]] = {}
    # Signing out last: it ends the session the other requests need.
    order = sorted(expected, key=lambda r: r == ("POST", "/logga-ut"))
    for method, path in order:
        for kind, client in clients.items():
            status = request(world, client, method, path, kind)
            found.setdefault((method, path), {})[kind] = status
    assert found == expected


def request(world: World, client, method: str, path: str, kind: str) -> int:  # type: ignore[no-untyped-def]
    if path.startswith("/api/"):
        return api_request(world, client, method, path, kind)
    path = path.replace("{routine}", "samverkansmote-var").replace("{occurrence}", "2027")
    path = path.replace("{number}", "1")
    if path == "/static":
        return int(client.get("/static/style.css").status_code)
    reference = world.report if path.startswith("/anmalningar/") else world.case
    path = path.replace("{reference}", reference)
    path = path.replace("{name}", "utvardering-underlag")
    if method == "GET":
        return int(client.get(path.replace("{token}", "x" * 43)).status_code)
    token = csrf_of(client.get("/logga-in").text)
    if "{notification_id}" in path:
        path = path.replace("{notification_id}", str(failed_row(world.sessions)))
    # A different unknown name each time: five failures for one name would throttle it.
    form = {"csrf": token, "anvandarnamn": f"ingen-{kind}", "losenord": "fel"}
    return int(client.post(path, data=form).status_code)


def api_request(world: World, client, method: str, path: str, kind: str) -> int:  # type: ignore[no-untyped-def]
    """An API route called with a token acting as `kind`'s person (a visitor has none)."""
    headers = {}
    if kind in USERS:
        town, person = USERS[kind]
        with transaction(world.sessions) as session:
            token = apitokens.new_token(
                session, municipality_id(session, town), person, f"matris-{kind}", NOW
            )
        headers = {"Authorization": f"Bearer {token}"}
    reference = world.report if path.startswith("/api/reports/") else world.case
    if path.endswith("/close"):  # a case of its own for each: the first close ends the case
        reference = new_case(world)
    answer = client.request(
        method,
        path.replace("{reference}", reference),
        headers=headers,
        json=API_BODIES.get(path),
    )
    return int(answer.status_code)


def new_case(world: World) -> str:
    """A new case of Exempelby owned by the rektor (Ingrid Mattsson), like the world's."""
    from service import cases
    from service.desk import Desk

    with transaction(world.sessions) as session:
        desk = Desk.open(session, municipality_id(session, "exempel"), "ingrid-mattsson", NOW)
        request = cases.CaseRequest(
            owner="ingrid-mattsson", school="kyrkbacksskolan", family_worker="emma-sandberg"
        )
        return cases.open_case(desk, request).reference


def test_a_visitor_is_sent_to_the_sign_in_page_and_back(world: World) -> None:
    answer = world.client().get("/att-gora")
    assert answer.headers["location"] == "/logga-in?nasta=/att-gora"


def test_nobody_sees_another_municipality(world: World, signed_in: dict) -> None:
    pages = ["/arshjul", "/arshjul/utskrift", "/att-gora", "/personer", "/moten"]
    for kind, client in signed_in.items():
        if kind == "ingenroll":
            continue
        text = " ".join(client.get(p).text for p in [*pages, "/leveranslogg"]).lower()
        if kind == "annan":
            assert "exempelby" not in text
            assert "liten.se" in text
        else:
            assert "liten.se" not in text and "lilla kommunen" not in text
            assert "exempelby" in text
