"""The recipient's To header and the Message-ID are written by worker.headers (set_recipient)
and compose_message, not parsed and folded by the email package for every message. Whatever
the name and address, the written header must read back as exactly that one mailbox: by the
email package's parser, by its older decoder (email.header), and by the mailer that takes the
envelope's recipient from it. Every line stays within 78 characters and ASCII; where the email
package would write a plain one-line header, the bytes are the same as its."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import datetime
from email.header import decode_header, make_header
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage
from email.utils import getaddresses
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from core.errors import PermanentDeliveryError
from worker import mimepolicy
from worker.compose import Address, compose_message
from worker.headers import MAX_LINE
from worker.mailers import envelope_recipient, wire_bytes

STOCKHOLM = ZoneInfo("Europe/Stockholm")
SENDER = Address("Samverkan Exempelby", "samverkan@kommun.example.se")
MESSAGE_ID = "<0123456789abcdef0123456789abcdef01234567@samverkan.kommun.example.se>"

# Names as people write them, and what a header could mistake for its own syntax: quotes,
# backslashes, commas, angle brackets, "=?" (an encoded word's start), runs of spaces.
NAME_CHARS = st.characters(
    blacklist_categories=("Cc", "Cs", "Zl", "Zp"),  # control characters are refused earlier
)
NAMES = st.one_of(
    st.text(NAME_CHARS, max_size=120),
    st.text(st.sampled_from("AaÅåÖöÄé -'.,\"\\<>@=?_()"), max_size=40),
    st.lists(
        st.sampled_from(["Anna", "Åsa", "Öberg-Lindqvist", "von", "Li,", "Wei"]), max_size=12
    ).map(" ".join),
)
LOCAL = st.from_regex(r"[a-z0-9][a-z0-9._+-]{0,40}[a-z0-9]", fullmatch=True).filter(
    lambda local: ".." not in local
)
DOMAINS = st.sampled_from(
    ["skola.example.se", "a.se", "forvaltning.kommun-med-langt-namn.example.se"]
)


def compose(name: str, address: str) -> EmailMessage:
    return compose_message(
        sender=SENDER,
        to=Address(name, address),
        subject="Påminnelse",
        text="Hej!\n",
        html="<p>Hej!</p>\n",
        message_id=MESSAGE_ID,
        date=datetime(2027, 8, 16, 7, 0, tzinfo=STOCKHOLM),
    )


def spaces(text: str) -> str:
    return re.sub(" +", " ", text)


def header_lines(written: bytes, field: str) -> list[bytes]:
    """The lines of header `field` as written: its first line and its folded continuations."""
    head = written.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    start = next(i for i, line in enumerate(head) if line.lower().startswith(field.lower() + b":"))
    lines = [head[start]]
    for line in head[start + 1 :]:
        if not line.startswith((b" ", b"\t")):
            break
        lines.append(line)
    return lines


def email_package_header(field: str, value: object) -> bytes:
    """What the email package itself writes for `field: value` (email.policy.SMTP)."""
    message = EmailMessage(policy=email.policy.SMTP)
    message[field] = value
    return message.as_bytes().split(b"\r\n\r\n", 1)[0] + b"\r\n"


@settings(max_examples=500, deadline=None)
@given(name=NAMES, local=LOCAL, domain=DOMAINS)
@example(name="Karl-Johan Ärlemalm Sjöström von Döbeln Nilsson", local="k", domain="a.se")
@example(name='Berg, Anna "Nisse"', local="anna", domain="a.se")
@example(name="=?utf-8?q?Eva?=", local="eva", domain="a.se")
@example(name="Per  Svensson ", local="per", domain="a.se")
@example(name="A" * 70, local="a" * 42, domain="forvaltning.kommun-med-langt-namn.example.se")
@example(
    name="Åsa Öberg-Lindqvist",
    local="a" * 42,
    domain="forvaltning.kommun-med-langt-namn.example.se",
)
@example(name="", local="rektor", domain="a.se")
def test_any_name_and_address_read_back_as_given(name: str, local: str, domain: str) -> None:
    address = f"{local}@{domain}"
    written = wire_bytes(compose(name, address), mimepolicy.SMTP)
    lines = header_lines(written, b"To")
    parsed = email.message_from_bytes(written, policy=email.policy.default)
    # The mailer takes the envelope's recipient from the message as built and as received.
    assert envelope_recipient(compose(name, address)) == address
    assert envelope_recipient(parsed) == address
    theirs = email_package_header("To", HeaderAddress(display_name=name.strip(), addr_spec=address))
    if b"\r\n".join(lines) + b"\r\n" == theirs:
        return  # what the email package writes (a name too long for one encoded word), as before
    assert len(lines) <= 2 and all(len(line) <= MAX_LINE and line.isascii() for line in lines)
    (mailbox,) = parsed["To"].addresses
    # The email package's parser makes a run of spaces in an encoded word one space.
    assert (spaces(mailbox.display_name), mailbox.addr_spec) == (spaces(name.strip()), address)
    # The older decoder, which keeps every space: the address by getaddresses, the name by
    # decode_header.
    raw = b"".join(line.removeprefix(b"To:") for line in lines).decode("ascii").strip()
    ((raw_name, raw_address),) = getaddresses([raw])
    assert raw_address == address
    assert str(make_header(decode_header(raw_name))) == name.strip()


@settings(max_examples=300, deadline=None)
@given(
    name=st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60),
    local=LOCAL,
)
def test_a_printable_ascii_name_on_one_line_is_written_as_the_email_package_writes_it(
    name: str, local: str
) -> None:
    address = f"{local}@skola.example.se"
    ours = b"\r\n".join(header_lines(wire_bytes(compose(name, address), mimepolicy.SMTP), b"To"))
    theirs = email_package_header("To", HeaderAddress(display_name=name.strip(), addr_spec=address))
    if "=?" in name or len(theirs) > MAX_LINE + 2 or theirs.count(b"\r\n") > 1:
        return  # encoded or folded: read back as given (the test above), not the same bytes
    assert ours + b"\r\n" == theirs


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Anna Andersson", b"To: Anna Andersson <anna@a.se>"),
        ("  Anna Andersson ", b"To: Anna Andersson <anna@a.se>"),
        ('Berg, Anna "Nisse"', b'To: "Berg, Anna \\"Nisse\\"" <anna@a.se>'),
        ("", b"To: anna@a.se"),
        ("Åsa Öberg", b"To: =?utf-8?q?=C3=85sa_=C3=96berg?= <anna@a.se>"),
        ("=?utf-8?q?Eva?=", b"To: =?utf-8?q?=3D=3Futf-8=3Fq=3FEva=3F=3D?= <anna@a.se>"),
    ],
)
def test_the_three_forms_of_a_display_name(name: str, expected: bytes) -> None:
    written = wire_bytes(compose(name, "anna@a.se"), mimepolicy.SMTP)

    assert header_lines(written, b"To") == [expected]


@pytest.mark.parametrize("width", [77, 78, 79])
def test_a_name_and_address_share_a_line_only_within_78_characters(width: int) -> None:
    address = "anna@a.se"
    name = "A" * (width - len("To: ") - len(f" <{address}>"))
    lines = header_lines(wire_bytes(compose(name, address), mimepolicy.SMTP), b"To")

    if width <= MAX_LINE:
        assert lines == [f"To: {name} <{address}>".encode("ascii")]
    else:
        assert lines == [f"To: {name}".encode("ascii"), f" <{address}>".encode("ascii")]


@pytest.mark.parametrize("width", [78, 79])
def test_an_encoded_name_gets_a_line_of_its_own_only_within_78_characters(width: int) -> None:
    # "Å" is six characters encoded (=C3=85); "To: =?utf-8?q?" and "?=" take 16.
    name = "Å" * ((width - 16) // 6) + "a" * ((width - 16) % 6)
    address = "anna@a.se"
    written = wire_bytes(compose(name, address), mimepolicy.SMTP)
    lines = header_lines(written, b"To")

    if width <= MAX_LINE:
        assert len(lines[0]) == width and lines[1:] == [f" <{address}>".encode("ascii")]
    else:  # longer than one encoded word on its line: the email package folds it, as before
        theirs = email_package_header("To", HeaderAddress(display_name=name, addr_spec=address))
        assert b"\r\n".join(lines) + b"\r\n" == theirs


def test_a_long_name_is_folded_into_encoded_words_and_the_address_follows() -> None:
    name = "Karl-Johan Ärlemalm Sjöström von Döbeln Nilsson Ärlemalm Sjöström von Döbeln"
    address = "karl-johan.arlemalm.sjostrom@forvaltning.kommun-med-langt-namn.example.se"

    lines = header_lines(wire_bytes(compose(name, address), mimepolicy.SMTP), b"To")

    assert len(lines) > 2
    assert lines[-1] == f" <{address}>".encode("ascii")  # too long to share the last line
    assert all(len(line) <= MAX_LINE for line in lines)


def test_the_message_id_is_written_as_the_email_package_writes_it() -> None:
    written = wire_bytes(compose("Anna", "anna@a.se"), mimepolicy.SMTP)

    ours = b"\r\n".join(header_lines(written, b"Message-ID")) + b"\r\n"
    assert ours == email_package_header("Message-ID", MESSAGE_ID)


@pytest.mark.parametrize(
    ("to", "problem"),
    [
        ("Anna Berg <anna@a.se>, Eva Ek <eva@a.se>", "exactly one address, not 2"),
        ("", "exactly one address, not 0"),
        ("Anna Berg <anna berg@a.se>", "no valid address"),
    ],
)
def test_a_to_header_without_exactly_one_valid_address_is_refused_without_its_value(
    to: str, problem: str
) -> None:
    message = EmailMessage(policy=mimepolicy.SMTP)
    message["From"] = "samverkan@kommun.example.se"
    message["To"] = to

    with pytest.raises(PermanentDeliveryError) as refused:
        envelope_recipient(message)

    assert problem in str(refused.value)
    assert "Anna" not in str(refused.value) and "a.se" not in str(refused.value)
