"""What a mailout builds once per process instead of for every message (docs/performance.md).

- **Attachment parts** (`attachment_part`, `PART_CACHE`): a routine's material is the same
  bytes for every recipient, so its part is encoded and written once; each message gets a copy
  with headers of its own, and `PrebuiltPart.wire_body` gives the writer the bytes.
- **Skeletons of bodies** (`skeleton`, `SKELETONS`): a message without an invitation has the
  body worker.compose writes for its attachments, with its own text and HTML. That body is
  built and written once with placeholder texts; each message gets copies of its parts with
  its own two texts encoded (`quoted_printable`), and `SharedBodyMessage.wire_body` writes it
  from the skeleton's bytes for as long as nothing of the body was changed since.

tests/unit/test_shared_bodies.py and test_attachment_parts.py check that every message is
written byte for byte as the email package writes it, and that a change to one message's
parts is written and reaches no other.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email import quoprimime
from email.message import EmailMessage, MIMEPart
from email.policy import Policy
from functools import lru_cache
from typing import Generic, TypeVar

from worker import mimepolicy
from worker.mailers import wire_bytes

__all__ = [
    "PART_CACHE",
    "SKELETONS",
    "Cache",
    "PrebuiltPart",
    "SharedBodyMessage",
    "Skeleton",
    "attachment_part",
    "quoted_printable",
    "skeleton",
    "text_charset",
]


# --- bodies without an invitation, built once -------------------------------------------------


class SharedBodyMessage(EmailMessage):
    """A message whose body was made from a skeleton (`Skeleton`): ``wire_bytes`` then
    writes the body from the skeleton's bytes and the message's two encoded texts instead of
    writing every part again, as long as nothing of the body was changed since."""

    skeleton: Skeleton | None = None

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
class Skeleton:
    """A body as `worker.compose` makes it for some attachments, with placeholder texts: built
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
            copies[id(part)]._payload = quoted_printable(content)  # type: ignore[attr-defined]
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


def quoted_printable(content: str) -> str:
    """What ``set_content(content, charset="utf-8", cte="quoted-printable")`` stores as the
    payload of a part under mimepolicy.SMTP, the policy of every skeleton and of the messages
    made from it (tests/unit/test_shared_bodies.py compares the two).

    The email package splits the UTF-8 bytes into lines and encodes each line on its own
    (`quoprimime.body_encode`; every character that could end a line once decoded as
    Latin-1 is encoded, so its lines are these lines). A template's lines are the same for
    every recipient but the greeting, so each line's encoding is kept (`_qp_line`)."""
    return "\n".join(map(_qp_line, content.encode("utf-8").splitlines())) + "\n"


# mimepolicy.SMTP's max_line_length: a policy of another width makes the comparison with
# set_content in tests/unit/test_shared_bodies.py fail.
_QP_WIDTH = 78


@lru_cache(maxsize=4096)
def _qp_line(line: bytes) -> str:
    return quoprimime.body_encode(line.decode("latin-1") + "\n", _QP_WIDTH)[:-1]


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


def skeleton(key: tuple[object, ...], write_body: Callable[[EmailMessage, str], None]) -> Skeleton:
    """The skeleton under `key` (what its attachments are), built and written once per
    process: `write_body(template, placeholder)` gives a message its body, with
    `placeholder` as its text and its HTML."""
    found = SKELETONS.get(key)
    if found is None:
        found = _new_skeleton(write_body)
        SKELETONS.put(key, found, sum(map(len, found.segments)))
    return found


def _new_skeleton(write_body: Callable[[EmailMessage, str], None]) -> Skeleton:
    template = EmailMessage(policy=mimepolicy.SMTP)
    template["MIME-Version"] = "1.0"  # as on a message (set_content would add it otherwise)
    write_body(template, _SENTINEL)
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
    return Skeleton(template, headers, (plain, html), (segments[0], segments[1], segments[2]))


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


class Cache(Generic[_T]):
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
PART_CACHE: Cache[PrebuiltPart] = Cache(64 * 1024 * 1024)
# The skeletons of bodies without an invitation, by their attachments: one for all messages
# without any, one for each routine's material.
SKELETONS: Cache[Skeleton] = Cache(64 * 1024 * 1024)


def attachment_part(
    content: bytes, digest: str, filename: str, maintype: str, subtype: str
) -> EmailMessage:
    """A copy of the part for an attachment (`digest`: its content's SHA-256): headers of its
    own, the encoded body shared."""
    key = (digest, filename, maintype, subtype)
    part = PART_CACHE.get(key)
    if part is None:
        part = _new_attachment_part(content, filename, maintype, subtype)
        assert part.wire is not None
        PART_CACHE.put(key, part, len(content) + 2 * len(part.wire[1]))
    fresh = copy.copy(part)
    fresh._headers = list(part._headers)  # type: ignore[attr-defined]
    return fresh


def _new_attachment_part(
    content: bytes, filename: str, maintype: str, subtype: str
) -> PrebuiltPart:
    params = {"name": filename}  # Outlook shows Content-Type's name
    if maintype == "text":
        params["charset"] = text_charset(content)
    part = PrebuiltPart(policy=mimepolicy.SMTP)
    part.set_content(
        content,
        maintype=maintype,
        subtype=subtype,
        filename=filename,
        params=params,
    )
    if "content-disposition" not in part:
        part["Content-Disposition"] = "attachment"
    del part["MIME-Version"]
    written = part.as_bytes(policy=mimepolicy.SMTP)
    # Header lines end in CRLF and none is empty: the first empty line starts the body.
    part.wire = (part._payload, written.split(b"\r\n\r\n", 1)[1])  # type: ignore[attr-defined]
    return part


def text_charset(content: bytes) -> str:
    """The charset of a text attachment: UTF-8 when it decodes as UTF-8, otherwise
    windows-1252 (what Swedish text files written on Windows use). Without a charset, mail
    programs guess, and å, ä and ö come out wrong."""
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return "windows-1252"
    return "utf-8"
