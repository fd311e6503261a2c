"""Header values written here instead of by the email package: unstructured text (Subject,
extra headers) and the recipient's address (To).

Each value written here is stored already folded (`EmailMessage.set_raw`), in lines of at
most 78 characters, so email.policy.SMTP and SMTPUTF8 write it unchanged. Reading the header back
(`message["To"]`) parses it as the email package parses any header it receives.

- **Unstructured text.** CPython 3.11's folder (gh-144156) can put the space between two words
  *between* two encoded words, where RFC 2047 decoders drop it ("Ärenden; Östra" arrives as
  "Ärenden;Östra"). So a value that is not plain ASCII is encoded here.
- **To.** Every message of a mailout has its own recipient, so the email package parsed the
  address into a tree and folded that tree again for every message: about a tenth of a small
  reminder's CPU in a worker (docs/performance.md, phase 7). The display name is written as
  atoms when it is plain words, as a quoted string when it is other printable ASCII, and
  otherwise as one RFC 2047 encoded word, with the address on the same line or the next. A
  name or address too long for that still goes to the email package.
  tests/unit/test_address_headers.py checks that any name and address read back as given.
"""

from __future__ import annotations

import re
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage
from functools import lru_cache

__all__ = ["set_recipient", "set_text_header"]

MAX_LINE = 78  # RFC 5322 "SHOULD"; what email.policy.SMTP folds at
_EW_PREFIX, _EW_SUFFIX = "=?utf-8?q?", "?="
_EW_PAYLOAD = 75 - len(_EW_PREFIX) - len(_EW_SUFFIX)  # RFC 2047: an encoded word <= 75 chars
# RFC 2047 5(3): the characters a Q encoded word in a phrase may hold as they are.
_Q_LITERAL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")
# RFC 5322 atext, words separated by single spaces: a phrase written as it is.
_ATOMS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?: [A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_PRINTABLE = re.compile(r"[ -~]*")


def set_text_header(message: EmailMessage, name: str, value: str) -> None:
    """Set an unstructured header (Subject, extra headers) so that it survives being written.

    Plain ASCII values go through the email package as usual. Other values are RFC 2047 Q
    encoded words, every space inside a word, one word per line, each line within 78
    characters; reading the header back decodes it.
    """
    if value.isascii() and "=?" not in value:  # "=?" would be decoded as an encoded word
        message[name] = value
        return
    message.set_raw(name, _encoded_text(value, len(name) + len(": ")))


@lru_cache(maxsize=1024)
def _encoded_text(value: str, label: int) -> str:
    """The folded encoded words: a mailout's subject is the same on every message."""
    return "\r\n ".join(_encoded_words(value, label))


def set_recipient(message: EmailMessage, field: str, display_name: str, address: str) -> None:
    """Set the address header `field` (To) to one mailbox: `display_name` (stripped; may be
    empty) and `address`, which the caller has checked (ASCII, no control characters).

    Written here on one line, or two with the address on the second: the name as atoms, as
    a quoted string, or as one encoded word. A name or an address too long for that is left
    to the email package, as before."""
    value = _one_mailbox(display_name.strip(), address, len(field) + len(": "))
    if value is None:
        message[field] = HeaderAddress(display_name=display_name.strip(), addr_spec=address)
    else:
        message.set_raw(field, value)


def _one_mailbox(name: str, address: str, label: int) -> str | None:
    angle = f"<{address}>"
    if not name:
        return address if label + len(address) <= MAX_LINE else None
    if "=?" not in name and _PRINTABLE.fullmatch(name):  # "=?": see set_text_header
        phrase = name if _ATOMS.fullmatch(name) else _quoted(name)
    else:
        # One encoded word; on a line of its own after a label ("X: " at least), within 78
        # characters, it is within RFC 2047's 75.
        phrase = f"{_EW_PREFIX}{''.join(map(_q_char, name))}{_EW_SUFFIX}"
    if label + len(phrase) + len(" ") + len(angle) <= MAX_LINE:
        return f"{phrase} {angle}"
    if label + len(phrase) <= MAX_LINE and len(" ") + len(angle) <= MAX_LINE:
        return f"{phrase}\r\n {angle}"
    return None


def _quoted(name: str) -> str:
    """An RFC 5322 quoted-string: backslash and double quote escaped."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _encoded_words(value: str, label: int) -> list[str]:
    """`value` as Q encoded words, one a line: the first within 78 characters after a label
    of `label` characters ("Subject: "), the rest after the fold's space."""
    first_room = MAX_LINE - label - len(_EW_PREFIX) - len(_EW_SUFFIX)
    if first_room < len("=XX") * 4:  # not even one character fits after a long name
        chunks = ["", *_q_chunks(value, _EW_PAYLOAD, _EW_PAYLOAD)]
    else:
        chunks = _q_chunks(value, min(first_room, _EW_PAYLOAD), _EW_PAYLOAD)
    return [f"{_EW_PREFIX}{chunk}{_EW_SUFFIX}" if chunk else "" for chunk in chunks]


def _q_char(char: str) -> str:
    if char == " ":
        return "_"
    if char in _Q_LITERAL:
        return char
    return "".join(f"={byte:02X}" for byte in char.encode("utf-8"))


def _q_chunks(value: str, first_limit: int, limit: int) -> list[str]:
    """Q-encode ``value`` in chunks of at most ``first_limit``, then ``limit``, characters.

    A chunk ends after a space where possible (so a decoder that wrongly keeps the folding
    whitespace shows a double space rather than a space inside a word); a character's
    bytes are never split.
    """
    chunks: list[str] = []
    current: list[str] = []  # encoded characters of the chunk being filled
    after_space = 0  # len(current) just after its last space; 0: no space in current
    room = first_limit
    for char in value:
        piece = _q_char(char)
        while current and sum(map(len, current)) + len(piece) > room:
            cut = after_space or len(current)
            chunks.append("".join(current[:cut]))
            current, after_space, room = current[cut:], 0, limit
        current.append(piece)
        if char == " ":
            after_space = len(current)
    chunks.append("".join(current))
    return chunks
