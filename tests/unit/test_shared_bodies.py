"""A message without an invitation is made from a skeleton shared by every message with the
same attachments (worker.prebuilt.SKELETONS): the parts are built and written once per process,
and each message gets copies of them with its own text and HTML, encoded as the email package
encodes them. Each message must still be, byte for byte, what the email package writes for the
message built the plain way, and a change to one message must be written and must not reach
another."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from datetime import datetime
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage
from email.utils import format_datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from worker import mimepolicy
from worker.compose import Address, Attachment, compose_message
from worker.mailers import wire_bytes
from worker.prebuilt import (
    PART_CACHE,
    SKELETONS,
    SharedBodyMessage,
    quoted_printable,
    text_charset,
)

STOCKHOLM = ZoneInfo("Europe/Stockholm")
# ASCII header values: the top-level headers are the same code either way; the body is tested.
SENDER = Address("Asa Oberg", "asa.oberg@kommun.example.se")
SUBJECT = "Paminnelse: utvardering"
DATE = datetime(2027, 8, 16, 7, 0, tzinfo=STOCKHOLM)


@pytest.fixture(autouse=True)
def empty_caches() -> Iterator[None]:
    SKELETONS.clear()
    PART_CACHE.clear()
    yield
    SKELETONS.clear()
    PART_CACHE.clear()


def compose(
    number: int, text: str, html: str, files: list[Attachment] | None = None
) -> SharedBodyMessage:
    message = compose_message(
        sender=SENDER,
        to=Address("Rektor", f"rektor{number}@skola.example.se"),
        subject=SUBJECT,
        text=text,
        html=html,
        message_id=f"<{number:016x}@samverkan.kommun.example.se>",
        date=DATE,
        attachments=files or [],
    )
    assert isinstance(message, SharedBodyMessage)
    return message


def plain_way(number: int, text: str, html: str, files: list[Attachment]) -> EmailMessage:
    """The same message built with the email package's own calls, nothing shared."""
    message = EmailMessage(policy=email.policy.SMTP)
    message["From"] = f"{SENDER.name} <{SENDER.email}>"
    message["To"] = HeaderAddress("Rektor", addr_spec=f"rektor{number}@skola.example.se")
    message["Subject"] = SUBJECT
    message["Date"] = format_datetime(DATE)
    message["Message-ID"] = f"<{number:016x}@samverkan.kommun.example.se>"
    message["MIME-Version"] = "1.0"
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    message.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
    for file in files:
        maintype, subtype = file.mime_type.split("/")
        params = {"name": file.filename}
        if maintype == "text":
            params["charset"] = text_charset(file.content)
        message.add_attachment(
            file.content, maintype=maintype, subtype=subtype, filename=file.filename, params=params
        )
    for part in message.walk():
        if part is not message:
            del part["MIME-Version"]
    return message


def boundaries_of(source: EmailMessage, target: EmailMessage) -> EmailMessage:
    """`target` with `source`'s boundaries (read from `source` only: it is not changed)."""
    for mine, theirs in zip(source.walk(), target.walk(), strict=True):
        if mine.is_multipart():
            boundary = mine.get_boundary()
            assert boundary is not None
            theirs.set_boundary(boundary)
    return target


def parts(written: bytes) -> dict[str, str | bytes]:
    parsed = email.message_from_bytes(written, policy=email.policy.default)
    found: dict[str, str | bytes] = {}
    for part in parsed.walk():
        if not part.is_multipart():
            content = part.get_content()  # type: ignore[attr-defined]
            found[part.get_content_type()] = (
                content.replace("\r\n", "\n") if isinstance(content, str) else content
            )
    return found


TEXTS = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"]).filter(lambda c: c != "\x00"),
    max_size=300,
)
FILES = st.lists(
    st.builds(
        Attachment,
        filename=st.sampled_from(["Föräldrastöd.pdf", "a.txt", "x.bin"]),
        content=st.binary(max_size=2000),
        mime_type=st.sampled_from(["application/pdf", "application/octet-stream"]),
    ),
    max_size=2,
)


@settings(max_examples=80, deadline=None)
@given(
    text=st.one_of(TEXTS, st.just(".\nFrom here\n" + "å" * 200 + "\n. \n")),
    html=TEXTS,
    files=FILES,
    recipients=st.integers(2, 3),
)
def test_each_message_is_written_as_the_email_package_writes_it_built_the_plain_way(
    text: str, html: str, files: list[Attachment], recipients: int
) -> None:
    SKELETONS.clear()
    for number in range(recipients):  # the first builds the skeleton, the others share it
        # Each recipient's texts are their own (a greeting by name), or all the same.
        mine = text + f"Hej rektor {number}!\n" * (number % 2)
        message = compose(number, mine, html, files)
        written = wire_bytes(message, mimepolicy.SMTP)
        assert message.wire_body(mimepolicy.SMTP) == written.split(b"\r\n\r\n", 1)[1]
        expected = boundaries_of(message, plain_way(number, mine, html, files))
        assert written == expected.as_bytes(policy=email.policy.SMTP)
        # The email package's own writer (which knows nothing of the skeleton), on the
        # message itself, writes every part afresh.
        assert written == message.as_bytes(policy=email.policy.SMTP)
        # The policy for international addresses writes the parts' headers differently: afresh.
        assert message.wire_body(mimepolicy.SMTPUTF8) is None
        utf8 = wire_bytes(message, mimepolicy.SMTPUTF8)
        assert utf8 == expected.as_bytes(policy=email.policy.SMTPUTF8)
        lines = mine.encode("utf-8").splitlines()  # as set_content splits them
        assert parts(written)["text/plain"] == (b"\n".join(lines) + b"\n").decode("utf-8")


def test_messages_with_the_same_attachments_share_one_skeleton_and_others_do_not() -> None:
    pdf = Attachment("a.pdf", b"%PDF-1.7 " * 500, "application/pdf")
    first = compose(1, "Hej Anna!\n", "<p>Hej Anna!</p>", [pdf])
    second = compose(2, "Hej Bo!\n", "<p>Hej Bo!</p>", [pdf])
    assert first.skeleton is not None and first.skeleton is second.skeleton
    assert first["To"] != second["To"] and first["Message-ID"] != second["Message-ID"]
    assert parts(wire_bytes(first, mimepolicy.SMTP))["text/plain"] == "Hej Anna!\n"
    assert parts(wire_bytes(second, mimepolicy.SMTP))["text/html"] == "<p>Hej Bo!</p>\n"
    others = [
        compose(5, "Hej!\n", "<p>Hej!</p>", []),
        compose(6, "Hej!\n", "<p>Hej!</p>", [Attachment("b.pdf", pdf.content, pdf.mime_type)]),
        compose(7, "Hej!\n", "<p>Hej!</p>", [Attachment("a.pdf", b"other", pdf.mime_type)]),
        compose(8, "Hej!\n", "<p>Hej!</p>", [pdf, pdf]),
    ]
    skeletons = {id(message.skeleton) for message in [first, *others]}
    assert len(skeletons) == 1 + len(others)
    (attached,) = email.message_from_bytes(
        wire_bytes(others[2], mimepolicy.SMTP), policy=email.policy.default
    ).iter_attachments()
    assert attached.get_content() == b"other"  # type: ignore[attr-defined]


def test_a_change_to_one_message_is_written_and_reaches_no_other() -> None:
    first = compose(1, "Hej!\n", "<p>Hej!</p>")
    second = compose(2, "Hej!\n", "<p>Hej!</p>")
    text_part = first.get_body(("plain",))
    assert text_part is not None
    text_part.set_content("Ändrat\n", charset="utf-8", cte="quoted-printable")
    assert first.wire_body(mimepolicy.SMTP) is None  # written afresh
    assert parts(wire_bytes(first, mimepolicy.SMTP))["text/plain"] == "Ändrat\n"
    assert second.wire_body(mimepolicy.SMTP) is not None
    assert parts(wire_bytes(second, mimepolicy.SMTP))["text/plain"] == "Hej!\n"
    third = compose(3, "Hej!\n", "<p>Hej!</p>")
    assert parts(wire_bytes(third, mimepolicy.SMTP))["text/plain"] == "Hej!\n"


def test_a_new_boundary_on_one_message_is_written() -> None:
    first = compose(1, "Hej!\n", "<p>Hej!</p>")
    second = compose(2, "Hej!\n", "<p>Hej!</p>")
    first.set_boundary("=_another")
    written = wire_bytes(first, mimepolicy.SMTP)
    assert b"--=_another\r\n" in written and written == first.as_bytes(policy=email.policy.SMTP)
    assert second.get_boundary() != "=_another"
    assert wire_bytes(second, mimepolicy.SMTP) == second.as_bytes(policy=email.policy.SMTP)


def test_a_changed_header_of_one_part_is_written_and_reaches_no_other() -> None:
    pdf = Attachment("a.pdf", b"%PDF-1.7 " * 50, "application/pdf")
    first = compose(1, "Hej!\n", "<p>Hej!</p>", [pdf])
    second = compose(2, "Hej!\n", "<p>Hej!</p>", [pdf])
    (attachment,) = first.iter_attachments()
    attachment.replace_header("Content-Disposition", 'attachment; filename="annat.pdf"')
    written = wire_bytes(first, mimepolicy.SMTP)
    assert b'filename="annat.pdf"' in written
    assert written == first.as_bytes(policy=email.policy.SMTP)
    other = wire_bytes(second, mimepolicy.SMTP)
    assert b"annat.pdf" not in other and other == second.as_bytes(policy=email.policy.SMTP)


def test_a_payload_replaced_in_one_part_is_written_and_reaches_no_other() -> None:
    pdf = Attachment("a.pdf", b"%PDF-1.7 " * 50, "application/pdf")
    first = compose(1, "Hej!\n", "<p>Hej!</p>", [pdf])
    second = compose(2, "Hej!\n", "<p>Hej!</p>", [pdf])
    (attachment,) = first.iter_attachments()
    attachment.set_payload("b3RoZXI=\n")  # only the payload: "other", base64
    written = wire_bytes(first, mimepolicy.SMTP)
    assert written == first.as_bytes(policy=email.policy.SMTP)
    (found,) = email.message_from_bytes(written, policy=email.policy.default).iter_attachments()
    assert found.get_content() == b"other"  # type: ignore[attr-defined]
    other = wire_bytes(second, mimepolicy.SMTP)
    (kept,) = email.message_from_bytes(other, policy=email.policy.default).iter_attachments()
    assert kept.get_content() == pdf.content  # type: ignore[attr-defined]


LINES = st.lists(
    st.one_of(
        TEXTS,
        st.text(st.sampled_from("=. \tåÅ…\u2028\x85\x0b\x0c\x1c"), max_size=160),
        st.just("x" * 75 + "="),
        st.just("y" * 74 + " "),
    ),
    max_size=8,
)


@settings(max_examples=400, deadline=None)
@given(
    lines=LINES, ends=st.lists(st.sampled_from(["\n", "\r\n", "\r", ""]), min_size=8, max_size=8)
)
def test_a_text_is_encoded_as_set_content_encodes_it_whatever_its_lines(
    lines: list[str], ends: list[str]
) -> None:
    # Encoded line by line with each line's encoding kept: the same lines again (the second
    # call) must come out as the first time, and both as set_content stores them.
    content = "".join(line + end for line, end in zip(lines, ends, strict=False))
    plain = EmailMessage(policy=mimepolicy.SMTP)
    plain.set_content(content, subtype="plain", charset="utf-8", cte="quoted-printable")

    assert quoted_printable(content) == plain.get_payload()
    assert quoted_printable(content) == plain.get_payload()
