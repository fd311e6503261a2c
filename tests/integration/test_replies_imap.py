"""The reply mailbox over IMAP (worker.imapbox) against a real Dovecot: TLS, password and
XOAUTH2 login, a mailbox full of junk survived with one log line per ignored reply and no
personal data, messages moved out of the inbox; and XOAUTH2 for sending through Dovecot's
submission service. The token endpoint is a real HTTP server whose JWTs Dovecot checks."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from email.message import EmailMessage

import pytest

from core.settings import ImapConfig, SmtpConfig
from tests.fixtures.imap import (
    CLIENT_ID,
    CLIENT_SECRET,
    MAILBOX,
    Dovecot,
    RelayTarget,
    TokenEndpoint,
)
from tests.reply_samples import GENUINE, reply_message
from worker.imapbox import Handled, ImapError, poll_mailbox
from worker.oauth import OAuthError, TokenProvider
from worker.replies import Reply, parse_reply
from worker.smtp_mailer import SmtpMailer

pytestmark = pytest.mark.integration

UID = "exempel-samverkansmote-var-2027@exempelby.se"
KNOWN = "anna.rektor@exempelby.se"
PERSONAL = ("anna.rektor", "okand", "Anna", "Åberg", UID)


def judge(raw: bytes) -> Handled:
    """Stands in for the database: answers from KNOWN to UID at SEQUENCE >= 1 count."""
    parsed = parse_reply(raw)
    if not parsed.replies:
        return Handled((parsed.problem or "no-answer",), False)
    outcomes = []
    for reply in parsed.replies:
        if reply.uid != UID:
            outcomes.append("unknown-meeting")
        elif reply.attendee != KNOWN:
            outcomes.append("unknown-attendee")
        elif reply.sequence < 1:
            outcomes.append("old-sequence")
        else:
            outcomes.append("recorded")
    return Handled(tuple(outcomes), True)


def junk(i: int) -> bytes:
    """Junk of seven kinds, by turns."""
    kind = i % 7
    if kind == 0:
        return f"Subject: Fråga {i}\r\n\r\nKan vi flytta mötet?\r\n".encode()
    if kind == 1:
        return b"Content-Type: text/calendar; method=REPLY\r\n\r\nBEGIN:VCALENDAR\r\nBEGIN:VEV"
    if kind == 2:
        return (
            b"Content-Type: text/calendar; method=REPLY; charset=x-okand\r\n\r\n"
            b"BEGIN:VCALENDAR\r\nMETHOD:REPLY\r\nBEGIN:VEVENT\r\nUID:\xff\xfe\r\n"
            b"END:VEVENT\r\nEND:VCALENDAR\r\n"
        )
    client = ("outlook", "gmail", "apple")[i % 3]
    if kind == 3:
        return reply_message(client, uid=f"okand-{i}@x.se", attendee=KNOWN, partstat="ACCEPTED")
    if kind == 4:
        return reply_message(
            client, uid=UID, attendee=f"okand{i}@annanstans.se", partstat="DECLINED"
        )
    if kind == 5:
        return reply_message(client, uid=UID, attendee=KNOWN, partstat="ACCEPTED", sequence=0)
    return b"\x00\x01\x02 " * (i % 50 + 1)


def test_a_mailbox_of_500_junk_mails_is_survived(
    dovecot: Dovecot, caplog: pytest.LogCaptureFixture
) -> None:
    good = reply_message(
        "outlook", uid=UID, attendee=KNOWN, partstat="ACCEPTED", sequence=1, name="Anna Åberg"
    )
    huge = good + b"\r\n" + b"x" * 2_100_000  # larger than any reply: not even downloaded
    messages = [junk(i) for i in range(499)] + [huge]
    dovecot.append(*messages[:250], good, *messages[250:])
    config = ImapConfig.from_url(dovecot.url)
    with caplog.at_level(logging.INFO, logger="samverkan.replies"):
        result = poll_mailbox(config, judge, ssl_context=dovecot.cert.client_context(), batch=1000)
    assert result.messages == 501
    assert result.recorded == 1
    assert sum(result.ignored.values()) == 500
    assert result.ignored["too-large"] == 1
    ignored = [r for r in caplog.records if getattr(r, "action", "") == "replies.ignored"]
    assert len(ignored) == 500
    for record in ignored:
        text = record.getMessage() + repr(record.__dict__)
        assert not any(word in text for word in PERSONAL), text
    answers = 1 + sum(1 for i in range(499) if i % 7 in (3, 4, 5))
    assert dovecot.count("INBOX") == 0
    assert dovecot.count("Samverkan/Lasta") == answers
    assert dovecot.count("Samverkan/Ignorerade") == 501 - answers


def test_the_genuine_replies_as_stored_are_read_from_the_mailbox(dovecot: Dovecot) -> None:
    """The genuine Outlook, Gmail and Apple replies, byte for byte as stored, through IMAP:
    each gives its own answer and goes to the done folder."""
    dovecot.append(*(sample.raw() for sample in GENUINE.values()))
    read: list[Reply] = []

    def collect(raw: bytes) -> Handled:
        parsed = parse_reply(raw)
        read.extend(parsed.replies)
        return Handled(("recorded",) * len(parsed.replies), bool(parsed.replies))

    result = poll_mailbox(
        ImapConfig.from_url(dovecot.url), collect, ssl_context=dovecot.cert.client_context()
    )
    assert result.recorded == len(GENUINE)
    assert sorted(read, key=repr) == sorted(
        (Reply(s.uid, s.attendee, s.partstat, s.sequence, s.dtstamp) for s in GENUINE.values()),
        key=repr,
    )
    assert (dovecot.count("INBOX"), dovecot.count("Samverkan/Lasta")) == (0, len(GENUINE))


def test_a_handler_that_fails_does_not_stop_the_poll(dovecot: Dovecot) -> None:
    dovecot.append(b"Subject: a\r\n\r\n1\r\n", b"Subject: b\r\n\r\n2\r\n")
    calls = Counter[str]()

    def broken(raw: bytes) -> Handled:
        calls["n"] += 1
        raise RuntimeError("a bug")

    result = poll_mailbox(
        ImapConfig.from_url(dovecot.url), broken, ssl_context=dovecot.cert.client_context()
    )
    assert (calls["n"], result.ignored["failed"]) == (2, 2)
    assert dovecot.count("Samverkan/Ignorerade") == 2


def test_the_certificate_is_verified(dovecot: Dovecot) -> None:
    with pytest.raises(ImapError, match="cannot reach"):
        poll_mailbox(ImapConfig.from_url(dovecot.url), judge)  # the system's trust store


def test_a_wrong_password_is_a_clear_error_without_the_password(dovecot: Dovecot) -> None:
    url = dovecot.url.replace(":hemligt-imap-1@", ":fel-losen@")
    with pytest.raises(ImapError, match="refused the login") as caught:
        poll_mailbox(ImapConfig.from_url(url), judge, ssl_context=dovecot.cert.client_context())
    assert "fel-losen" not in str(caught.value)


def provider(endpoint: TokenEndpoint, **kwargs: object) -> TokenProvider:
    return TokenProvider(
        endpoint.token_url,
        CLIENT_ID,
        CLIENT_SECRET,
        "https://outlook.office365.com/.default",
        **kwargs,  # type: ignore[arg-type]
    )


def test_imap_login_with_an_oauth2_token(dovecot: Dovecot, token_endpoint: TokenEndpoint) -> None:
    dovecot.append(reply_message("gmail", uid=UID, attendee=KNOWN, partstat="DECLINED", sequence=1))
    tokens = provider(token_endpoint)
    checked = token_endpoint.introspections
    config = ImapConfig.from_url(dovecot.oauth_url)
    assert config.password is None
    result = poll_mailbox(config, judge, tokens=tokens, ssl_context=dovecot.cert.client_context())
    assert result.recorded == 1
    assert tokens.requests == 1
    assert token_endpoint.introspections > checked  # Dovecot asked the endpoint


def test_a_refused_token_is_renewed_at_the_next_poll(
    dovecot: Dovecot, token_endpoint: TokenEndpoint
) -> None:
    tokens = provider(token_endpoint)
    config = ImapConfig.from_url(dovecot.oauth_url)
    context = dovecot.cert.client_context()
    poll_mailbox(config, judge, tokens=tokens, ssl_context=context)
    token_endpoint.revoke_all()  # e.g. the app's permission was changed
    with pytest.raises(ImapError, match="refused the OAuth2 token") as caught:
        poll_mailbox(config, judge, tokens=tokens, ssl_context=context)
    assert tokens.token().split(".")[0] not in str(caught.value)  # never the token itself
    assert tokens.requests == 2  # forgotten after the refusal, so a new one was fetched
    poll_mailbox(config, judge, tokens=tokens, ssl_context=context)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_token_is_reused_and_renewed_before_it_expires(token_endpoint: TokenEndpoint) -> None:
    clock = Clock()
    tokens = provider(token_endpoint, clock=clock, refresh_margin=300.0)
    first = tokens.token()
    clock.now += 3600 - 301  # still more than the margin left
    assert tokens.token() == first
    clock.now += 2  # less than the margin left: renewed before it expires
    second = tokens.token()
    assert second != first
    assert tokens.requests == 2
    assert token_endpoint.claims(second) is not None


def test_threads_share_one_token_request(token_endpoint: TokenEndpoint) -> None:
    tokens = provider(token_endpoint)
    got: list[str] = []
    threads = [threading.Thread(target=lambda: got.append(tokens.token())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(got)) == 1 and tokens.requests == 1


def test_a_refused_client_is_a_clear_error_without_the_secret(
    token_endpoint: TokenEndpoint,
) -> None:
    tokens = TokenProvider(token_endpoint.token_url, CLIENT_ID, "fel-hemlighet")
    with pytest.raises(OAuthError, match="HTTP 401 \\(invalid_client\\)") as caught:
        tokens.token()
    assert "fel-hemlighet" not in str(caught.value)


def test_smtp_sends_with_an_oauth2_token_through_dovecot_submission(
    dovecot_submission: tuple[Dovecot, RelayTarget], token_endpoint: TokenEndpoint
) -> None:
    dovecot, relay = dovecot_submission
    config = SmtpConfig(
        host="localhost",
        port=dovecot.submission_port,
        username=MAILBOX,
        starttls=True,
        auth="xoauth2",
        timeout=10.0,
    )
    tokens = provider(token_endpoint)
    mailer = SmtpMailer(config, ssl_context=dovecot.cert.client_context(), tokens=tokens)
    message = EmailMessage()
    message["From"] = MAILBOX
    message["To"] = "rektor@exempelby.se"
    message["Subject"] = "Kallelse"
    message["Date"] = "Tue, 23 Mar 2027 09:00:00 +0100"
    message["Message-ID"] = "<xoauth2-test@exempelby.se>"
    message.set_content("Hej!\n")
    try:
        mailer.send(message)
    finally:
        mailer.close()
    ((mail_from, rcpt_tos, data),) = relay.received
    assert (mail_from, rcpt_tos) == (MAILBOX, ["rektor@exempelby.se"])
    assert b"Message-ID: <xoauth2-test@exempelby.se>" in data
    assert tokens.requests == 1


def test_smtp_refuses_a_revoked_token_as_a_transient_failure(
    dovecot_submission: tuple[Dovecot, RelayTarget], token_endpoint: TokenEndpoint
) -> None:
    dovecot, relay = dovecot_submission
    from core.errors import TransientDeliveryError

    config = SmtpConfig(
        host="localhost",
        port=dovecot.submission_port,
        username=MAILBOX,
        starttls=True,
        auth="xoauth2",
        timeout=10.0,
    )
    tokens = provider(token_endpoint)
    tokens.token()
    token_endpoint.revoke_all()
    mailer = SmtpMailer(config, ssl_context=dovecot.cert.client_context(), tokens=tokens)
    message = EmailMessage()
    message["From"] = MAILBOX
    message["To"] = "rektor@exempelby.se"
    message["Subject"] = "x"
    message.set_content("x\n")
    try:
        with pytest.raises(TransientDeliveryError):
            mailer.send(message)
    finally:
        mailer.close()
    assert relay.received == []
    assert tokens.requests == 1
    tokens.token()
    assert tokens.requests == 2  # the refused token was forgotten


def test_a_message_over_the_size_limit_is_never_downloaded(dovecot: Dovecot) -> None:
    dovecot.append(b"Subject: stor\r\n\r\n" + b"x" * 5000 + b"\r\n")
    seen: list[int] = []

    def handler(raw: bytes) -> Handled:
        seen.append(len(raw))
        return Handled(("no-calendar",), False)

    result = poll_mailbox(
        ImapConfig.from_url(dovecot.url),
        handler,
        ssl_context=dovecot.cert.client_context(),
        max_bytes=1000,
    )
    assert (seen, dict(result.ignored)) == ([], {"too-large": 1})
    assert dovecot.count("Samverkan/Ignorerade") == 1
