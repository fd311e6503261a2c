"""Checks of what a person typed: addresses, places, free text, days. Errors name the option and
the rule, never the value typed."""

from __future__ import annotations

import datetime as dt

from email_validator import EmailNotValidError, validate_email

import models
from core.dates import DAY_RULE, parse_day
from core.errors import CaseInputError
from scheduler.municipality import MunicipalitySettings
from scheduler.places import unknown_place
from scheduler.privacy import refuse_identity_number

MAX_TEXT = 4000


def free_text(text: str, what: str) -> str:
    """Staff-only free text: kept as typed (it never leaves), within a sane length."""
    text = text.strip()
    if not text:
        raise CaseInputError(f"{what} must not be empty")
    if len(text) > MAX_TEXT:
        raise CaseInputError(f"{what} is longer than {MAX_TEXT} characters")
    return text


def check_place(municipality: models.Municipality, key: str | None) -> str | None:
    """A meeting's place is chosen by key from the profile: nothing typed reaches an invite."""
    if unknown_place(MunicipalitySettings.of(municipality).places, key):
        raise CaseInputError(
            "--place: no place with that key; a meeting's place is one of the keys under "
            "'places' in the profile (free text is not accepted)"
        )
    return key


def check_address(email: str, what: str) -> str:
    refuse_identity_number(email, what)
    try:
        valid = validate_email(email, check_deliverability=False)
    except EmailNotValidError:
        raise CaseInputError(
            f"{what} is not a usable e-mail address (one bare address, like namn@example.se)"
        ) from None
    return str(valid.normalized)


def day(text: str, what: str) -> dt.date:
    found = parse_day(text)  # within the planned years: deadlines are counted from it
    if found is None:
        raise CaseInputError(f"{what}: give {DAY_RULE}")
    return found


def parse_days(values: list[str], what: str) -> list[dt.date]:
    return [day(v, what) for v in values]
