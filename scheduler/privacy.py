"""The one guard against personal identity numbers in anything that leaves the service.

A Swedish personal identity number (personnummer) or coordination number (samordningsnummer)
is written YYMMDD-XXXX, YYMMDD+XXXX (over 100), YYYYMMDDXXXX, with or without the separator.
The guard goes by shape, not by validity: ten or twelve digits grouped 6+4 or 8+4, with an
optional separator, and no digit right before or after. It refuses a little too much (a
twelve-digit order number) rather than let one real number through.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from samverkan.errors import ConfidentialityError

# Separators people type: hyphen, plus, space, and the dashes a word processor substitutes.
_SEPARATOR = "[-+\u2010\u2011\u2012\u2013\u2014\u2212 ]"
_IDENTITY_NUMBER = re.compile(rf"(?<!\d)(?:\d{{8}}|\d{{6}}){_SEPARATOR}?\d{{4}}(?!\d)")


def contains_identity_number(text: str) -> bool:
    """True when `text` holds something shaped like a personal identity number."""
    return _IDENTITY_NUMBER.search(text) is not None


def refuse_identity_number(text: str, field: str) -> str:
    """Return `text`, or raise ConfidentialityError naming `field` (never the value)."""
    if contains_identity_number(text):
        raise ConfidentialityError(
            f"{field} looks like it holds a personal identity number; it would be sent by "
            "e-mail, so it is refused: write a place, not who the meeting is about"
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
