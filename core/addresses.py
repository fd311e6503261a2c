"""What goes into a header or an invitation, checked: an e-mail address in its ASCII form (an
IDN domain as punycode), and a value free of control characters (header injection)."""

from __future__ import annotations

import re
from functools import lru_cache

from email_validator import validate_email


@lru_cache(maxsize=4096)
def ascii_email(email: str) -> str:
    """`email` checked (syntax only, no SMTPUTF8) in ASCII form; raises
    email_validator.EmailNotValidError. Kept per process: the sender is the same on every
    message of a mailout, and a checked address stays valid (a refusal is not kept)."""
    return str(validate_email(email, check_deliverability=False, allow_smtputf8=False).ascii_email)


# Unicode's control characters (general category Cc: U+0000-U+001F, U+007F-U+009F) and its
# line and paragraph separators (Zl: U+2028, Zp: U+2029); tests/unit/test_header_controls.py
# checks every code point against unicodedata.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def has_control(value: str) -> bool:
    """True if `value` holds a control character (CR, LF, TAB, NUL, ...) or a Unicode line or
    paragraph separator: anything that could end a header line or start a new one."""
    return _CONTROL.search(value) is not None
