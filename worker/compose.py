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

import copy
import hashlib
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email import quoprimime
from email.contentmanager import _encode_text  # type: ignore[attr-defined]
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage, MIMEPart
from email.policy import Policy
from email.utils import format_datetime
from functools import lru_cache
from typing import Generic, TypeVar

from email_validator import EmailNotValidError
from icalendar import Calendar

from core.addresses import ascii_email, has_control
from core.errors import HeaderInjectionError as HeaderInjectionError  # re-exported
from core.errors import PermanentDeliveryError
from scheduler import identity
from worker import mimepolicy
from worker.headers import set_recipient, set_text_header
from worker.mailers import wire_bytes

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
        # What add_attachment does, with a part encoded once per process (_attachment_part).
        if (
            message.get_content_maintype() != "multipart"
            or message.get_content_subtype() != "mixed"
        ):
            message.make_mixed()
        message.attach(_attachment_part(attachment, maintype, subtype))
    for part in message.walk():
        if part is not message:
            del part["MIME-Version"]  # the email package repeats it on parts it creates
        if part.is_multipart():
            part.set_boundary(_boundary())


# --- bodies without an invitation, built once -------------------------------------------------


class SharedBodyMessage(EmailMessage):
    """A message whose body was made from a skeleton (`_Skeleton`): ``wire_bytes`` then
    writes the body from the skeleton's bytes and the message's two encoded texts instead of
    writing every part again, as long as nothing of the body was changed since."""

    skeleton: _Skeleton | None = None

    def wire_body(self, policy: Policy) -> bytes | None:
        """The body's bytes as `policy` writes them, or None when they must be written afresh."""
        skeleton = self.skeleton
        if skeleton is None or policy is not mimepolicy.SMTP:
            return None
        return skeleton.written(self)


# The text parts' contents in a skeleton: one line that quoted-printable leaves as it is.
_SENTINEL = "samverkan-text-part-7f3a9c2e"
_SENTINEL_WRITTEN = (_SENTINEL + "\r\n").encode("ascii")


@dataclass(frozen=True, eq=False)
class _Skeleton:
    """A body as `_write_body` makes it for some attachments, with placeholder texts: built
    and written once per process and shared by every message with the same attachments (a
    reminder: none; a mailout: the routine's material). Each message gets copies of its
    parts, with its own text and HTML encoded as `set_content` encodes them; `segments` are
    the written body's bytes around the two texts."""

    template: EmailMessage
    headers: tuple[tuple[str, object], ...]  # the template's Content-* headers
    texts: tuple[MIMEPart, MIMEPart]  # the template's text/plain and text/html parts
    segments: tuple[bytes, bytes, bytes]

    def give(self, message: SharedBodyMessage, text: str, html: str) -> None:
        """Make this body `message`'s own, with `text` and `html`: copies of the parts (a
        change to one message's part is not seen by another), holding the same headers and
        payloads, except the two texts."""
        message._headers.extend(self.headers)  # type: ignore[attr-defined]
        copies: dict[int, MIMEPart] = {}
        message._payload = [_copy_tree(part, copies) for part in self.template.iter_parts()]  # type: ignore[attr-defined]
        for part, content in zip(self.texts, (text, html), strict=True):
            copies[id(part)]._payload = _quoted_printable(content, message.policy)  # type: ignore[attr-defined]
        message.skeleton = self

    def written(self, message: SharedBodyMessage) -> bytes | None:
        """`message`'s body as mimepolicy.SMTP writes it, or None when it is no longer this
        skeleton's: other Content-* headers at the top, another part, a part's headers or
        payload changed (the objects, not equal ones), or a text no longer a string."""
        if not (
            _same_objects(_content_headers(message), self.headers)
            and message.preamble is self.template.preamble
            and message.epilogue is self.template.epilogue
        ):
            return None
        texts: list[object] = []
        if not _same_parts(message._payload, self.template._payload, self.texts, texts):  # type: ignore[attr-defined]
            return None
        text, html = texts
        if not isinstance(text, str) or not isinstance(html, str):
            return None
        first, middle, last = self.segments
        return b"".join((first, _crlf(text), middle, _crlf(html), last))


def _quoted_printable(content: str, policy: Policy) -> str:
    """What ``set_content(content, charset="utf-8", cte="quoted-printable")`` stores as the
    part's payload (tests/unit/test_shared_bodies.py compares the two).

    The email package splits the UTF-8 bytes into lines and encodes each line on its own
    (`quoprimime.body_encode`; every character that could end a line once decoded as
    Latin-1 is encoded, so its lines are these lines). A template's lines are the same for
    every recipient but the greeting, so each line's encoding is kept (`_QP_LINES`)."""
    width = policy.max_line_length
    if not width:
        return _encode_text(content, "utf-8", "quoted-printable", policy)[1]  # type: ignore[no-any-return]
    encoded = []
    for line in content.encode("utf-8").splitlines():
        key = (width, line)
        found = _QP_LINES.get(key)
        if found is None:
            found = quoprimime.body_encode(line.decode("latin-1") + "\n", width)[:-1]
            if len(_QP_LINES) >= _QP_LINES_MAX:
                _QP_LINES.clear()
            _QP_LINES[key] = found
        encoded.append(found)
    return "\n".join(encoded) + "\n"


_QP_LINES: dict[tuple[int, bytes], str] = {}  # (line width, a line) -> the line encoded
_QP_LINES_MAX = 4096


def _crlf(payload: str) -> bytes:
    """A text part's payload as the email package's writer writes it: each line ended by
    CRLF. A quoted-printable payload is ASCII and its lines end in LF, the last one too."""
    return payload.replace("\n", "\r\n").encode("ascii")


def _copy_tree(part: MIMEPart, copies: dict[int, MIMEPart]) -> MIMEPart:
    fresh = copy.copy(part)
    fresh._headers = list(part._headers)  # type: ignore[attr-defined]
    copies[id(part)] = fresh
    if part.is_multipart():
        fresh._payload = [_copy_tree(child, copies) for child in part.iter_parts()]  # type: ignore[attr-defined]
    return fresh


def _same_parts(
    mine: object, built: object, texts: tuple[MIMEPart, ...], found: list[object]
) -> bool:
    """True when the parts `mine` have the headers and payloads of the parts `built`; the
    payloads of the copies of `texts` are put in `found` instead of being compared."""
    if not isinstance(mine, list) or not isinstance(built, list) or len(mine) != len(built):
        return False
    for part, original in zip(mine, built, strict=True):
        if (
            not _same_objects(part._headers, original._headers)
            or part.preamble is not original.preamble
            or part.epilogue is not original.epilogue
        ):
            return False
        if any(original is text for text in texts):
            found.append(part._payload)
        elif isinstance(original._payload, list):
            if not _same_parts(part._payload, original._payload, texts, found):
                return False
        elif part._payload is not original._payload:
            return False
    return True


def _same_objects(mine: Sequence[object], built: Sequence[object]) -> bool:
    """True when `mine` holds the very objects of `built`, in order (equal ones are not)."""
    return len(mine) == len(built) and all(a is b for a, b in zip(mine, built, strict=True))


def _content_headers(message: EmailMessage) -> tuple[tuple[str, object], ...]:
    """The Content-* headers of `message`'s top level: what its body is written from."""
    return tuple(
        item
        for item in message._headers  # type: ignore[attr-defined]
        if item[0].lower().startswith("content-")
    )


def _skeleton(attachments: Sequence[Attachment]) -> _Skeleton:
    """The skeleton for these attachments, built and written once per process."""
    kinds = [_attachment_type(index, attachment) for index, attachment in enumerate(attachments)]
    key = tuple(
        (a.sha256 or hashlib.sha256(a.content).hexdigest(), a.filename, *kind)
        for a, kind in zip(attachments, kinds, strict=True)
    )
    skeleton = SKELETONS.get(key)
    if skeleton is None:
        skeleton = _new_skeleton(attachments)
        SKELETONS.put(key, skeleton, sum(map(len, skeleton.segments)))
    return skeleton


def _new_skeleton(attachments: Sequence[Attachment]) -> _Skeleton:
    template = EmailMessage(policy=mimepolicy.SMTP)
    template["MIME-Version"] = "1.0"  # as on a message (set_content would add it otherwise)
    _write_body(template, _SENTINEL, _SENTINEL, attachments)
    headers = _content_headers(template)
    plain, html = template.get_body(("plain",)), template.get_body(("html",))
    written = wire_bytes(template, mimepolicy.SMTP)
    # Header lines end in CRLF and none is empty: the first empty line starts the body.
    segments = written.split(b"\r\n\r\n", 1)[1].split(_SENTINEL_WRITTEN)
    if (
        len(headers) + 1 != len(template._headers)  # type: ignore[attr-defined]
        or plain is None
        or html is None
        or len(segments) != 3
    ):
        raise AssertionError("a skeleton is MIME-Version, Content-* headers and two texts")
    return _Skeleton(template, headers, (plain, html), (segments[0], segments[1], segments[2]))


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


# --- attachments, encoded once ----------------------------------------------------------------


class PrebuiltPart(EmailMessage):
    """An attachment part as ``add_attachment`` builds it, together with its body as written
    on the wire (base64 lines with CRLF ends). ``worker.mailers.wire_bytes`` copies those
    bytes instead of splitting and writing the body line by line again, for as long as the
    part's payload is the one the bytes were made from."""

    wire: tuple[object, bytes] | None = None  # (the payload they were made from, the body)

    def wire_body(self, policy: Policy) -> bytes | None:
        """The body's bytes as `policy` writes them, or None when they must be written afresh."""
        if self.wire is None or policy.linesep != "\r\n" or self.wire[0] is not self._payload:  # type: ignore[attr-defined]
            return None
        return self.wire[1]


_T = TypeVar("_T")


class _Cache(Generic[_T]):
    """Built parts or bodies of this process, least recently used first, within a budget."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[object, ...], tuple[_T, int]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[object, ...]) -> _T | None:
        with self._lock:
            found = self._items.get(key)
            if found is None:
                return None
            self._items.move_to_end(key)
            return found[0]

    def put(self, key: tuple[object, ...], item: _T, size: int) -> None:
        if size > self.max_bytes:
            return
        with self._lock:
            if key in self._items:
                return
            self._items[key] = (item, size)
            self._size += size
            while self._size > self.max_bytes:
                _, (_, dropped) = self._items.popitem(last=False)
                self._size -= dropped

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._size = 0


# A routine's material is the same bytes for every recipient of a mailout: its part (base64
# and the written body, about 2.8 times the file) is built once. 64 MB holds a few dozen
# attachments of several MB each; a larger one is simply built per message.
PART_CACHE: _Cache[PrebuiltPart] = _Cache(64 * 1024 * 1024)
# The skeletons of bodies without an invitation, by their attachments: one for all messages
# without any, one for each routine's material.
SKELETONS: _Cache[_Skeleton] = _Cache(64 * 1024 * 1024)


def _attachment_part(attachment: Attachment, maintype: str, subtype: str) -> EmailMessage:
    """A copy of the part for ``attachment``: headers of its own, the encoded body shared."""
    digest = attachment.sha256 or hashlib.sha256(attachment.content).hexdigest()
    key = (digest, attachment.filename, maintype, subtype)
    part = PART_CACHE.get(key)
    if part is None:
        part = _new_attachment_part(attachment, maintype, subtype)
        assert part.wire is not None
        PART_CACHE.put(key, part, len(attachment.content) + 2 * len(part.wire[1]))
    fresh = copy.copy(part)
    fresh._headers = list(part._headers)  # type: ignore[attr-defined]
    return fresh


def _new_attachment_part(attachment: Attachment, maintype: str, subtype: str) -> PrebuiltPart:
    params = {"name": attachment.filename}  # Outlook shows Content-Type's name
    if maintype == "text":
        params["charset"] = text_charset(attachment.content)
    part = PrebuiltPart(policy=mimepolicy.SMTP)
    part.set_content(
        attachment.content,
        maintype=maintype,
        subtype=subtype,
        filename=attachment.filename,
        params=params,
    )
    if "content-disposition" not in part:
        part["Content-Disposition"] = "attachment"
    del part["MIME-Version"]
    written = part.as_bytes(policy=mimepolicy.SMTP)
    # Header lines end in CRLF and none is empty: the first empty line starts the body.
    part.wire = (part._payload, written.split(b"\r\n\r\n", 1)[1])  # type: ignore[attr-defined]
    return part


# --- checks -----------------------------------------------------------------------------------


def _header_value(field: str, value: str) -> str:
    if has_control(value):
        raise HeaderInjectionError(field)
    return value


@lru_cache(maxsize=256)
def _mailbox_text(field: str, address: Address) -> str:
    """The sender (or Reply-To) as header text, checked: the same on every message, so made
    once per process (a refusal raises and is not kept)."""
    return str(_mailbox(field, address))


def _mailbox(field: str, address: Address) -> HeaderAddress:
    return HeaderAddress(
        display_name=address.name.strip(), addr_spec=_checked_email(field, address)
    )


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


def text_charset(content: bytes) -> str:
    """The charset of a text attachment: UTF-8 when it decodes as UTF-8, otherwise
    windows-1252 (what Swedish text files written on Windows use). Without a charset, mail
    programs guess, and å, ä and ö come out wrong."""
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return "windows-1252"
    return "utf-8"


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
