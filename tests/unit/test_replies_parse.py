"""Reading one e-mail as an answer to an invitation (worker.replies.parse_reply): the three
clients' formats, and junk that must give a reason instead of an exception."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.reply_samples import reply_message
from worker.replies import Reply, parse_reply

UID = "exempel-samverkansmote-var-2027@exempelby.se"
STAMP = dt.datetime(2027, 3, 2, 9, 15, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("client", "partstat"),
    [("outlook", "ACCEPTED"), ("gmail", "DECLINED"), ("apple", "TENTATIVE")],
)
def test_each_clients_reply_gives_its_answer(client: str, partstat: str) -> None:
    raw = reply_message(
        client,
        uid=UID,
        attendee="Anna.Rektor@Exempelby.se",
        partstat=partstat,
        sequence=2,
        name="Anna Åberg, rektor",
    )
    assert parse_reply(raw).replies == (Reply(UID, "anna.rektor@exempelby.se", partstat, 2, STAMP),)


def test_gmails_inline_part_and_attachment_count_once() -> None:
    raw = reply_message("gmail", uid=UID, attendee="a@exempelby.se", partstat="ACCEPTED")
    assert raw.count(b"invite.ics") == 2  # the attachment is really there
    assert len(parse_reply(raw).replies) == 1


def test_a_delegated_answer_names_the_delegate() -> None:
    calendar = (
        "BEGIN:VCALENDAR\r\nMETHOD:REPLY\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\n"
        f"UID:{UID}\r\nDTSTAMP:20270302T091500Z\r\nSEQUENCE:1\r\n"
        'ATTENDEE;PARTSTAT=DELEGATED;DELEGATED-TO="mailto:B@exempelby.se":mailto:a@exempelby.se\r\n'
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    message = (
        "From: a@exempelby.se\r\nContent-Type: text/calendar; method=REPLY; charset=utf-8\r\n"
        "\r\n" + calendar
    ).encode()
    (reply,) = parse_reply(message).replies
    assert (reply.partstat, reply.delegated_to, reply.sequence) == (
        "DELEGATED",
        "b@exempelby.se",
        1,
    )


def calendar_mail(calendar: str, content_type: str = "text/calendar; method=REPLY") -> bytes:
    return (f"From: x@exempelby.se\r\nContent-Type: {content_type}\r\n\r\n{calendar}").encode()


def event(lines: str, method: str = "REPLY") -> str:
    return (
        f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nMETHOD:{method}\r\nBEGIN:VEVENT\r\n"
        f"{lines}END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


ATTENDEE = "ATTENDEE;PARTSTAT=ACCEPTED:mailto:a@exempelby.se\r\n"


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"", "empty"),
        (b"Subject: hej\r\n\r\nKan vi ses?\r\n", "no-calendar"),
        (b"\x00\xff\xfe" * 100, "no-calendar"),
        (calendar_mail("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\n"), "broken-icalendar"),
        (calendar_mail("not a calendar at all"), "broken-icalendar"),
        (calendar_mail(event(f"UID:{UID}\r\n{ATTENDEE}", "REQUEST")), "not-a-reply"),
        (calendar_mail(event(f"UID:{UID}\r\n")), "no-answer"),  # no attendee
        (calendar_mail(event(ATTENDEE)), "no-answer"),  # no UID
        (
            calendar_mail(event(f"UID:{UID}\r\nATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:a@b.se\r\n")),
            "no-answer",
        ),
        (calendar_mail(event(f"UID:{UID}\r\nATTENDEE;PARTSTAT=ACCEPTED:urn:x\r\n")), "no-answer"),
        (
            calendar_mail(event(f"UID:{UID}\r\n{ATTENDEE}"), "text/calendar; charset=x-klingon"),
            None,
        ),
    ],
    ids=[
        "empty",
        "plain-text",
        "binary",
        "truncated",
        "not-icalendar",
        "a-request",
        "no-attendee",
        "no-uid",
        "needs-action",
        "no-address",
        "unknown-charset",
    ],
)
def test_junk_gives_a_reason_never_an_exception(raw: bytes, problem: str | None) -> None:
    parsed = parse_reply(raw)
    assert parsed.problem == problem
    assert bool(parsed.replies) == (problem is None)


def test_a_wrong_charset_is_read_with_replacement_characters() -> None:
    calendar = event(f"UID:{UID}\r\nSUMMARY:M\xf6te\r\n{ATTENDEE}").encode("latin-1")
    raw = b"Content-Type: text/calendar; method=REPLY; charset=utf-8\r\n\r\n" + calendar
    assert len(parse_reply(raw).replies) == 1


def test_a_huge_message_is_not_parsed() -> None:
    raw = reply_message("outlook", uid=UID, attendee="a@exempelby.se", partstat="ACCEPTED")
    huge = raw + b"\r\n" + b"x" * 3_000_000
    assert parse_reply(huge).problem == "too-large"


def test_a_missing_sequence_is_zero_and_a_floating_dtstamp_is_utc() -> None:
    raw = calendar_mail(event(f"UID:{UID}\r\nDTSTAMP:20270302T091500\r\n{ATTENDEE}"))
    (reply,) = parse_reply(raw).replies
    assert (reply.sequence, reply.dtstamp) == (0, STAMP)


def test_apples_email_parameter_is_used_when_the_value_is_not_mailto() -> None:
    line = "ATTENDEE;EMAIL=Kim@Exempelby.se;PARTSTAT=TENTATIVE:urn:uuid:1234\r\n"
    (reply,) = parse_reply(calendar_mail(event(f"UID:{UID}\r\n{line}"))).replies
    assert reply.attendee == "kim@exempelby.se"


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    parse_reply(raw)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=400))
def test_arbitrary_text_in_a_calendar_part_never_raises(text: str) -> None:
    parse_reply(calendar_mail(event(f"UID:{UID}\r\n{text}\r\n{ATTENDEE}")))
    parse_reply(calendar_mail(text))
