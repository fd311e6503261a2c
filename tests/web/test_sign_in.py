"""Signing in: the cookie's flags, one message for a wrong name or password, CSRF on every
POST, and the rate limit per account and per address, kept in the database."""

from __future__ import annotations

from sqlalchemy import func, select

import models
from tests.web.conftest import World, csrf_of, failed_row, sign_in
from web.auth import THROTTLED, WRONG


def attempt(client, username: str, password: str):  # type: ignore[no-untyped-def]
    token = csrf_of(client.get("/logga-in").text)
    return client.post(
        "/logga-in", data={"anvandarnamn": username, "losenord": password, "csrf": token}
    )


def test_signing_in_sets_a_secure_http_only_lax_cookie(world: World) -> None:
    client = world.client()
    answer = attempt(client, "rektor", world.passwords["rektor"])
    assert answer.status_code == 303
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" in cookie
    assert client.get("/personer").status_code == 200


def test_the_dev_flag_drops_secure_only(world: World) -> None:
    answer = attempt(world.client(secure_cookies=False), "rektor", world.passwords["rektor"])
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie


def test_a_wrong_password_and_an_unknown_name_get_the_same_answer(world: World) -> None:
    client = world.client()
    wrong = attempt(client, "rektor", "not-the-password")
    unknown = attempt(client, "nobody-here", "not-the-password")
    assert wrong.status_code == unknown.status_code == 401
    assert WRONG in wrong.text and WRONG in unknown.text
    assert client.get("/personer").status_code == 303  # still not signed in


def test_a_post_without_the_session_csrf_token_is_refused(world: World) -> None:
    client = world.client()
    client.get("/logga-in")
    form = {"anvandarnamn": "rektor", "losenord": world.passwords["rektor"]}
    assert client.post("/logga-in", data=form).status_code == 403
    assert client.post("/logga-in", data={**form, "csrf": "forged"}).status_code == 403
    # A token from another visitor's session is as good as forged.
    other = csrf_of(world.client().get("/logga-in").text)
    assert client.post("/logga-in", data={**form, "csrf": other}).status_code == 403
    assert client.get("/personer").status_code == 303


def test_a_signed_in_post_without_the_token_changes_nothing(world: World) -> None:
    client = world.client()
    sign_in(client, "samordnare", world.passwords["samordnare"])
    row = failed_row(world.sessions)
    answer = client.post(f"/leveranslogg/{row}/skicka-igen", data={"csrf": "forged"})
    assert answer.status_code == 403
    with world.sessions() as session:
        assert session.get_one(models.Notification, row).status == "failed"


def test_five_failures_lock_the_account_even_for_the_right_password(world: World) -> None:
    client = world.client()
    for _ in range(5):
        assert attempt(client, "rektor", "wrong").status_code == 401
    locked = attempt(client, "rektor", world.passwords["rektor"])
    assert locked.status_code == 429 and THROTTLED in locked.text
    # Another process (a new app on the same database) agrees: the count is in the database.
    assert attempt(world.client(), "rektor", world.passwords["rektor"]).status_code == 429
    # Other accounts are not locked by it.
    assert attempt(world.client(), "familj", world.passwords["familj"]).status_code == 303


def test_the_lock_ends_when_the_window_has_passed(world: World) -> None:
    client = world.client()
    for _ in range(5):
        attempt(client, "rektor", "wrong")
    world.clock.current += world.client().app.state.config.failure_window  # type: ignore[attr-defined]
    assert attempt(client, "rektor", world.passwords["rektor"]).status_code == 303


def test_twenty_failures_from_one_address_lock_it_for_every_name(world: World) -> None:
    client = world.client()
    for i in range(20):
        assert attempt(client, f"guess-{i}", "wrong").status_code == 401
    assert attempt(client, "familj", world.passwords["familj"]).status_code == 429
    with world.sessions() as session:
        count = session.scalar(select(func.count()).select_from(models.SignInAttempt))
    assert count == 21


def test_a_disabled_account_cannot_sign_in_and_its_session_ends(world: World) -> None:
    client = world.client()
    sign_in(client, "rektor", world.passwords["rektor"])
    with world.sessions.begin() as session:
        account = session.scalars(
            select(models.Account).where(models.Account.username == "rektor")
        ).one()
        account.disabled = True
    assert client.get("/personer").status_code == 303
    assert attempt(world.client(), "rektor", world.passwords["rektor"]).status_code == 401


def test_signing_out_ends_the_session(world: World) -> None:
    client = world.client()
    sign_in(client, "rektor", world.passwords["rektor"])
    token = csrf_of(client.get("/personer").text)
    assert client.post("/logga-ut", data={"csrf": token}).status_code == 303
    assert client.get("/personer").status_code == 303


def test_sign_in_leads_back_only_to_a_path_of_this_site(world: World) -> None:
    client = world.client()
    token = csrf_of(client.get("/logga-in").text)
    form = {"anvandarnamn": "rektor", "losenord": world.passwords["rektor"], "csrf": token}
    answer = client.post("/logga-in", data={**form, "nasta": "//evil.example/x"})
    assert answer.headers["location"] == "/"
