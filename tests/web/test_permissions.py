"""Every route of the app, for every kind of user, allowed or refused.

The routes are read from the app itself (`app.routes`): a new route without a row in EXPECTED
fails `test_every_route_has_a_row`, so nobody adds a page without deciding who may see it.
Users (tests/web/conftest.py): a coordinator, a rektor of one school, a family worker, an
intake officer of one district, a person with no role that day, and the coordinator of
another municipality; and a visitor who is not signed in.
"""

from __future__ import annotations

from fastapi.routing import APIRoute
from starlette.routing import Mount

from tests.web.conftest import USERS, World, csrf_of, failed_row

ANON = "anon"
KINDS = [ANON, *USERS]
STAFF_PAGE = {ANON: 303, "ingenroll": 403} | {u: 200 for u in USERS if u != "ingenroll"}
PUBLIC_OK = dict.fromkeys(KINDS, 200)
COORDINATOR_PAGE = {ANON: 303, "samordnare": 200, "annan": 200} | {
    u: 403 for u in ("rektor", "familj", "mottagning", "ingenroll")
}

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
    ("GET", "/texter"): COORDINATOR_PAGE,
    ("GET", "/texter/{name}"): COORDINATOR_PAGE,
    # Each coordinator changes their own municipality's wording.
    ("POST", "/texter/{name}"): COORDINATOR_PAGE | {"samordnare": 303, "annan": 303, ANON: 403},
    ("POST", "/texter/{name}/forhandsgranska"): COORDINATOR_PAGE | {ANON: 403},
    ("POST", "/texter/{name}/aterstall"): COORDINATOR_PAGE
    | {"samordnare": 303, "annan": 303, ANON: 403},
    ("GET", "/feeds/{token}.ics"): dict.fromkeys(KINDS, 404),  # no such token
    ("GET", "/healthz"): PUBLIC_OK,
    ("GET", "/metrics"): PUBLIC_OK,
    ("GET", "/static"): PUBLIC_OK,
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


def test_each_route_allows_and_refuses_as_expected(world: World, signed_in: dict) -> None:
    anon = world.client()
    clients = {ANON: anon, **signed_in}
    found: dict[tuple[str, str], dict[str, int]] = {}
    # Signing out last: it ends the session the other requests need.
    order = sorted(EXPECTED, key=lambda r: r == ("POST", "/logga-ut"))
    for method, path in order:
        for kind, client in clients.items():
            status = request(world, client, method, path, kind)
            found.setdefault((method, path), {})[kind] = status
    assert found == EXPECTED


def request(world: World, client, method: str, path: str, kind: str) -> int:  # type: ignore[no-untyped-def]
    if path == "/static":
        return int(client.get("/static/style.css").status_code)
    path = path.replace("{name}", "utvardering-underlag")
    if method == "GET":
        return int(client.get(path.replace("{token}", "x" * 43)).status_code)
    token = csrf_of(client.get("/logga-in").text)
    if "{notification_id}" in path:
        path = path.replace("{notification_id}", str(failed_row(world.sessions)))
    # A different unknown name each time: five failures for one name would throttle it.
    form = {"csrf": token, "anvandarnamn": f"ingen-{kind}", "losenord": "fel"}
    return int(client.post(path, data=form).status_code)


def test_a_visitor_is_sent_to_the_sign_in_page_and_back(world: World) -> None:
    answer = world.client().get("/att-gora")
    assert answer.headers["location"] == "/logga-in?nasta=/att-gora"


def test_nobody_sees_another_municipality(world: World, signed_in: dict) -> None:
    pages = ["/arshjul", "/arshjul/utskrift", "/att-gora", "/personer"]
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
