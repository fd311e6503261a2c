"""Compose one outgoing message (MIME) for one recipient.

The design sends one message per recipient, so To holds exactly one address and there is no
Cc or Bcc: no one sees who else was invited. With a calendar invitation the layout is the one
Google Calendar uses, which Outlook, Gmail and Apple Mail all understand::

    multipart/mixed
        multipart/alternative
            text/plain; charset=utf-8
            text/html; charset=utf-8
            text/calendar; method=REQUEST; charset=UTF-8
        application/ics; name="inbjudan.ics"   (attachment, filename="inbjudan.ics")
        further attachments ...

Without an invitation it is multipart/alternative (plain, html), inside multipart/mixed only
when there are attachments. Every value that ends up in a header is checked for CR, LF and
other control characters first (header injection), and addresses are checked for syntax.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage
from email.utils import format_datetime
from functools import lru_cache

from email_validator import EmailNotValidError
from icalendar import Calendar

from core.addresses import ascii_email, has_control
from core.errors import HeaderInjectionError as HeaderInjectionError  # re-exported
from core.errors import PermanentDeliveryError
from scheduler import identity
from worker import mimepolicy
from worker.headers import set_recipient, set_text_header
from worker.prebuilt import (
    SharedBodyMessage,
    Skeleton,
    attachment_part,
    skeleton,
)
from worker.prebuilt import text_charset as text_charset  # re-exported

INVITE_FILENAME = "inbjudan.ics"

# Headers that compose_message sets itself or that would add recipients: never via `headers`.
_RESERVED_HEADERS = frozenset(
    {
        "from",
        "sender",
        "to",
        "cc",
        "bcc",
        "reply-to",
        "subject",
        "date",
        "message-id",
        "mime-version",
        "auto-submitted",
        "return-path",
        "received",
    }
)
_RESERVED_PREFIXES = ("content-", "resent-")
_HEADER_NAME = re.compile(r"[!-9;-~]+")  # RFC 5322 ftext: printable ASCII except ":"
_MESSAGE_ID = re.compile(r"<[!-;=?-~]+@[!-;=?-~]+>")  # printable ASCII, no "<", ">" inside
_DOMAIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")
_MIME_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*")
_ITIP_METHOD = re.compile(r"[A-Z][A-Z-]*")


@dataclass(frozen=True)
class Address:
    """A mailbox: display name (may be empty) and address."""

    name: str
    email: str


@dataclass(frozen=True)
class Attachment:
    """A file attached to the message."""

    filename: str
    content: bytes
    mime_type: str  # e.g. "application/pdf"
    # The content's SHA-256 (hex) when the caller has it (a material row's own); computed
    # otherwise. It keys the process's cache of encoded parts.
    sha256: str | None = None


def checked_message_id(idempotency_key: str, domain: str) -> str:
    """The Message-ID for a delivery: the same key always gives the same id.

    ``"<" + sha256(key).hexdigest()[:40] + "@" + domain + ">"``; a resent message keeps its id,
    so receiving systems can recognise the duplicate.
    """
    if not idempotency_key:
        raise ValueError("idempotency_key must not be empty")
    if has_control(domain):
        raise HeaderInjectionError("domain")
    if not _DOMAIN.fullmatch(domain):
        raise HeaderInjectionError("domain", f"is not an ASCII host name: {domain!r}")
    return identity.message_id_for(idempotency_key, domain)


def compose_message(
    *,
    sender: Address,
    to: Address,
    subject: str,
    text: str,
    html: str,
    message_id: str,
    date: datetime,
    reply_to: Address | None = None,
    invite: bytes | None = None,
    invite_method: str = "REQUEST",
    attachments: Sequence[Attachment] = (),
    headers: Mapping[str, str] | None = None,
) -> EmailMessage:
    """Build the message (policy ``email.policy.SMTP``: CRLF line ends, RFC 2047 headers; with
    the header values shared between messages, worker.mimepolicy).

    Raises HeaderInjectionError (naming the field) for a control character in a name,
    address, the subject, the Message-ID, an attachment's filename or type, or an extra
    header, and for an extra header that would override one set here or add recipients;
    PermanentDeliveryError for an address that is not syntactically valid; ValueError for a
    naive ``date`` or an ``invite_method`` that is not the invite's METHOD.
    """
    message = SharedBodyMessage(policy=mimepolicy.SMTP)
    # The same sender on every message: given as text, its parse is shared (mimepolicy).
    message["From"] = _mailbox_text("sender", sender)
    # Written here, not parsed and folded by the email package: its own for every recipient.
    set_recipient(message, "To", to.name, _checked_email("to", to))
    if reply_to is not None:
        message["Reply-To"] = _mailbox_text("reply_to", reply_to)
    set_text_header(message, "Subject", _header_value("subject", subject))
    message["Date"] = _date(date)
    # One line as checked (`_MESSAGE_ID`): written as it is, as the email package would.
    message.set_raw("Message-ID", _message_id(message_id))
    message["MIME-Version"] = "1.0"
    message["Auto-Submitted"] = "auto-generated"
    for name, value in _extra_headers(headers or {}):
        set_text_header(message, name, value)
    if invite is not None:  # the invitation names its one recipient: a body of its own
        _write_body(message, text, html, attachments, invite, invite_method)
        return message
    _skeleton(attachments).give(message, text, html)
    return message


def _write_body(
    message: EmailMessage,
    text: str,
    html: str,
    attachments: Sequence[Attachment],
    invite: bytes | None = None,
    invite_method: str = "REQUEST",
) -> None:
    """Give `message` its body: the text and HTML alternatives, the invitation, attachments."""
    message.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    message.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
    if invite is not None:
        method = _invite_method(invite, invite_method)
        message.add_alternative(
            invite,
            maintype="text",
            subtype="calendar",
            cte="base64",  # keeps the CRLF line ends and the folding exactly as written
            params={"method": method, "charset": "UTF-8"},
        )
        message.add_attachment(
            invite,
            maintype="application",
            subtype="ics",
            filename=INVITE_FILENAME,
            params={"name": INVITE_FILENAME},
        )
    for index, attachment in enumerate(attachments):
        maintype, subtype = _attachment_type(index, attachment)
        # What add_attachment does, with a part encoded once per process (worker.prebuilt).
        if (
            message.get_content_maintype() != "multipart"
            or message.get_content_subtype() != "mixed"
        ):
            message.make_mixed()
        message.attach(
            attachment_part(
                attachment.content, _digest(attachment), attachment.filename, maintype, subtype
            )
        )
    for part in message.walk():
        if part is not message:
            del part["MIME-Version"]  # the email package repeats it on parts it creates
        if part.is_multipart():
            part.set_boundary(_boundary())


def _skeleton(attachments: Sequence[Attachment]) -> Skeleton:
    """The skeleton of a body with these attachments (worker.prebuilt), built once per process."""
    kinds = [_attachment_type(index, attachment) for index, attachment in enumerate(attachments)]
    key = tuple((_digest(a), a.filename, *kind) for a, kind in zip(attachments, kinds, strict=True))
    return skeleton(key, lambda template, text: _write_body(template, text, text, attachments))


def _digest(attachment: Attachment) -> str:
    return attachment.sha256 or hashlib.sha256(attachment.content).hexdigest()


def _boundary() -> str:
    """A boundary for each multipart of a message, so the writer need not pick one.

    Left to itself, the email package picks a random boundary, compiles a regular expression
    for it (a new pattern each time, so never from re's cache) and searches the whole written
    body (a 200 kB attachment's base64 included) to make sure it does not occur there, for
    each multipart of each message. This one cannot occur in any part, so there is nothing to
    search: it begins with "=_", which quoted-printable (the text parts: "=" is always
    followed by two hex digits or a line end) and base64 (the invitation and every
    attachment: no "_", "=" only as padding at the end) never write.
    """
    return "=_" + secrets.token_hex(16)


# --- checks -----------------------------------------------------------------------------------


def _header_value(field: str, value: str) -> str:
    if has_control(value):
        raise HeaderInjectionError(field)
    return value


@lru_cache(maxsize=256)
def _mailbox_text(field: str, address: Address) -> str:
    """The sender (or Reply-To) as header text, checked: the same on every message, so made
    once per process (a refusal raises and is not kept)."""
    checked = _checked_email(field, address)
    return str(HeaderAddress(display_name=address.name.strip(), addr_spec=checked))


def _checked_email(field: str, address: Address) -> str:
    """The address in its ASCII form, its name and address checked for control characters."""
    _header_value(f"{field}.name", address.name)
    _header_value(f"{field}.email", address.email)
    try:
        return ascii_email(address.email)
    except EmailNotValidError as error:
        raise PermanentDeliveryError(
            f"{field}.email is not a valid e-mail address ({address.email!r}): {error}"
        ) from None


def _date(date: datetime) -> str:
    if date.tzinfo is None or date.utcoffset() is None:
        raise ValueError(f"date must be timezone-aware, got the naive {date.isoformat()}")
    return format_datetime(date)


def _message_id(message_id: str) -> str:
    _header_value("message_id", message_id)
    if not _MESSAGE_ID.fullmatch(message_id):
        raise HeaderInjectionError("message_id", f"must look like <left@right>: {message_id!r}")
    return message_id


def _extra_headers(headers: Mapping[str, str]) -> list[tuple[str, str]]:
    checked = []
    for name, value in headers.items():
        field = f"headers[{name!r}]"
        if not _HEADER_NAME.fullmatch(name):
            raise HeaderInjectionError(field, "is not a valid header name")
        lowered = name.lower()
        if lowered in _RESERVED_HEADERS or lowered.startswith(_RESERVED_PREFIXES):
            raise HeaderInjectionError(field, "is set by compose_message and cannot be given")
        checked.append((name, _header_value(field, value)))
    return checked


def _invite_method(invite: bytes, invite_method: str) -> str:
    """The iTIP method for the text/calendar part: must be the invite's own METHOD."""
    if not _ITIP_METHOD.fullmatch(invite_method):
        raise HeaderInjectionError("invite_method", f"is not an iTIP method: {invite_method!r}")
    written = Calendar.from_ical(invite).get("METHOD")
    if written is None or str(written) != invite_method:
        raise ValueError(
            f"invite_method {invite_method!r} differs from the invite's METHOD "
            f"{None if written is None else str(written)!r}"
        )
    return invite_method


def _attachment_type(index: int, attachment: Attachment) -> tuple[str, str]:
    field = f"attachments[{index}]"
    _header_value(f"{field}.filename", attachment.filename)
    if not attachment.filename.strip():
        raise HeaderInjectionError(f"{field}.filename", "must not be empty")
    _header_value(f"{field}.mime_type", attachment.mime_type)
    if not _MIME_TYPE.fullmatch(attachment.mime_type):
        raise HeaderInjectionError(f"{field}.mime_type", "must look like type/subtype")
    maintype, subtype = attachment.mime_type.lower().split("/")
    if maintype in ("multipart", "message"):
        raise HeaderInjectionError(f"{field}.mime_type", f"cannot be {maintype}/*")
    return maintype, subtype
