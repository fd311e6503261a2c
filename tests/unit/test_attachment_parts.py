"""An attachment is encoded once per process (worker.prebuilt.PART_CACHE) and its written body
copied into every message (worker.mailers.wire_bytes): each message must still be, byte for
byte, what the email package writes for a part built afresh, and no message may see another's
changes."""

from __future__ import annotations

import email
import email.policy
import hashlib
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from worker.compose import Address, Attachment, compose_message
from worker.mailers import wire_bytes
from worker.prebuilt import PART_CACHE, PrebuiltPart, text_charset
from worker.prebuilt import Cache as PartCache

STOCKHOLM = ZoneInfo("Europe/Stockholm")
SENDER = Address("Åsa Öberg", "asa.oberg@kommun.example.se")
MESSAGE_ID = "<0123456789abcdef@samverkan.kommun.example.se>"
DATE = datetime(2027, 8, 16, 7, 0, tzinfo=STOCKHOLM)
POLICIES = [email.policy.SMTP, email.policy.SMTPUTF8]


@pytest.fixture(autouse=True)
def empty_cache() -> Iterator[None]:
    PART_CACHE.clear()
    yield
    PART_CACHE.clear()


def compose(to: str, attachments: list[Attachment], text: str = "Hej!\n") -> EmailMessage:
    return compose_message(
        sender=SENDER,
        to=Address("Rektor", to),
        subject="Föräldrastöd",
        text=text,
        html=f"<p>{text}</p>",
        message_id=MESSAGE_ID,
        date=DATE,
        attachments=attachments,
    )


def reference(to: str, attachments: list[Attachment]) -> EmailMessage:
    """The same message with its attachments built the plain way (add_attachment)."""
    plain = compose(to, [])
    for attachment in attachments:
        maintype, subtype = attachment.mime_type.lower().split("/")
        params = {"name": attachment.filename}
        if maintype == "text":
            params["charset"] = text_charset(attachment.content)
        plain.add_attachment(
            attachment.content,
            maintype=maintype,
            subtype=subtype,
            filename=attachment.filename,
            params=params,
        )
    for part in plain.walk():
        if part is not plain:
            del part["MIME-Version"]
    return plain


def attached(written: bytes) -> list[bytes]:
    parsed = email.message_from_bytes(written, policy=email.policy.default)
    return [part.get_payload(decode=True) for part in parsed.iter_attachments()]  # type: ignore[misc]


def same_boundaries(*messages: EmailMessage) -> None:
    for message in messages:
        for index, part in enumerate(message.walk()):
            if part.is_multipart():
                part.set_boundary(f"===boundary-{index}===")


FILES = st.builds(
    Attachment,
    filename=st.sampled_from(["Föräldrastöd.pdf", "a.txt", "Rutin (2027).ics", "x.bin"]),
    content=st.one_of(
        st.binary(max_size=3000),
        st.text(max_size=500).map(lambda t: t.encode("utf-8")),
        st.text(alphabet="åäöÅ \n", max_size=200).map(lambda t: t.encode("cp1252")),
    ),
    mime_type=st.sampled_from(["application/pdf", "text/plain", "text/calendar", "image/png"]),
).flatmap(
    # Without its digest (computed), or with it given as a material row gives it.
    lambda f: st.sampled_from([f, replace(f, sha256=hashlib.sha256(f.content).hexdigest())])
)


@settings(max_examples=60, deadline=None)
@given(files=st.lists(FILES, min_size=1, max_size=3), repeat=st.integers(1, 3))
def test_every_message_is_written_as_the_email_package_writes_a_fresh_part(
    files: list[Attachment], repeat: int
) -> None:
    PART_CACHE.clear()
    for number in range(repeat):  # the first builds the parts, the others reuse them
        to = f"rektor{number}@skola.example.se"
        message = compose(to, files)
        plain = reference(to, files)
        same_boundaries(message, plain)
        for policy in POLICIES:
            written = wire_bytes(message, policy)
            assert written == plain.as_bytes(policy=policy)
            assert written == message.as_bytes(policy=policy)  # the email package's own writer
        assert attached(written) == [f.content for f in files]


def test_the_part_is_encoded_once_and_each_message_gets_its_own_copy() -> None:
    pdf = Attachment("Föräldrastöd.pdf", bytes(range(256)) * 800, "application/pdf")
    first = compose("anna@skola.example.se", [pdf])
    second = compose("bo@skola.example.se", [pdf])
    (one,) = first.iter_attachments()
    (two,) = second.iter_attachments()
    assert isinstance(one, PrebuiltPart) and isinstance(two, PrebuiltPart)
    assert one is not two
    assert one.wire is not None and one.wire is two.wire  # the encoded body, shared
    # A header changed on one message's part is not seen by the other's.
    one.replace_header("Content-Disposition", 'inline; filename="annat.pdf"')
    same_boundaries(first, second)
    assert b"annat.pdf" in wire_bytes(first, email.policy.SMTP)
    assert b"annat.pdf" not in wire_bytes(second, email.policy.SMTP)
    assert 'filename="annat.pdf"' not in str(two["Content-Disposition"])


def test_a_part_whose_payload_was_replaced_is_written_from_its_new_payload() -> None:
    pdf = Attachment("a.pdf", b"first content " * 100, "application/pdf")
    message = compose("anna@skola.example.se", [pdf])
    (part,) = message.iter_attachments()
    part.set_content(b"other bytes", maintype="application", subtype="pdf", filename="a.pdf")
    assert part.wire_body(email.policy.SMTP) is None  # type: ignore[attr-defined]
    assert attached(wire_bytes(message, email.policy.SMTP)) == [b"other bytes"]
    # The next message still gets the file, not what one message did to its copy.
    again = compose("bo@skola.example.se", [pdf])
    assert attached(wire_bytes(again, email.policy.SMTP)) == [b"first content " * 100]


def test_a_different_file_under_the_same_name_is_a_different_part() -> None:
    old = compose("a@skola.example.se", [Attachment("a.pdf", b"version 1", "application/pdf")])
    new = compose("a@skola.example.se", [Attachment("a.pdf", b"version 2", "application/pdf")])
    assert attached(wire_bytes(old, email.policy.SMTP)) == [b"version 1"]
    assert attached(wire_bytes(new, email.policy.SMTP)) == [b"version 2"]


def test_the_cache_keeps_within_its_budget_dropping_the_least_recently_used() -> None:
    cache = PartCache(max_bytes=100)
    parts = {name: PrebuiltPart() for name in "abcd"}
    cache.put(("a",), parts["a"], 40)
    cache.put(("b",), parts["b"], 40)
    assert cache.get(("a",)) is parts["a"]  # a is now the most recently used
    cache.put(("c",), parts["c"], 40)  # over budget: b goes
    assert cache.get(("b",)) is None
    assert cache.get(("a",)) is parts["a"] and cache.get(("c",)) is parts["c"]
    cache.put(("d",), parts["d"], 101)  # larger than the whole budget: not kept
    assert cache.get(("d",)) is None
    assert cache.get(("a",)) is parts["a"]
