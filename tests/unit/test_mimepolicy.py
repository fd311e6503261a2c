"""The shortcuts of the sending path write exactly what the email package and smtplib would:
the shared header parses and folds (worker/mimepolicy.py), the dot-stuffing of DATA
(worker/smtp_mailer.py `dot_stuffed`) and the boundary chosen for a message with attachments
(worker/compose.py)."""

from __future__ import annotations

import datetime as dt
import email
import email.headerregistry
import email.policy
import re
import smtplib
from collections.abc import Sequence
from email.message import EmailMessage

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from worker import mimepolicy
from worker.compose import Address, Attachment, compose_message
from worker.mailers import wire_bytes
from worker.smtp_mailer import dot_stuffed

NAMES = ("Subject", "From", "To", "Reply-To", "Date", "Message-ID", "Content-Type", "X-Rutin")
TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), max_size=120
) | st.sampled_from(
    [
        "Samverkan Östra <samverkan@ostra.se>",
        '"Rektor, Åsa" <asa@skola.se>',
        'text/plain; charset="utf-8"',
        "Mon, 07 Dec 2026 08:00:00 +0100",
        "Föräldrastöd inför läsårsstarten " * 4,
        "=?utf-8?q?redan_kodad?=",
    ]
)


def stock(policy: email.policy.EmailPolicy, name: str, value: str) -> bytes | str:
    try:
        parsed = email.policy.SMTP.header_store_parse(name, value)[1]
        return policy.fold_binary(name, parsed)
    except Exception as exc:  # the same failure is expected of both
        return type(exc).__name__


def shared(policy: email.policy.EmailPolicy, name: str, value: str) -> bytes | str:
    try:
        parsed = mimepolicy.SMTP.header_store_parse(name, value)[1]
        return policy.fold_binary(name, parsed)
    except Exception as exc:
        return type(exc).__name__


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(NAMES), value=TEXT, utf8=st.booleans())
def test_a_shared_header_is_written_as_the_email_package_writes_it(
    name: str, value: str, utf8: bool
) -> None:
    """Parsed and folded once or again (the second call is served from what the first kept),
    the header's bytes are those of email.policy.SMTP (or SMTPUTF8)."""
    ours = mimepolicy.SMTPUTF8 if utf8 else mimepolicy.SMTP
    theirs = email.policy.SMTPUTF8 if utf8 else email.policy.SMTP
    expected = stock(theirs, name, value)
    assert shared(ours, name, value) == expected
    assert shared(ours, name, value) == expected  # again: the kept parse and fold


def test_the_same_value_is_parsed_once_and_the_object_shared() -> None:
    first = mimepolicy.SMTP.header_store_parse("Subject", "Samverkansmöte april")[1]
    second = mimepolicy.SMTP.header_store_parse("Subject", "Samverkansmöte april")[1]
    other = mimepolicy.SMTP.header_store_parse("subject", "Samverkansmöte april")[1]
    assert first is second
    assert other is not first and other.name == "subject"


HEADER_NAMES = sorted(
    {*email.headerregistry._default_header_map, "X-Rutin", "Auto-Submitted", "content-TYPE"}
)


@pytest.mark.parametrize("name", HEADER_NAMES)
def test_a_header_class_is_made_once_per_name_and_is_the_email_package_kind(name: str) -> None:
    """The policy's registry makes each header class once (the email package's makes one per
    header parsed); the class has the bases the email package gives that name."""
    registry = mimepolicy.SMTP.header_factory
    stock = email.headerregistry.HeaderRegistry()[name]
    assert registry[name] is registry[name.upper()] is registry[name.lower()]
    assert registry[name].__bases__ == stock.__bases__
    value = "Åsa <asa@skola.se>" if stock.__bases__[0].__name__.endswith("AddressHeader") else "x"
    made = registry(name, value)
    assert type(made) is registry[name] and str(made) == str(stock(name, value))


LINES = st.lists(
    st.sampled_from([b".", b"..", b"\r\n", b"\n", b"\r", b"a", b".a", b"\r\n.", b" "]),
    max_size=40,
).map(b"".join)


@settings(max_examples=500, deadline=None)
@given(data=LINES | st.binary(max_size=200))
def test_dot_stuffing_is_what_smtplib_sends(data: bytes) -> None:
    quoted = smtplib._quote_periods(data)  # type: ignore[attr-defined]
    if quoted[-2:] != b"\r\n":
        quoted += b"\r\n"
    assert dot_stuffed(data) == quoted + b".\r\n"


SENDER = Address("Samverkan Östra", "samverkan@ostra.se")
NASTY = "--=_\n=_ --=_abc\n.\n..\nrad med = och _ och --\n"


def nasty_message(
    invite: bytes | None = None, attachments: Sequence[Attachment] = ()
) -> EmailMessage:
    """A message whose text and html hold what looks like boundaries and dot lines."""
    return compose_message(
        sender=SENDER,
        to=Address("Rektor Åsa", "asa@skola.se"),
        subject="Föräldrastöd",
        text=NASTY,
        html=f"<p>{NASTY}</p>",
        message_id="<a1@ostra.se>",
        date=dt.datetime(2027, 8, 19, 8, tzinfo=dt.UTC),
        invite=invite,
        attachments=attachments,
    )


@pytest.mark.parametrize("content", [b"%PDF-1.4\n--=_x\n" + bytes(range(256)) * 40, NASTY.encode()])
def test_a_message_with_attachments_reads_back_whole_with_its_chosen_boundary(
    content: bytes,
) -> None:
    """The boundary is chosen without searching the parts, and still never occurs in them:
    the written message reads back into the same text, html and attachment bytes."""
    message = nasty_message(
        attachments=[
            Attachment("stod.pdf", content, "application/pdf"),
            Attachment("lista.txt", NASTY.encode(), "text/plain"),
        ]
    )
    boundary = message.get_boundary()
    assert boundary is not None and boundary.startswith("=_")
    written = wire_bytes(message, mimepolicy.SMTP)
    # The boundary occurs only as boundary lines.
    lines = re.findall(rb"^.*" + re.escape(boundary.encode()) + rb".*$", written, re.M)
    assert all(
        line.rstrip(b"\r") in (b"--" + boundary.encode(), b"--" + boundary.encode() + b"--")
        or b"boundary=" in line
        for line in lines
    )
    back = email.message_from_bytes(written, policy=email.policy.default)
    body = back.get_body(("plain",))
    assert body is not None and body.get_content().replace("\r\n", "\n") == NASTY
    attached = [part.get_content() for part in back.iter_attachments()]
    assert attached[0] == content
    assert attached[1].replace("\r\n", "\n") == NASTY


INVITE = (
    b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//samverkan//test//SV\r\nMETHOD:REQUEST\r\n"
    b"BEGIN:VEVENT\r\nUID:a1@ostra.se\r\nDTSTAMP:20270801T080000Z\r\n"
    b"DTSTART:20270819T080000Z\r\nSUMMARY:--=_ mote\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


@pytest.mark.parametrize(
    ("invite", "attachments"),
    [
        (None, []),
        (INVITE, []),
        (None, [Attachment("lista.txt", NASTY.encode(), "text/plain")]),
        (INVITE, [Attachment("lista.txt", NASTY.encode(), "text/plain")]),
    ],
    ids=["alternative", "invite", "attachment", "invite-and-attachment"],
)
def test_every_multipart_gets_a_chosen_boundary_and_reads_back_whole(
    invite: bytes | None, attachments: list[Attachment]
) -> None:
    """Each layout compose_message makes (text and html; with an invitation; with files):
    every multipart has a boundary of its own beginning "=_", chosen without a search, and the
    written message reads back into the same text, html, invitation and files."""
    message = nasty_message(invite=invite, attachments=attachments)
    boundaries = [part.get_boundary() for part in message.walk() if part.is_multipart()]
    assert boundaries and all(b is not None and b.startswith("=_") for b in boundaries)
    assert len(set(boundaries)) == len(boundaries)
    written = wire_bytes(message, mimepolicy.SMTP)
    back = email.message_from_bytes(written, policy=email.policy.default)
    plain, html = back.get_body(("plain",)), back.get_body(("html",))
    assert plain is not None and plain.get_content().replace("\r\n", "\n") == NASTY
    assert html is not None and html.get_content().replace("\r\n", "\n") == f"<p>{NASTY}</p>\n"
    calendars = [p for p in back.walk() if p.get_content_type() == "text/calendar"]
    assert [p.get_payload(decode=True) for p in calendars] == ([invite] if invite else [])
    files = [p.get_content() for p in back.iter_attachments() if p.get_filename() == "lista.txt"]
    assert [f.replace("\r\n", "\n") for f in files] == [NASTY] * len(attachments)


def test_a_name_mapped_to_another_kind_gets_a_class_of_that_kind() -> None:
    registry = mimepolicy._SharedRegistry()
    assert registry["X-Kontakt"].__bases__[0] is email.headerregistry.UnstructuredHeader
    registry.map_to_type("x-kontakt", email.headerregistry.AddressHeader)
    assert registry["X-Kontakt"].__bases__[0] is email.headerregistry.AddressHeader
