"""worker.compose: each test composes a message, writes it out and parses the bytes back."""

from __future__ import annotations

import email
import email.policy
import hashlib
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from icalendar import Calendar

from core.errors import PermanentDeliveryError, SamverkanError
from worker.compose import (
    Address,
    Attachment,
    HeaderInjectionError,
    compose_message,
)
from worker.compose import (
    checked_message_id as message_id_for,
)
from worker.invite import Party, build_invite

STOCKHOLM = ZoneInfo("Europe/Stockholm")
SENDER = Address("Åsa Öberg", "asa.oberg@kommun.example.se")
TO = Address("Anna Berg", "anna.berg@skola.kommun.example.se")
MESSAGE_ID = "<0123456789abcdef@samverkan.kommun.example.se>"
PDF = Attachment("Rutin för samverkan.pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", "application/pdf")


def make_invite(method: str = "REQUEST", status: str = "CONFIRMED") -> bytes:
    start = datetime(2027, 4, 14, 13, 0, tzinfo=STOCKHOLM)
    return build_invite(
        uid="samverkan-1@kommun.example.se",
        sequence=0,
        dtstamp=datetime(2027, 3, 1, 9, 0, tzinfo=STOCKHOLM),
        start=start,
        end=start + timedelta(hours=1),
        summary="Samverkansmöte",
        description="Dagordning:\n1. Öppnande",
        location="Stadshuset",
        organizer=Party(SENDER.name, SENDER.email),
        attendees=[Party(TO.name, TO.email)],
        method=method,
        status=status,
    )


def compose(**overrides: Any) -> EmailMessage:
    arguments: dict[str, Any] = {
        "sender": SENDER,
        "to": TO,
        "subject": "Påminnelse: samverkansmöte 14 april",
        "text": "Hej!\nVälkommen till mötet.",
        "html": "<p>Hej!</p><p>Välkommen till mötet.</p>",
        "message_id": MESSAGE_ID,
        "date": datetime(2027, 3, 1, 9, 0, tzinfo=STOCKHOLM),
    }
    arguments.update(overrides)
    return compose_message(**arguments)


def wire(message: EmailMessage) -> bytes:
    return message.as_bytes()


def reparse(message: EmailMessage) -> EmailMessage:
    parsed = email.message_from_bytes(wire(message), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def content_types(message: EmailMessage) -> list[str]:
    return [part.get_content_type() for part in message.walk()]


def headers_of(data: bytes) -> bytes:
    return data.split(b"\r\n\r\n", 1)[0]


# --- Message-ID -------------------------------------------------------------------------------


def test_message_id_is_deterministic() -> None:
    first = message_id_for("occurrence-17/anna.berg", "samverkan.kommun.example.se")
    assert first == message_id_for("occurrence-17/anna.berg", "samverkan.kommun.example.se")
    digest = hashlib.sha256(b"occurrence-17/anna.berg").hexdigest()[:40]
    assert first == f"<{digest}@samverkan.kommun.example.se>"
    assert first != message_id_for("occurrence-17/nils", "samverkan.kommun.example.se")


@pytest.mark.parametrize("domain", ["", "kommun.se\r\nBcc: x@evil.example.com", "a b.se", "<x>"])
def test_message_id_for_refuses_a_bad_domain(domain: str) -> None:
    with pytest.raises(HeaderInjectionError) as caught:
        message_id_for("key", domain)
    assert caught.value.field == "domain"


def test_message_id_header_is_exactly_as_given() -> None:
    message_id = message_id_for("key-1", "samverkan.kommun.example.se")
    message = compose(message_id=message_id)
    assert message["Message-ID"] == message_id
    # On the wire a long id may be folded onto a continuation line (RFC 5322 CFWS).
    assert reparse(message)["Message-ID"].strip() == message_id


@pytest.mark.parametrize("message_id", ["no-brackets@x.se", "<no-at-sign>", "<a b@x.se>", "<a@b>>"])
def test_malformed_message_id_refused(message_id: str) -> None:
    with pytest.raises(HeaderInjectionError, match="message_id: must look like"):
        compose(message_id=message_id)


# --- headers ----------------------------------------------------------------------------------


def test_swedish_name_encoded() -> None:
    message = compose()
    data = wire(message)
    head = headers_of(data)
    head.decode("ascii")  # RFC 2047: nothing but ASCII on the wire
    assert b"=?utf-8?" in head
    parsed = reparse(message)
    (sender,) = parsed["From"].addresses
    assert sender.display_name == "Åsa Öberg"
    assert sender.addr_spec == "asa.oberg@kommun.example.se"


def test_swedish_subject_round_trips() -> None:
    # Python 3.11's own folder would drop the space in "Ärenden; Östra" here.
    subject = "Påminnelse: samverkansmöte om Ärenden; Östra skolan, " * 3
    message = compose(subject=subject)
    assert message["Subject"] == subject
    assert reparse(message)["Subject"] == subject


SUBJECT_TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from(' åäöÅÄÖ;,:=?_"\\'),
        st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp")),
    ),
    max_size=80,
)


@settings(max_examples=200, deadline=None)
@given(
    subject=st.builds(
        lambda head, special, tail: head + special + tail,
        SUBJECT_TEXT,
        st.sampled_from(["ö", "Å", "€", "😀", "=?"]),
        SUBJECT_TEXT,
    )
)
def test_any_non_ascii_subject_round_trips_within_78_octets(subject: str) -> None:
    message = compose(subject=subject)
    for policy in (email.policy.SMTP, email.policy.SMTPUTF8):
        data = message.as_bytes(policy=policy)
        assert max(len(line) for line in headers_of(data).split(b"\r\n")) <= 78
        parsed = email.message_from_bytes(data, policy=email.policy.default)
        assert parsed["Subject"] == subject


def test_subject_that_looks_like_an_encoded_word_is_kept_literally() -> None:
    subject = "=?utf-8?q?=0D=0ABcc:_x@evil.example.com?="
    parsed = reparse(compose(subject=subject))
    assert parsed["Subject"] == subject


def test_non_ascii_extra_header_round_trips() -> None:
    value = "Barn- och utbildningsförvaltningen i Östra Göinge kommun, Skåne län"
    message = compose(headers={"X-Samverkan-Forvaltning-Med-Ett-Mycket-Langt-Namn": value})
    parsed = reparse(message)
    assert parsed["X-Samverkan-Forvaltning-Med-Ett-Mycket-Langt-Namn"].strip() == value


def test_name_with_comma_and_quotes_is_one_mailbox() -> None:
    parsed = reparse(compose(to=Address('Berg, Anna "Nisse"', TO.email)))
    (to,) = parsed["To"].addresses
    assert to.display_name == 'Berg, Anna "Nisse"'
    assert to.addr_spec == TO.email


def test_date_header_from_date() -> None:
    parsed = reparse(compose(date=datetime(2027, 4, 1, 8, 30, tzinfo=STOCKHOLM)))
    assert parsed["Date"] == "Thu, 01 Apr 2027 08:30:00 +0200"
    assert parsed["Date"].datetime == datetime(2027, 4, 1, 8, 30, tzinfo=STOCKHOLM)


def test_naive_date_refused() -> None:
    with pytest.raises(ValueError, match="date must be timezone-aware"):
        compose(date=datetime(2027, 4, 1, 8, 30))


def test_auto_submitted_and_mime_version() -> None:
    parsed = reparse(compose())
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["MIME-Version"] == "1.0"
    assert all(part["MIME-Version"] is None for part in list(parsed.walk())[1:])


def test_reply_to() -> None:
    parsed = reparse(compose(reply_to=Address("Elevhälsan", "elevhalsan@kommun.example.se")))
    (reply_to,) = parsed["Reply-To"].addresses
    assert (reply_to.display_name, reply_to.addr_spec) == (
        "Elevhälsan",
        "elevhalsan@kommun.example.se",
    )


def test_one_recipient_in_to_and_no_cc_or_bcc() -> None:
    parsed = reparse(compose(invite=make_invite(), attachments=[PDF]))
    assert [address.addr_spec for address in parsed["To"].addresses] == [TO.email]
    assert parsed.get_all("To") is not None and len(parsed.get_all("To") or []) == 1
    assert parsed["Cc"] is None
    assert parsed["Bcc"] is None


def test_extra_header_added() -> None:
    parsed = reparse(compose(headers={"X-Samverkan-Occurrence": "17", "X-Kommun": "Växjö"}))
    assert parsed["X-Samverkan-Occurrence"] == "17"
    assert parsed["X-Kommun"] == "Växjö"


@pytest.mark.parametrize(
    "name", ["Bcc", "cc", "To", "From", "Subject", "Content-Type", "Resent-To"]
)
def test_extra_header_cannot_override_or_add_recipients(name: str) -> None:
    with pytest.raises(HeaderInjectionError, match="is set by compose_message") as caught:
        compose(headers={name: "x@evil.example.com"})
    assert caught.value.field == f"headers[{name!r}]"


@pytest.mark.parametrize("name", ["X-Bad:Name", "X Bad", "X-Bad\r\nBcc", "X-Å"])
def test_malformed_extra_header_name_refused(name: str) -> None:
    with pytest.raises(HeaderInjectionError, match="is not a valid header name"):
        compose(headers={name: "1"})


FIELDS = [
    "subject",
    "sender.name",
    "sender.email",
    "to.name",
    "to.email",
    "reply_to.name",
    "reply_to.email",
    "headers",
]


def overrides_with(field: str, bad: str) -> tuple[dict[str, Any], str]:
    """Compose arguments that put ``bad`` into ``field``, and the field name the error gives."""
    injected = f"x{bad}Bcc: victim@evil.example.com"
    if field == "subject":
        return {"subject": injected}, "subject"
    if field == "headers":
        return {"headers": {"X-Samverkan": injected}}, "headers['X-Samverkan']"
    argument, part = field.split(".")
    base = {"sender": SENDER, "to": TO, "reply_to": SENDER}[argument]
    if part == "name":
        return {argument: Address(injected, base.email)}, field
    return {argument: Address(base.name, f"anna{bad}@kommun.example.se")}, field


@pytest.mark.parametrize("bad", ["\r\n", "\n", "\r", "\x00", "\t", "\x1b", "\u2028", "\x85"])
@pytest.mark.parametrize("field", FIELDS)
def test_crlf_in_subject_refused(field: str, bad: str) -> None:
    """CR, LF and every other control character are refused in every header field."""
    overrides, name = overrides_with(field, bad)
    with pytest.raises(HeaderInjectionError) as caught:
        compose(**overrides)
    assert caught.value.field == name
    assert str(caught.value).startswith(f"{name}: must not contain CR, LF")
    assert isinstance(caught.value, SamverkanError)


@pytest.mark.parametrize("field", ["sender", "to", "reply_to"])
@pytest.mark.parametrize(
    "address", ["anna", "anna@", "anna@skola", "a,b@kommun.example.se", "Åsa@kommun.example.se"]
)
def test_invalid_address_refused(field: str, address: str) -> None:
    with pytest.raises(PermanentDeliveryError, match=f"{field}.email is not a valid e-mail"):
        compose(**{field: Address("Anna", address)})


# --- structure --------------------------------------------------------------------------------


def test_message_without_invite_is_alternative_plain_and_html() -> None:
    parsed = reparse(compose())
    assert content_types(parsed) == ["multipart/alternative", "text/plain", "text/html"]
    plain, html = parsed.iter_parts()
    assert plain.get_content_charset() == "utf-8"
    assert html.get_content_charset() == "utf-8"
    # Written with CRLF line ends; the parser leaves them in the decoded text.
    assert plain.get_content().replace("\r\n", "\n") == "Hej!\nVälkommen till mötet.\n"
    assert html.get_content().rstrip() == "<p>Hej!</p><p>Välkommen till mötet.</p>"


def test_attachments_wrap_the_alternative_in_mixed() -> None:
    parsed = reparse(compose(attachments=[PDF]))
    assert content_types(parsed) == [
        "multipart/mixed",
        "multipart/alternative",
        "text/plain",
        "text/html",
        "application/pdf",
    ]
    (attachment,) = parsed.iter_attachments()
    assert attachment.get_filename() == "Rutin för samverkan.pdf"
    assert attachment.get_content() == PDF.content


@pytest.mark.parametrize(
    ("subtype", "text", "encoding", "charset"),
    [
        ("plain", "Kontakt: Åsa Öberg, IFO – 0123-45 67 00\n", "utf-8", "utf-8"),
        ("plain", "Kontakt: Åsa Öberg, IFO\n", "windows-1252", "windows-1252"),
        ("plain", "Contact: IFO\n", "ascii", "utf-8"),
        ("csv", "enhet;telefon\nSöder;0123\n", "utf-8", "utf-8"),
        ("html", "<p>Föräldrastöd</p>", "utf-8", "utf-8"),
    ],
)
def test_a_text_attachment_carries_its_charset(
    subtype: str, text: str, encoding: str, charset: str
) -> None:
    content = text.encode(encoding)
    attachment = Attachment(f"kontakt.{subtype}", content, f"text/{subtype}")
    parsed = reparse(compose(attachments=[attachment]))
    (found,) = parsed.iter_attachments()
    assert found.get_content_type() == f"text/{subtype}"
    assert found.get_content_charset() == charset
    # What a mail program shows: the bytes decoded with the stated charset are the text.
    assert found.get_payload(decode=True).decode(charset) == text


def test_a_binary_attachment_has_no_charset() -> None:
    parsed = reparse(compose(attachments=[PDF]))
    (found,) = parsed.iter_attachments()
    assert found.get_param("charset") is None


def test_invite_message_structure() -> None:
    invite = make_invite()
    parsed = reparse(compose(invite=invite, attachments=[PDF]))
    assert content_types(parsed) == [
        "multipart/mixed",
        "multipart/alternative",
        "text/plain",
        "text/html",
        "text/calendar",
        "application/ics",
        "application/pdf",
    ]
    alternative, ics, pdf = parsed.iter_parts()
    calendar_part = list(alternative.iter_parts())[2]
    assert calendar_part.get_param("method") == "REQUEST"
    assert calendar_part.get_content_charset() == "utf-8"
    assert calendar_part.get_content_disposition() is None  # inline, for the invite view
    assert calendar_part.get_payload(decode=True) == invite  # exact bytes, CRLF kept
    assert ics.get_content_disposition() == "attachment"
    assert ics.get_filename() == "inbjudan.ics"
    assert ics.get_param("name") == "inbjudan.ics"
    assert ics.get_payload(decode=True) == invite
    assert pdf.get_filename() == PDF.filename


def test_cancel_invite_sets_method_cancel_on_the_calendar_part() -> None:
    invite = make_invite(method="CANCEL", status="CANCELLED")
    parsed = reparse(compose(invite=invite, invite_method="CANCEL"))
    calendar_part = next(p for p in parsed.walk() if p.get_content_type() == "text/calendar")
    assert calendar_part.get_param("method") == "CANCEL"
    payload = calendar_part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    assert Calendar.from_ical(payload)["METHOD"] == "CANCEL"


def test_invite_method_must_match_the_invite() -> None:
    with pytest.raises(ValueError, match="differs from the invite's METHOD"):
        compose(invite=make_invite(), invite_method="CANCEL")


@pytest.mark.parametrize(
    ("attachment", "field"),
    [
        (Attachment("a\r\nb.pdf", b"x", "application/pdf"), "attachments[0].filename"),
        (Attachment("a.pdf", b"x", "application/pdf\r\nBcc: x"), "attachments[0].mime_type"),
        (Attachment("a.pdf", b"x", "pdf"), "attachments[0].mime_type"),
        (Attachment("a.pdf", b"x", "multipart/mixed"), "attachments[0].mime_type"),
        (Attachment(" ", b"x", "application/pdf"), "attachments[0].filename"),
    ],
)
def test_bad_attachment_refused(attachment: Attachment, field: str) -> None:
    with pytest.raises(HeaderInjectionError) as caught:
        compose(attachments=[attachment])
    assert caught.value.field == field


def test_serialised_message_uses_crlf_and_short_lines() -> None:
    data = wire(compose(invite=make_invite(), attachments=[PDF], subject="Möte " * 40))
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert b"\r" not in data.replace(b"\r\n", b"")
    assert max(len(line) for line in data.split(b"\r\n")) <= 78
    data.decode("ascii")  # 7-bit clean: quoted-printable and base64 bodies


def test_invite_message_has_crlf_line_ends_throughout() -> None:
    # RFC 5545 3.1 and RFC 5322 both want CRLF; the invite goes base64 so no relay can
    # rewrite its line ends or its folding.
    data = compose(invite=make_invite(), attachments=[PDF]).as_bytes()
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert b"\r" not in data.replace(b"\r\n", b"")
    calendar_part = next(
        part
        for part in reparse(compose(invite=make_invite())).walk()
        if part.get_content_type() == "text/calendar"
    )
    assert calendar_part["Content-Transfer-Encoding"] == "base64"
