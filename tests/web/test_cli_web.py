"""`samverkan user add`, `user disable`, `feed new`, `feed revoke` and `web`, in-process."""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from sqlalchemy import select

import models
from samverkan import cli, cli_web
from tests.web.conftest import World


@pytest.fixture
def shell(world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """`samverkan` commands pointed at the world's database."""
    import worker.runtime

    url = world.sessions.kw["bind"].url.render_as_string(hide_password=False)
    for key in [k for k in os.environ if k.startswith("SAMVERKAN_")]:
        if not key.startswith("SAMVERKAN_TEST_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("SAMVERKAN_DATABASE_URL", url)
    monkeypatch.setenv("SAMVERKAN_LOG_LEVEL", "WARNING")
    monkeypatch.setattr(worker.runtime, "_settings", None)
    monkeypatch.setattr(worker.runtime, "_runtime", None)
    yield world
    if worker.runtime._runtime is not None:
        worker.runtime._runtime.close()


def run(*args: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli.invoke(list(args))
    return code, out.getvalue() + err.getvalue()


def test_user_add_prints_a_password_once_and_stores_its_hash(shell: World) -> None:
    code, printed = run("user", "add", "per-sundberg", "--username", "per", "-m", "exempel")
    assert code == 0, printed
    password = printed.strip().splitlines()[-1]
    with shell.sessions() as session:
        account = session.scalars(
            select(models.Account).where(models.Account.username == "per")
        ).one()
    assert account.password_hash and password not in account.password_hash
    assert account.password_hash.startswith("$argon2")
    client = shell.client()
    from tests.web.conftest import sign_in

    sign_in(client, "per", password)
    assert client.get("/personer").status_code == 200


def test_a_second_account_or_a_bad_name_is_refused_without_repeating_it(shell: World) -> None:
    code, printed = run("user", "add", "ingrid-mattsson", "--username", "ny", "-m", "exempel")
    assert code == 2 and "already has an account" in printed
    code, printed = run(
        "user", "add", "per-sundberg", "--username", "Per Sundberg", "-m", "exempel"
    )
    assert code == 2 and "--username" in printed and "Sundberg" not in printed
    code, printed = run("user", "add", "per-sundberg", "--username", "rektor", "-m", "exempel")
    assert code == 2 and "taken" in printed


def test_reset_gives_a_new_password(shell: World) -> None:
    code, printed = run(
        "user", "add", "ingrid-mattsson", "--username", "rektor", "--reset", "-m", "exempel"
    )
    assert code == 0
    from tests.web.conftest import sign_in

    sign_in(shell.client(), "rektor", printed.strip().splitlines()[-1])


def test_feed_new_prints_a_working_link_and_revoke_ends_it(shell: World) -> None:
    code, printed = run("feed", "new", "ingrid-mattsson", "-m", "exempel")
    assert code == 0
    path = re.search(r"/feeds/[A-Za-z0-9_-]{43}\.ics", printed)
    assert path is not None
    client = shell.client()
    assert client.get(path.group(0)).status_code == 200
    code, printed = run("feed", "revoke", "ingrid-mattsson", "-m", "exempel")
    assert code == 0 and "1 feed(s) revoked" in printed
    assert client.get(path.group(0)).status_code == 404


def test_web_serves_the_app_with_secure_cookies_unless_dev(
    shell: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    served: list[bool] = []
    monkeypatch.setattr(cli_web, "serve", lambda *args: served.append(args[4]))
    assert run("web", "--port", "8123")[0] == 0
    assert run("web", "--dev")[0] == 0
    assert served == [True, False]
    code, printed = run("web", "--host", "a host; rm")
    assert code == 2 and "--host" in printed


def test_web_demo_makes_the_demo_accounts_in_the_demo_folder_only(
    shell: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SAMVERKAN_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setattr(cli_web, "serve", lambda *args: None)
    code, printed = run("web", "--demo")
    assert code == 2 and "make demo" in printed  # no demo data yet
