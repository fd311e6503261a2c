"""The one guard against personal identity numbers in anything that goes out."""

from __future__ import annotations

import pytest

from samverkan.errors import ConfidentialityError
from scheduler.privacy import contains_identity_number, refuse_identity_number, refuse_in_context


@pytest.mark.parametrize(
    "text",
    [
        "150312-1234",
        "150312+1234",  # over 100 years old
        "1503121234",
        "20150312-1234",
        "201503121234",
        "150312 1234",
        "150312–1234",  # an en dash, as a word processor writes it
        "Rum 3, elev 150372-1234",  # a coordination number (day + 60)
        "x150312-1234y",
    ],
)
def test_identity_numbers_in_any_usual_shape_are_found(text: str) -> None:
    assert contains_identity_number(text)
    with pytest.raises(ConfidentialityError, match="the location") as raised:
        refuse_identity_number(text, "the location")
    assert "1234" not in str(raised.value)  # the error never repeats the value


@pytest.mark.parametrize(
    "text",
    [
        "Ekskolan, rum 12",
        "2027-03-10",
        "0123-45 67 10",
        "Ärende 2027-0042",
        "2027-03-10T13:00:00+01:00",
        "1234567-1234",  # seven digits before the separator: not the shape
        "Sal 12345678901234",  # fourteen digits
    ],
)
def test_ordinary_text_passes(text: str) -> None:
    assert not contains_identity_number(text)
    assert refuse_identity_number(text, "x") == text


def test_a_whole_message_context_is_searched() -> None:
    refuse_in_context({"a": ["ok", {"b": "2027-03-10"}]})
    with pytest.raises(ConfidentialityError, match=r"context\.a\[1\]\.b"):
        refuse_in_context({"a": ["ok", {"b": "Rum 150312-1234"}]})
