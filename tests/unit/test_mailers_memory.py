"""MemoryMailer, and the mapping from smtplib/socket errors to delivery errors."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import make_msgid

import pytest

from core.errors import DeliveryError, PermanentDeliveryError, TransientDeliveryError
from worker.mailers import MemoryMailer, classify_smtp_error

RECIPIENT = "rektor@skolan.example"


def make_message(to: str = RECIPIENT, subject: str = "Påminnelse") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "paminnelser@kommun.example"
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = "Mon, 02 Feb 2026 08:00:00 +0100"
    message["Message-ID"] = make_msgid(domain="samverkan.test")
    message.set_content("Hej!\n")
    return message


# --------------------------------------------------------------------------- MemoryMailer


def test_memory_mailer_records_sent_messages_in_order() -> None:
    mailer = MemoryMailer()

    results = [mailer.send(make_message(subject=f"nr {n}")) for n in range(3)]

    assert [m["Subject"] for m in mailer.messages] == ["nr 0", "nr 1", "nr 2"]
    assert all(r.reply.startswith("250 ") for r in results)


def test_memory_mailer_records_the_message_as_sent_not_as_changed_later() -> None:
    mailer = MemoryMailer()
    message = make_message(subject="före")

    mailer.send(message)
    message.replace_header("Subject", "efter")

    assert mailer.messages[0]["Subject"] == "före"


def test_a_failed_recipient_raises_the_given_delivery_error_and_nothing_is_recorded() -> None:
    mailer = MemoryMailer()
    error = PermanentDeliveryError("no such user", smtp_code=550, reply="550 5.1.1 No such user")
    mailer.fail_recipient("Finns.Inte@skolan.example", error)

    with pytest.raises(PermanentDeliveryError) as caught:
        mailer.send(make_message(to="finns.inte@skolan.example"))

    assert caught.value is error
    assert mailer.messages == []


def test_an_smtplib_error_given_is_raised_classified_as_smtp_mailer_would() -> None:
    mailer = MemoryMailer()
    mailer.fail_recipient(RECIPIENT, smtplib.SMTPDataError(451, b"4.3.0 Try again later"))

    with pytest.raises(TransientDeliveryError) as caught:
        mailer.send(make_message())

    assert caught.value.smtp_code == 451
    assert caught.value.reply == "451 4.3.0 Try again later"


def test_an_error_of_another_kind_is_raised_as_given_like_a_bug_would_be() -> None:
    mailer = MemoryMailer()
    mailer.fail_recipient(RECIPIENT, RuntimeError("bug"))

    with pytest.raises(RuntimeError, match="bug"):
        mailer.send(make_message())


def test_a_recipient_failed_twice_is_delivered_the_third_time() -> None:
    mailer = MemoryMailer()
    mailer.fail_recipient(RECIPIENT, TransientDeliveryError("busy"), times=2)

    for _ in range(2):
        with pytest.raises(TransientDeliveryError):
            mailer.send(make_message())
    mailer.send(make_message(subject="tredje"))

    assert [m["Subject"] for m in mailer.messages] == ["tredje"]


def test_other_recipients_are_delivered_while_one_fails() -> None:
    mailer = MemoryMailer()
    mailer.fail_recipient("finns.inte@skolan.example", PermanentDeliveryError())

    mailer.send(make_message(to="annan@skolan.example"))

    assert [m["To"] for m in mailer.messages] == ["annan@skolan.example"]


def test_succeed_recipient_undoes_a_failure() -> None:
    mailer = MemoryMailer()
    mailer.fail_recipient(RECIPIENT, PermanentDeliveryError())

    mailer.succeed_recipient(RECIPIENT)
    mailer.send(make_message())

    assert len(mailer.messages) == 1


@pytest.mark.parametrize("to", ["", "inte-en-adress", "a@skolan.example, b@skolan.example"])
def test_memory_mailer_rejects_a_message_without_exactly_one_valid_recipient(to: str) -> None:
    mailer = MemoryMailer()

    with pytest.raises(PermanentDeliveryError):
        mailer.send(make_message(to=to))

    assert mailer.messages == []


def test_close_marks_the_memory_mailer_closed() -> None:
    mailer = MemoryMailer()

    mailer.close()

    assert mailer.closed


# --------------------------------------------------------------------------- classify_smtp_error

T, P = TransientDeliveryError, PermanentDeliveryError


CLASSIFICATION = [
    # Replies about this message: 4xx transient, 5xx permanent.
    (smtplib.SMTPRecipientsRefused({"a@b.se": (550, b"5.1.1 No such user")}),
     P, 550, "550 5.1.1 No such user"),
    (smtplib.SMTPRecipientsRefused({"a@b.se": (553, b"5.1.3 Error: malformed address")}),
     P, 553, "553 5.1.3 Error: malformed address"),
    (smtplib.SMTPRecipientsRefused({"a@b.se": (451, b"4.3.0 Try again later")}),
     T, 451, "451 4.3.0 Try again later"),
    (smtplib.SMTPRecipientsRefused({"a@b.se": (421, b"4.3.2 Shutting down")}),
     T, 421, "421 4.3.2 Shutting down"),
    (smtplib.SMTPSenderRefused(553, b"5.7.1 Sender not owned", "x@kommun.se"),
     P, 553, "553 5.7.1 Sender not owned"),
    (smtplib.SMTPDataError(554, b"5.7.1 Rejected as spam"),
     P, 554, "554 5.7.1 Rejected as spam"),
    (smtplib.SMTPDataError(452, b"4.3.1 Insufficient storage"),
     T, 452, "452 4.3.1 Insufficient storage"),
    (smtplib.SMTPResponseException(421, "4.3.2 Shutting down"),
     T, 421, "421 4.3.2 Shutting down"),
    # Faults of the session, not the message: transient even with 5xx.
    (smtplib.SMTPAuthenticationError(535, b"5.7.8 Authentication credentials invalid"),
     T, 535, "535 5.7.8 Authentication credentials invalid"),
    (smtplib.SMTPConnectError(554, b"No SMTP service here"),
     T, 554, "554 No SMTP service here"),
    (smtplib.SMTPHeloError(501, b"Syntax: EHLO hostname"),
     T, 501, "501 Syntax: EHLO hostname"),
    (smtplib.SMTPNotSupportedError("STARTTLS extension not supported by server."),
     T, None, None),
    # Connection faults.
    (smtplib.SMTPServerDisconnected("Connection unexpectedly closed"), T, None, None),
    (ConnectionRefusedError(111, "Connection refused"), T, None, None),
    (ConnectionResetError(104, "Connection reset by peer"), T, None, None),
    (TimeoutError("timed out"), T, None, None),
    (ssl.SSLCertVerificationError("certificate verify failed"), T, None, None),
    # A reply without a real code, and errors nobody foresaw: retry rather than lose.
    (smtplib.SMTPDataError(-1, b"garbled"), T, None, "garbled"),
    (RuntimeError("unforeseen"), T, None, None),
    # smtplib refusing a line break in an address: the message is malformed.
    (ValueError("command and arguments contain prohibited newline characters"),
     P, None, None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("exc", "kind", "code", "reply"),
    CLASSIFICATION,
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else None,
)
def test_classify_smtp_error_maps_exceptions_to_delivery_errors(
    exc: BaseException, kind: type[DeliveryError], code: int | None, reply: str | None
) -> None:
    error = classify_smtp_error(exc)

    assert type(error) is kind
    assert error.smtp_code == code
    assert error.reply == reply


@pytest.mark.parametrize("error", [TransientDeliveryError("x"), PermanentDeliveryError("y")])
def test_classify_smtp_error_returns_an_already_classified_error_unchanged(
    error: DeliveryError,
) -> None:
    assert classify_smtp_error(error) is error
