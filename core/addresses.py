"""An e-mail address checked for sending: its ASCII form (an IDN domain as punycode)."""

from __future__ import annotations

from functools import lru_cache

from email_validator import validate_email


@lru_cache(maxsize=4096)
def ascii_email(email: str) -> str:
    """`email` checked (syntax only, no SMTPUTF8) in ASCII form; raises
    email_validator.EmailNotValidError. Kept per process: the sender is the same on every
    message of a mailout, and a checked address stays valid (a refusal is not kept)."""
    return str(validate_email(email, check_deliverability=False, allow_smtputf8=False).ascii_email)
