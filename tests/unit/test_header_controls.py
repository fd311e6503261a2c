"""`core.addresses.has_control`, the header-injection check of messages and invitations, finds
exactly Unicode's control characters and line and paragraph separators (general categories
Cc, Zl and Zp), checked for every code point against the running Python's unicodedata."""

from __future__ import annotations

import sys
import unicodedata

from core.addresses import has_control

UNSAFE = ("Cc", "Zl", "Zp")


def test_every_code_point_is_judged_as_its_unicode_category_says() -> None:
    wrong = [
        f"U+{code:04X}"
        for code in range(sys.maxunicode + 1)
        if has_control(chr(code)) != (unicodedata.category(chr(code)) in UNSAFE)
    ]
    assert wrong == []


def test_a_control_character_anywhere_in_a_value_is_found() -> None:
    for value in ("Ärende\r\nBcc: x@y.se", "\x00", "slut\n", "\u2028mitt", "a\x85b", "\tb"):
        assert has_control(value), repr(value)
    for value in ("", "Samverkansmöte april", "Åsa Öberg <asa@skola.se>", "a\u00a0b"):
        assert not has_control(value), repr(value)
