"""The one guard against personal identity numbers in anything that goes out."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from core.errors import ConfidentialityError
from scheduler.privacy import (
    contains_identity_number,
    is_identity_number,
    luhn_ok,
    refuse_identity_number,
    refuse_in_context,
)


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


# --- any valid number, in any shape, is found; ordinary text with numbers passes ------------

# What people put between the digits: separators, word-processor dashes, invisible characters.
SEPARATORS = [
    "-", " ", "  ", " - ", "_", ".", "/", "+", ":", ",", "\u2013", "\u2212", "\u00a0",
    "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "-\u200b", "(", ")",
]  # fmt: skip
FULLWIDTH = {str(d): chr(0xFF10 + d) for d in range(10)}


def check_digit(nine: str) -> str:
    return next(str(d) for d in range(10) if luhn_ok(nine + str(d)))


@st.composite
def identity_numbers(draw: st.DrawFn) -> str:
    """A valid personnummer or samordningsnummer, ten or twelve digits, no separators."""
    born = draw(st.dates(min_value=dt.date(1890, 1, 1), max_value=dt.date(2030, 12, 31)))
    coordination = draw(st.booleans())
    day = born.day + 60 if coordination else born.day
    serial = draw(st.integers(0, 999))
    nine = f"{born:%y%m}{day:02d}{serial:03d}"
    ten = nine + check_digit(nine)
    return f"{born.year // 100}{ten}" if draw(st.booleans()) else ten


@st.composite
def written(draw: st.DrawFn, number: str) -> str:
    """`number` as someone might type or paste it: any separators, fullwidth digits."""
    out = []
    for index, digit in enumerate(number):
        if index and draw(st.integers(0, 3)) == 0:
            out.append(draw(st.sampled_from(SEPARATORS)))
        out.append(FULLWIDTH[digit] if draw(st.integers(0, 5)) == 0 else digit)
    return "".join(out)


SWEDISH = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzåäöABCDEFGHIJKLMNOPQRSTUVWXYZÅÄÖ ,.-:;()!?'\"/",
    max_size=40,
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), number=identity_numbers(), before=SWEDISH, after=SWEDISH)
def test_any_valid_number_in_any_shape_anywhere_is_refused(
    data: st.DataObject, number: str, before: str, after: str
) -> None:
    text = before + data.draw(written(number)) + after
    assert contains_identity_number(text)
    with pytest.raises(ConfidentialityError, match="the field") as raised:
        refuse_identity_number(text, "the field")
    assert number[-4:] not in str(raised.value)


@given(number=identity_numbers(), data=st.data())
def test_a_number_inside_an_address_is_refused(number: str, data: st.DataObject) -> None:
    separator = data.draw(st.sampled_from([".", "_", "-", "+", ""]))
    local = f"vh{separator}{number[:-4]}{separator}{number[-4:]}"
    assert contains_identity_number(f"{local}@example.se")
    assert contains_identity_number(f"Vårdnadshavare <{local}@example.se>")


@pytest.mark.parametrize(
    "text",
    [
        "2012-03-15-1234",
        "120315 - 1234",
        "12 03 15-1234",
        "120315_1234",
        "1203\u200b15-1234",
        "vh.20120315.1234@example.se",
        "１２０３１５－１２３４",
    ],
)
def test_the_everyday_shapes_seen_in_use_are_refused(text: str) -> None:
    # 120315-1234 is not itself valid (its check digit is 6): use the valid neighbour.
    valid = text.replace("1234", "1236").replace("１２３４", "１２３６")
    assert is_identity_number("1203151236")
    assert contains_identity_number(valid)


@given(text=SWEDISH)
def test_text_without_digits_passes(text: str) -> None:
    assert not contains_identity_number(text)


@given(
    day=st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2099, 12, 31)),
    hour=st.integers(0, 23),
    minute=st.integers(0, 59),
)
def test_dates_and_times_as_the_service_writes_them_pass(
    day: dt.date, hour: int, minute: int
) -> None:
    for text in (
        day.isoformat(),
        f"{hour:02d}:{minute:02d}",
        f"{day.isoformat()}T{hour:02d}:{minute:02d}:00+01:00",
        f"{day.isoformat()} kl. {hour:02d}.{minute:02d}",
        f"Ärende {day.year}-{minute:04d}",
    ):
        assert not contains_identity_number(text), text


@given(digits=st.text(alphabet="0123456789", min_size=8, max_size=8), data=st.data())
@example(digits="70123456", data=None)
def test_phone_numbers_that_fail_the_check_digit_pass(
    digits: str, data: st.DataObject | None
) -> None:
    wrong = next(str(d) for d in range(10) if not luhn_ok("0" + digits + str(d)))
    number = "0" + digits + wrong  # a Swedish phone number: ten digits, a leading zero
    for text in (
        f"{number[:3]}-{number[3:6]} {number[6:8]} {number[8:]}",
        f"{number[:4]}-{number[4:]}",
        f"{number[:3]} {number[3:5]} {number[5:7]} {number[7:]}",
    ):  # ten bare digits are refused by shape alone, as they always were
        assert not contains_identity_number(text), text


@given(number=identity_numbers())
def test_a_wrong_check_digit_is_not_a_number_in_loose_shapes(number: str) -> None:
    ten = number[-10:]
    wrong = ten[:-1] + str((int(ten[-1]) + 1) % 10)
    assert is_identity_number(ten)
    assert not is_identity_number(wrong)
    assert not contains_identity_number(" . ".join(wrong[i : i + 2] for i in range(0, 10, 2)))
