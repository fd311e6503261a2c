"""The guard against personal identity numbers in anything that leaves the service.

It is the second line. The first is by construction: free text typed about a case never
reaches a message (a meeting's place is chosen by key from the profile, notes and consent
stay inside). The guard watches what must stay text: names, addresses, the profile's prose,
and every string of a message's context.

A Swedish personal identity number (personnummer) or coordination number (samordningsnummer,
day + 60) is YYMMDD followed by three digits and a Luhn check digit, written in many shapes:
YYMMDD-XXXX, YYYYMMDDXXXX, "12 03 15-1234", "120315_1234", with a zero-width space inside,
in fullwidth digits, or inside an address (`vh.20120315.1234@…`). Two checks, both applied to
the normalised text (NFKC, so fullwidth digits become ASCII; invisible format characters,
Unicode category Cf, removed):

* by shape, as the service always did: six or eight digits, at most one separator, four
  digits, no digit right before or after. It refuses a little too much (a twelve-digit order
  number) rather than let a real number through;
* by validity, for every other shape: digits separated only by non-alphanumeric characters
  (spaces, dashes, dots, underscores, slashes, …) are read as one run, and any ten consecutive
  digits of that run that form a real date (YYMMDD, or day + 60) with a correct Luhn digit are
  refused. A twelve-digit form always holds its ten-digit form, so that covers it too.
  Requiring validity here keeps ordinary text with numbers (phone numbers, dates, times)
  passing nine times in ten or better, instead of refusing every ten digits.
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from core.errors import ConfidentialityError

# Separators for the shape check: hyphen, plus, space, and the dashes a word processor types.
_SEPARATOR = "[-+\u2010\u2011\u2012\u2013\u2014\u2212 ]"
_IDENTITY_SHAPE = re.compile(rf"(?<!\d)(?:\d{{8}}|\d{{6}}){_SEPARATOR}?\d{{4}}(?!\d)")
# A run of digits joined by anything that is neither a letter nor a digit (after NFKC).
_DIGIT_GROUP = re.compile(r"\d(?:[\W_]*\d)*")
_NOT_DIGIT = re.compile(r"\D")


def normalise(text: str) -> str:
    """NFKC, without invisible format characters (zero-width space, joiners, soft hyphen)."""
    folded = unicodedata.normalize("NFKC", text)
    return "".join(c for c in folded if unicodedata.category(c) != "Cf")


def luhn_ok(digits: str) -> bool:
    """True when the last digit is the Luhn check digit of the others (weights 2, 1, 2, …)."""
    total = 0
    for index, char in enumerate(digits[:-1]):
        product = int(char) * (2 if index % 2 == 0 else 1)
        total += product - 9 if product > 9 else product
    return (10 - total % 10) % 10 == int(digits[-1])


def _real_date(yy: int, month: int, day: int) -> bool:
    if not 1 <= month <= 12 or day < 1:
        return False
    # The century is not written: accept 29 February when any century makes it a leap year.
    leap = calendar.isleap(2000 + yy)
    longest = calendar.monthrange(2000 if leap else 2001, month)[1]
    return day <= longest


def is_identity_number(ten: str) -> bool:
    """True when `ten` (ten ASCII digits) is a valid personal identity or coordination number."""
    yy, month, day = int(ten[0:2]), int(ten[2:4]), int(ten[4:6])
    if day > 60:  # a coordination number: the day plus 60
        day -= 60
    return _real_date(yy, month, day) and luhn_ok(ten)


def _windows(text: str) -> Iterator[str]:
    for group in _DIGIT_GROUP.finditer(text):
        digits = _NOT_DIGIT.sub("", group.group())
        for start in range(len(digits) - 9):
            yield digits[start : start + 10]


def contains_identity_number(text: str) -> bool:
    """True when `text` holds a personal identity number in any shape people write one."""
    clean = normalise(text)
    if _IDENTITY_SHAPE.search(clean) is not None:
        return True
    # NFKC turns every decimal digit into ASCII only for some scripts; \d matches the rest,
    # and int() reads them, so compare on ASCII.
    return any(is_identity_number(_ascii(ten)) for ten in _windows(clean))


def _ascii(digits: str) -> str:
    return "".join(str(unicodedata.digit(c)) for c in digits)


def refuse_identity_number(text: str, field: str) -> str:
    """Return `text`, or raise ConfidentialityError naming `field` (never the value)."""
    if contains_identity_number(text):
        raise ConfidentialityError(
            f"{field} looks like it holds a personal identity number; it would be sent by "
            "e-mail, so it is refused: nothing about a child may be written there"
        )
    return text


def refuse_in_context(context: Any, path: str = "context") -> None:
    """Check every string in a message context (nested dicts and lists), keys included."""
    if isinstance(context, str):
        refuse_identity_number(context, path)
    elif isinstance(context, Mapping):
        for key, value in context.items():
            refuse_identity_number(str(key), path)
            refuse_in_context(value, f"{path}.{key}")
    elif isinstance(context, Sequence) and not isinstance(context, bytes | bytearray):
        for index, value in enumerate(context):
            refuse_in_context(value, f"{path}[{index}]")
