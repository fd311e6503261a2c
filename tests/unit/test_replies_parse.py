"""Reading one e-mail as an answer to an invitation (worker.replies.parse_reply): genuine
replies of Outlook, Gmail and Apple Calendar (tests/data/replies/), as stored and rewritten for
any answer; the ways those clients fold, encode and annotate a reply; and junk that must give a
reason instead of an exception."""

from __future__ import annotations

import base64
import datetime as dt
import email
import email.policy
import html
import re
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.reply_samples import GENUINE, Prop, Sample, reply_message, rewrite_calendars
from worker.replies import Parsed, Reply, parse_reply

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


# --- Genuine replies (tests/data/replies/SOURCES.md) -----------------------------------------

SAMPLES = sorted(GENUINE.values(), key=lambda s: s.stem)
IDS = [s.stem for s in SAMPLES]


def test_every_client_and_every_answer_has_a_genuine_sample() -> None:
    clients = {s.client for s in SAMPLES}
    assert clients == {"outlook", "gmail", "apple"}
    for client in clients:
        assert {s.partstat for s in SAMPLES if s.client == client} == {
            "ACCEPTED",
            "DECLINED",
            "TENTATIVE",
        }


@pytest.mark.parametrize("sample", SAMPLES, ids=IDS)
def test_a_genuine_reply_as_stored_gives_its_answer(sample: Sample) -> None:
    expected = Reply(sample.uid, sample.attendee, sample.partstat, sample.sequence, sample.dtstamp)
    assert parse_reply(sample.raw()) == Parsed((expected,))


@pytest.mark.parametrize("answer", ["ACCEPTED", "DECLINED", "TENTATIVE"])
@pytest.mark.parametrize("sample", SAMPLES, ids=IDS)
def test_a_genuine_reply_rewritten_for_our_meeting_gives_that_answer(
    sample: Sample, answer: str
) -> None:
    raw = reply_message(
        sample.stem,
        uid=UID,
        attendee="Anna.Rektor@Exempelby.se",
        partstat=answer,
        sequence=4,
        name="Anna Åberg, rektor",
    )
    assert parse_reply(raw).replies == (Reply(UID, "anna.rektor@exempelby.se", answer, 4, STAMP),)
    assert sample.attendee.encode() not in raw.lower()


def _decoded_text(raw: bytes) -> str:
    """The header block and every part's decoded body, folded lines joined."""
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    texts = [re.split(rb"\r?\n\r?\n", raw, maxsplit=1)[0].decode()]
    for part in message.walk():
        if not part.is_multipart():
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            texts.append(payload.decode("latin-1"))
    return re.sub(r"\r?\n[ \t]", "", "\n".join(texts))


ALLOWED_DOMAINS = {"example.com", "example.org", "willow.vmw"}  # willow.vmw: a test machine's
TECHNICAL = {"calendar-notification@google.com", "bounce@calendar-server.bounces.google.com"}


@pytest.mark.parametrize("sample", SAMPLES, ids=IDS)
def test_the_stored_samples_hold_no_real_persons_address(sample: Sample) -> None:
    """Every address left is a placeholder, a test machine's, Google's sender, or the random
    local part of a Message-ID."""
    text = _decoded_text(sample.raw())
    for address in set(re.findall(r"[\w.+%-]+@[\w-]+(?:\.[\w-]+)+", text)):
        local, _, domain = address.lower().rpartition("@")
        message_id = re.fullmatch(r"[0-9a-f.%-]{16,}|[0-9a-f]{8}\.[0-9a-f]{3}%tom", local)
        assert domain in ALLOWED_DOMAINS or address in TECHNICAL or message_id, address


# --- The ways the clients write a reply, as classes ------------------------------------------


def _refolded(cuts: list[int]) -> Callable[[Iterator[Prop]], Iterator[Prop]]:
    """A change that folds the ATTENDEE line at the given offsets (RFC 5545 3.1)."""

    def change(props: Iterator[Prop]) -> Iterator[Prop]:
        for prop in props:
            if prop.name == "ATTENDEE":
                prop.cuts = tuple(c % len(prop.render()) for c in cuts)
            yield prop

    return change


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(SAMPLES),
    st.lists(st.integers(min_value=1, max_value=200), min_size=1, max_size=6),
)
def test_a_fold_anywhere_in_the_attendee_line_reads_the_same(
    sample: Sample, cuts: list[int]
) -> None:
    """Exchange folds inside the address (`...@uk-koe` / ` ln.de`), Outlook for Mac inside a
    quoted CN, Google inside CN: a fold at any octet is read the same."""
    raw = rewrite_calendars(sample.raw(), _refolded(cuts))
    (reply,) = parse_reply(raw).replies
    assert (reply.attendee, reply.partstat, reply.uid) == (
        sample.attendee,
        sample.partstat,
        sample.uid,
    )


def _soft_broken(encoded: bytes, cuts: list[int]) -> bytes:
    """Quoted-printable with soft line breaks added at the given places (never inside =XX)."""
    out, last = [], 0
    for cut in sorted({c % len(encoded) for c in cuts}):
        if encoded[max(cut - 2, 0) : cut].find(b"=") >= 0 or cut <= last:
            continue
        out += [encoded[last:cut], b"=\r\n"]
        last = cut
    out.append(encoded[last:])
    return b"".join(out)


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from([s for s in SAMPLES if s.client == "apple"]),
    st.lists(st.integers(min_value=1, max_value=3000), min_size=1, max_size=30),
)
def test_soft_line_breaks_anywhere_in_apples_quoted_printable_read_the_same(
    sample: Sample, cuts: list[int]
) -> None:
    """Apple breaks its quoted-printable lines inside the ATTENDEE parameters
    (`PARTSTAT=3DACCEPTED;=` / `ROLE`): a soft break anywhere is read the same."""
    raw = sample.raw()
    start = raw.index(b"BEGIN:VCALENDAR")
    end = raw.index(b"END:VCALENDAR") + len(b"END:VCALENDAR")
    raw = raw[:start] + _soft_broken(raw[start:end], cuts) + raw[end:]
    (reply,) = parse_reply(raw).replies
    assert (reply.attendee, reply.partstat) == (sample.attendee, sample.partstat)


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from([s for s in SAMPLES if b"base64" in s.raw()]),
    st.integers(min_value=4, max_value=200),
)
def test_any_base64_line_width_reads_the_same(sample: Sample, width: int) -> None:
    """Exchange and Gmail wrap base64 at 76; any width is read the same."""
    raw = sample.raw()
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    for part in message.walk():
        if str(part.get("Content-Transfer-Encoding", "")).lower() != "base64":
            continue
        body = str(part.get_payload()).encode().strip()
        encoded = base64.b64encode(base64.b64decode(body))
        eol = b"\r\n" if b"\r\n" in body else b"\n"
        lines = [encoded[i : i + width] for i in range(0, len(encoded), width)]
        assert body in raw
        raw = raw.replace(body, eol.join(lines))
    (reply,) = parse_reply(raw).replies
    assert (reply.attendee, reply.partstat) == (sample.attendee, sample.partstat)


def _google_comment(text: str) -> str:
    """Google Calendar puts a decline's note in X-RESPONSE-COMMENT, HTML-escaped with a
    backslash before commas and semicolons (the golang-ical test case in SOURCES.md)."""
    escaped = html.escape(text, quote=True).replace(",", "\\,").replace(";", "\\;")
    return re.sub(r"[\x00-\x1f\x7f]", " ", escaped)


GOOGLES_OWN = (
    "ATTENDEE;CUTYPE=INDIVIDUAL;ROLE=REQ-PARTICIPANT;PARTSTAT=DECLINED;CN=xxxxxx.xxxxxxxxxx@"
    'xxxxxxxxxxx.com;X-NUM-GUESTS=0;X-RESPONSE-COMMENT="Abgelehnt\\, weil ich au&szlig\\;er '
    'Haus bin":mailto:xxxxxx.xxxxxxxxxx@xxxxxxxxxxx.com'
)


def test_googles_own_decline_with_a_comment_is_read() -> None:
    (reply,) = parse_reply(calendar_mail(event(f"UID:{UID}\r\n{GOOGLES_OWN}\r\n"))).replies
    assert (reply.attendee, reply.partstat) == ("xxxxxx.xxxxxxxxxx@xxxxxxxxxxx.com", "DECLINED")


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["gmail-declined", "gmail-accepted", "gmail-tentative"]), st.text())
def test_any_note_in_googles_response_comment_leaves_the_answer(stem: str, note: str) -> None:
    """Whatever the participant writes as a note (colons, quotes, commas, semicolons, any
    script), the answer and the address are read as without it."""
    sample = GENUINE[stem]

    def with_note(props: Iterator[Prop]) -> Iterator[Prop]:
        for prop in props:
            if prop.name == "ATTENDEE":
                prop.params.append(f'X-RESPONSE-COMMENT="{_google_comment(note)}"')
            yield prop

    (reply,) = parse_reply(rewrite_calendars(sample.raw(), with_note)).replies
    assert (reply.attendee, reply.partstat) == (sample.attendee, sample.partstat)


@pytest.mark.parametrize("stem", ["gmail-accepted", "gmail-declined", "gmail-tentative"])
def test_the_invite_ics_attachment_alone_is_read(stem: str) -> None:
    """Gmail's attachment (application/ics, invite.ics) carries the answer by itself, as for
    clients that send nothing else."""
    raw = GENUINE[stem].raw()
    start = raw.index(b"Content-Type: text/calendar")
    end = raw.index(b"END:VCALENDAR", start) + len(b"END:VCALENDAR")
    stripped = raw[:start] + b"Content-Type: text/plain\r\n\r\n" + raw[end:]
    assert b"text/calendar" not in stripped
    (reply,) = parse_reply(stripped).replies
    assert (reply.attendee, reply.partstat) == (GENUINE[stem].attendee, GENUINE[stem].partstat)


@pytest.mark.parametrize("written", ["accepted", "Declined", "tEnTaTiVe"])
@pytest.mark.parametrize("sample", SAMPLES, ids=IDS)
def test_the_answer_is_read_whatever_its_letter_case(sample: Sample, written: str) -> None:
    """Parameter values are case-insensitive (RFC 5545 3.2)."""
    raw = reply_message(sample.stem, uid=UID, attendee="a@exempelby.se", partstat=written)
    assert [r.partstat for r in parse_reply(raw).replies] == [written.upper()]
