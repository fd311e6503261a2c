"""Property-based tests (hypothesis) for profile parsing: `service/yamlsource.py` and the
schema's checks on the values that reach a message (names, addresses).

The calendar maths has its own properties in test_workdays.py.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
import unicodedata
from pathlib import Path
from typing import Any

import yaml
from email_validator import EmailNotValidError, validate_email
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from core.errors import PermanentDeliveryError, ProfileError
from service.profiles import validate_profile
from service.yamlsource import parse_yaml
from tests.profiles import MINIMAL
from worker.compose import Address, HeaderInjectionError, compose_message

TODAY = dt.date(2026, 11, 22)
KEYS = st.from_regex(r"[a-z][a-z0-9_-]{0,11}", fullmatch=True)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=30),
)
DATA = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, min_size=1, max_size=4)
    ),
    max_leaves=10,
)
# Text a person can type into a profile (the BMP without surrogates; written as JSON escapes).
TYPED = st.text(alphabet=st.characters(max_codepoint=0xFFFF, exclude_categories=("Cs",)))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
@example("a: [")
@example("a: 1\na: 2\n")
@example("? [a, b]\n: c\n")
@example("a: &x [*x]\n")
@example("a: !!python/name:os.system ''\n")
def test_any_text_parses_or_is_refused_with_a_profile_error(source: str) -> None:
    try:
        located = parse_yaml(source, "p.yaml")
    except ProfileError as exc:
        assert str(exc).startswith("p.yaml")
    else:
        assert located.lines[()] >= 1  # every value, the whole file included, has a line


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(KEYS, DATA, min_size=1, max_size=4))
def test_what_yaml_writes_reads_back_the_same(data: dict[str, Any]) -> None:
    for flow in (False, True):
        text = yaml.safe_dump(data, default_flow_style=flow, allow_unicode=False, sort_keys=False)
        assert parse_yaml(text, "p.yaml").data == data


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(KEYS, SCALARS), min_size=1, max_size=12, unique_by=lambda kv: kv[0]))
def test_every_field_is_located_on_its_own_line(pairs: list[tuple[str, Any]]) -> None:
    lines = ["# a comment first", ""]
    for key, value in pairs:
        lines.append(f"{key}: {json.dumps(value)}")
    located = parse_yaml("\n".join(lines) + "\n", "p.yaml")
    for i, (key, value) in enumerate(pairs):
        assert located.line_of((key,)) == i + 3
        if not isinstance(value, str):  # strings that look like dates stay strings
            assert located.data[key] == value


@settings(max_examples=80, deadline=None)
@given(st.lists(KEYS, min_size=1, max_size=5), KEYS)
def test_a_duplicate_key_at_any_depth_is_refused_naming_its_line(path: list[str], key: str) -> None:
    lines = []
    for depth, part in enumerate(path):
        lines.append("  " * depth + f"{part}:")
    indent = "  " * len(path)
    lines += [f"{indent}{key}: 1", f"{indent}{key}: 2"]
    try:
        parse_yaml("\n".join(lines) + "\n", "p.yaml")
    except ProfileError as exc:
        assert f"p.yaml:{len(path) + 2}:" in str(exc)
        assert f"duplicate key '{key}'" in str(exc)
    else:
        raise AssertionError("a duplicate key was accepted")


def _is_control(char: str) -> bool:
    return unicodedata.category(char) in ("Cc", "Zl", "Zp")


def _validate_with(old: str, new: str) -> str | None:
    """validate_profile on MINIMAL with `old` replaced: None when valid, else the message."""
    text = MINIMAL.read_text(encoding="utf-8")
    assert text.count(old) == 1
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "p.yaml"
        path.write_text(text.replace(old, new), encoding="utf-8")
        try:
            validate_profile(path, TODAY)
        except ProfileError as exc:
            return str(exc)
    return None


def _compose_to(name: str, address: str) -> None:
    compose_message(
        sender=Address("Samverkan", "samverkan@liten.se"),
        to=Address(name, address),
        subject="Ämne",
        text="text",
        html="<p>html</p>",
        message_id="<a@liten.se>",
        date=dt.datetime(2027, 1, 4, 8, tzinfo=dt.UTC),
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TYPED)
@example("Anna\r\nBcc: x@evil.example")
@example("Anna\u2028Bcc: x@evil.example")
@example("Anna\x85Bcc")
@example("")
@example('Åsa Öberg-Ängström, "Rektor" <x>')
def test_a_name_is_accepted_exactly_when_it_cannot_break_a_header(name: str) -> None:
    problem = _validate_with("    name: Anna Chef\n", f"    name: {json.dumps(name)}\n")
    breaks = any(_is_control(c) for c in name)
    if problem is None:
        assert not breaks and 1 <= len(name) <= 200
        _compose_to(name, "anna@liten.se")  # and the message composes
    else:
        assert ":26: people[0].name:" in problem, problem
        assert breaks or not 1 <= len(name) <= 200
        if breaks:
            try:
                _compose_to(name, "anna@liten.se")
            except HeaderInjectionError:
                pass
            else:
                raise AssertionError("compose accepted what the profile refused")


ADDRESSES = st.one_of(
    TYPED.map(lambda s: s[:40]),
    st.emails().map(str),
    st.tuples(TYPED.map(lambda s: s[:10]), st.emails().map(str)).map(lambda t: t[0] + t[1]),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ADDRESSES)
@example("anna@liten.se\r\nBcc: x@evil.example")
@example("åsa@liten.se")
@example("anna@liten.se, x@evil.example")
@example("Anna <anna@liten.se>")
def test_an_address_accepted_at_load_time_is_one_the_worker_can_send_to(address: str) -> None:
    problem = _validate_with("email: anna@liten.se", f"email: {json.dumps(address)}")
    if problem is not None:
        assert ":27: people[0].email:" in problem, problem
        return
    from scheduler.spec import Person

    stored = str(
        Person.model_validate(
            {"key": "a", "name": "A", "email": address, "roles": [{"role": "rektor"}]}
        ).email
    )
    assert not any(_is_control(c) or c.isspace() for c in stored)
    try:
        validate_email(stored, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise AssertionError(f"{stored!r} was loaded but cannot be sent to: {exc}") from None
    try:
        _compose_to("Anna", stored)
    except (HeaderInjectionError, PermanentDeliveryError) as exc:
        raise AssertionError(f"{stored!r} was loaded but does not compose: {exc}") from None
