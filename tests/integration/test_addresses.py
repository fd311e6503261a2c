"""Addresses are bare `local@domain`, as docs/profiles.md promises, wherever they are typed:
a person's, the sender's, a guardian's or pupil's on a case command. What is read is what is
mailed. Two people cannot share an address (each would get a copy of every message)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.errors import SamverkanError
from scheduler.spec import Person, Sender
from service.cases import check_address
from tests.profiles import refusal, write_variant

NOW = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC)

# Shapes that carry an address inside something else; each must be refused, never unwrapped.
WRAPPED = [
    "Evil <evil@example.se>",
    "<evil@example.se>",
    '"Anna Chef" <evil@example.se>',
    "evil@example.se (Anna Chef)",
    "(Anna) evil@example.se",
    " evil@example.se",
    "evil@example.se ",
    "evil@example.se\r\n",
    "anna@liten.se, evil@example.se",
    "anna@liten.se;evil@example.se",
    '"anna liten"@liten.se',
    "anna@[10.0.0.1]",
    "anna\t@liten.se",
]


@pytest.mark.parametrize("address", WRAPPED)
@pytest.mark.parametrize(
    ("old", "field"),
    [
        ("email: anna@liten.se", ":27: people[0].email"),
        ("email: samverkan@liten.se", ":7: municipality.sender.email"),
    ],
    ids=["person", "sender"],
)
def test_a_wrapped_address_is_refused_at_load_and_changes_nothing(
    address: str,
    old: str,
    field: str,
    tmp_path: Path,
    engine: Engine,
    session_factory: sessionmaker[Session],
) -> None:
    bad = write_variant(tmp_path, old, f"email: {json.dumps(address)}")  # JSON is YAML
    message = refusal(session_factory, engine, bad, NOW)
    assert f"{bad}{field}" in message, message
    assert "email: value is not a valid email address" in message, message


@pytest.mark.parametrize("address", WRAPPED)
def test_a_wrapped_address_on_a_case_command_is_refused(address: str) -> None:
    with pytest.raises(SamverkanError):
        check_address(address, "--guardian")


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.emails().map(str),
        st.tuples(st.text(max_size=8), st.emails().map(str), st.text(max_size=8)).map("".join),
    )
)
@example("Evil <evil@example.se>")
def test_an_accepted_address_is_the_text_that_was_typed(address: str) -> None:
    """Accepted means: exactly what was typed, up to the case and encoding of the domain."""
    for model in (
        lambda a: (
            Person.model_validate(
                {"key": "a", "name": "A", "email": a, "roles": [{"role": "rektor"}]}
            ).email
        ),
        lambda a: Sender.model_validate({"name": "S", "email": a}).email,
        lambda a: check_address(a, "--guardian"),
    ):
        try:
            stored = model(address)
        except (ValidationError, SamverkanError):
            continue
        local, _, domain = address.rpartition("@")
        assert stored.rpartition("@")[0] == local
        assert not any(c.isspace() or c in '<>(),;:"[]' for c in address)
        assert stored.rpartition("@")[2].encode("idna").lower() == domain.encode("idna").lower()


@pytest.mark.parametrize("other", ["anna@liten.se", "Anna@Liten.SE", "ANNA@liten.se"])
def test_two_people_with_one_address_are_refused_naming_both(
    other: str, tmp_path: Path, engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    bad = write_variant(tmp_path, "email: bo@liten.se", f"email: {other}")
    message = refusal(session_factory, engine, bad, NOW)
    assert f"{bad}:32: people[1].email: the same address as people[0] (key 'anna')" in message
    assert "the profile has 1 problem" in message
