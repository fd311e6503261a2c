"""Mail transports behind one interface: SMTP relay (worker.smtp_mailer), .eml files, or memory
(for tests).

Every transport takes a finished `EmailMessage` with exactly one address in To. The envelope
recipient is that address; the envelope sender is the `Sender` address if the message has one,
otherwise the `From` address (the same rule as `smtplib.SMTP.send_message`).

Failures are raised as `TransientDeliveryError` (try again later) or `PermanentDeliveryError`
(give up), with the SMTP code and reply when there is one; see `classify_smtp_error`.
"""

from __future__ import annotations

import copy
import email.errors
import email.generator
import email.policy
import hashlib
import os
import re
import smtplib
import tempfile
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import getaddresses, parsedate_to_datetime
from functools import lru_cache
from io import BytesIO
from pathlib import Path
from typing import Any, Protocol

from core.errors import DeliveryError, PermanentDeliveryError, TransientDeliveryError
from worker import mimepolicy

__all__ = [
    "FileMailer",
    "Mailer",
    "MemoryMailer",
    "SendResult",
    "classify_smtp_error",
]


@dataclass(frozen=True)
class SendResult:
    """What the transport said when it took the message."""

    reply: str  # "250 2.0.0 Ok: queued as ABC" for SMTP; "written /path/x.eml" for files


class TokenSource(Protocol):
    """Where OAuth2 bearer tokens come from (worker.oauth.TokenProvider)."""

    def token(self) -> str: ...

    def invalidate(self) -> None: ...


class Mailer(Protocol):
    """Delivers one message at a time; raises Transient/PermanentDeliveryError on failure."""

    def send(self, message: EmailMessage) -> SendResult: ...

    def close(self) -> None: ...


# --------------------------------------------------------------------------- addresses


def envelope_recipient(message: EmailMessage) -> str:
    """The one To address; PermanentDeliveryError if there is not exactly one valid address."""
    return _single_address(message, "To")


def envelope_sender(message: EmailMessage) -> str:
    """The Sender address if the message has one, else the From address."""
    return _single_address(message, "Sender" if message["Sender"] else "From")


def _single_address(message: EmailMessage, header: str) -> str:
    # The values as stored, not parsed into header objects: a header written already folded
    # (worker.headers.set_recipient: To) would be parsed again on every read. Only the
    # address is taken, and an encoded word in a display name never holds one (RFC 2047 5).
    wanted = header.lower()
    values = [str(value) for name, value in message.raw_items() if name.lower() == wanted]
    addresses = [address for value in values for address in _addresses(value)]
    # The error names the header and what is wrong, never its value (a person's name).
    if len(addresses) != 1:
        raise PermanentDeliveryError(
            f"{header} must hold exactly one address, not {len(addresses)}"
        )
    if not _looks_like_address(addresses[0]):
        raise PermanentDeliveryError(
            f"{header} holds no valid address (one with an @, without spaces, < or >)"
        )
    return addresses[0]


@lru_cache(maxsize=1024)
def _addresses(value: str) -> tuple[str, ...]:
    """The addresses in one header's value: the sender's is the same on every message."""
    return tuple(address for _, address in getaddresses([value]) if address)


def _looks_like_address(address: str) -> bool:
    # Only what would break the SMTP command line or is plainly not a mailbox; the relay
    # does the real checking and answers 5xx for the rest.
    local, at, domain = address.rpartition("@")
    bad_chars = any(ch.isspace() or ch in "<>" or ord(ch) < 32 for ch in address)
    return bool(at and local and domain) and not bad_chars


class _Generator(email.generator.BytesGenerator):
    """The email package's writer, except that a part which carries its body as written
    (worker.prebuilt.PrebuiltPart: an attachment encoded once per process) has those bytes
    copied instead of being split into lines and written again. The output is the same."""

    def _dispatch(self, msg: Any) -> None:
        wire_body = getattr(msg, "wire_body", None)
        body = wire_body(self.policy) if wire_body is not None else None
        if body is None:
            super()._dispatch(msg)  # type: ignore[misc]
            return
        self._fp.write(body)  # type: ignore[attr-defined]


def wire_bytes(message: EmailMessage, policy: email.policy.Policy) -> bytes:
    """The message as sent: what ``message.as_bytes(policy=policy)`` gives."""
    try:
        out = BytesIO()
        _Generator(out, mangle_from_=False, policy=policy).flatten(message, unixfrom=False)
        return out.getvalue()
    except (email.errors.MessageError, ValueError) as exc:  # e.g. a header with a line break
        raise PermanentDeliveryError(f"the message cannot be written out: {exc}") from exc


# --------------------------------------------------------------------------- errors


class StartTlsRefused(smtplib.SMTPResponseException):
    """The server refused STARTTLS (smtplib returns that refusal instead of raising it)."""


# Failures of the session rather than of the message: a wrong password, a relay that will
# not greet us. Fixing the settings makes the same message deliverable, so these stay
# transient even when the code is 5xx. (STARTTLS or AUTH not offered, SMTPNotSupportedError,
# is such a fault too; it carries no code and ends up transient below.)
_SESSION_ERRORS = (
    smtplib.SMTPAuthenticationError,
    smtplib.SMTPConnectError,
    smtplib.SMTPHeloError,
    StartTlsRefused,
)


def classify_smtp_error(exc: BaseException) -> TransientDeliveryError | PermanentDeliveryError:
    """Map an smtplib/socket exception to a delivery error that says whether to retry.

    4xx replies, connection faults and session faults (greeting, EHLO, STARTTLS, AUTH) are
    transient; 5xx replies to MAIL, RCPT or DATA and malformed addresses are permanent. Anything
    unknown is transient: retrying a message that could have gone is better than losing it.
    """
    if isinstance(exc, TransientDeliveryError | PermanentDeliveryError):
        return exc
    if isinstance(exc, smtplib.SMTPRecipientsRefused) and exc.recipients:
        address, (code, text) = next(iter(exc.recipients.items()))
        return _by_code(code, text, f"the SMTP server refused recipient {address}")
    if isinstance(exc, _SESSION_ERRORS):
        smtp_code, reply = code_and_reply(exc.smtp_code, exc.smtp_error)
        return TransientDeliveryError(
            f"SMTP session failed ({type(exc).__name__}): {reply or exc}",
            smtp_code=smtp_code,
            reply=reply,
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        return _by_code(exc.smtp_code, exc.smtp_error, "the SMTP server refused the message")
    # Before ValueError: ssl.SSLCertVerificationError is both, and is a connection fault.
    # (smtplib's own exceptions are OSErrors too; those left are told apart below.)
    if isinstance(exc, OSError) and not isinstance(exc, smtplib.SMTPException):
        return TransientDeliveryError(f"connection to the SMTP server failed: {exc}")
    if isinstance(exc, ValueError):  # smtplib's check for CR/LF in addresses, encoding errors
        return PermanentDeliveryError(f"malformed message or address: {exc}")
    return TransientDeliveryError(f"SMTP delivery failed ({type(exc).__name__}): {exc}")


def _by_code(
    code: int, text: bytes | str, what: str
) -> TransientDeliveryError | PermanentDeliveryError:
    smtp_code, reply = code_and_reply(code, text)
    kind = PermanentDeliveryError if 500 <= code <= 599 else TransientDeliveryError
    return kind(f"{what}: {reply}", smtp_code=smtp_code, reply=reply)


def code_and_reply(code: int, text: bytes | str) -> tuple[int | None, str]:
    decoded = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    if code > 0:  # smtplib uses -1 when there was no reply to speak of
        return code, f"{code} {decoded}".rstrip()
    return None, decoded


# Every fault smtplib or the socket may raise while sending; classify_smtp_error maps them.
SMTP_FAULTS = (smtplib.SMTPException, OSError, ValueError)


# --------------------------------------------------------------------------- files

_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._@+=-]")
_MAX_STEM = 120


class FileMailer:
    """Writes each message as `<outbox>/<YYYY-MM-DD>/<Message-ID>.eml`, atomically.

    The day is the Date header's own calendar day. Sending the same Message-ID again
    overwrites the same file, so a retried send leaves one file.
    """

    def __init__(self, outbox_dir: Path) -> None:
        self.outbox_dir = Path(outbox_dir)

    def send(self, message: EmailMessage) -> SendResult:
        """Write the message; return "written <path>"."""
        target = self.path_for(message)
        data = wire_bytes(message, mimepolicy.SMTP)
        try:
            _write_atomically(target, data)
        except OSError as exc:  # disk full, permissions: may pass once fixed
            raise TransientDeliveryError(f"could not write {target}: {exc}") from exc
        return SendResult(f"written {target}")

    def close(self) -> None:
        """Nothing to release; here for the Mailer interface."""

    def path_for(self, message: EmailMessage) -> Path:
        """Where send() writes this message."""
        return self.outbox_dir / _message_day(message) / f"{_safe_stem(message)}.eml"


def _message_day(message: EmailMessage) -> str:
    value = message["Date"]
    try:
        return parsedate_to_datetime(str(value)).date().isoformat()
    except (TypeError, ValueError):
        # Without a Date the file's place would depend on when it was sent, and a retry
        # on another day would make a second file.
        raise PermanentDeliveryError(f"the message has no valid Date header: {value!r}") from None


def _safe_stem(message: EmailMessage) -> str:
    message_id = str(message["Message-ID"] or "").strip().strip("<>").strip()
    if not message_id:
        raise PermanentDeliveryError("the message has no Message-ID to name its file after")
    stem = _UNSAFE_FILENAME.sub("_", message_id)[:_MAX_STEM]
    if stem != message_id or stem.startswith("."):
        # Replacing characters can make two ids equal; the hash keeps their files apart.
        digest = hashlib.sha256(message_id.encode("utf-8", "surrogateescape")).hexdigest()
        stem = f"{stem.lstrip('.')}-{digest[:12]}"
    return stem


def _write_atomically(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    # Same directory, so os.replace is a rename: readers see the old file or the new one.
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------- memory


@dataclass
class _Failure:
    error: BaseException
    times: int | None  # None: every time


class MemoryMailer:
    """Keeps sent messages in `.messages`, for tests; can be told to fail recipients.

    It records a copy as sent, so changing a message afterwards does not change the record.
    """

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.closed = False
        self._failures: dict[str, _Failure] = {}
        self._lock = threading.Lock()

    def fail_recipient(
        self, address: str, error: BaseException, *, times: int | None = None
    ) -> None:
        """Make sends to `address` fail with `error`, `times` times or (None) until told otherwise.

        The error is raised as SmtpMailer would: delivery errors and exceptions of other
        kinds (simulated bugs) as given, smtplib and socket errors classified.
        """
        with self._lock:
            self._failures[address.lower()] = _Failure(error, times)

    def succeed_recipient(self, address: str) -> None:
        """Undo fail_recipient."""
        with self._lock:
            self._failures.pop(address.lower(), None)

    def send(self, message: EmailMessage) -> SendResult:
        """Record the message or raise the failure set for its recipient."""
        recipient = envelope_recipient(message)
        envelope_sender(message)  # malformed senders fail here as with SMTP
        wire_bytes(message, mimepolicy.SMTP)  # fail as a real transport would
        with self._lock:
            error = self._take_failure(recipient)
            if error is None:
                self.messages.append(copy.deepcopy(message))
                return SendResult(f"250 2.0.0 Ok: kept in memory as message {len(self.messages)}")
        if isinstance(error, DeliveryError) or not isinstance(error, SMTP_FAULTS):
            raise error.with_traceback(None)  # the same instance may be raised again
        raise classify_smtp_error(error) from error

    def close(self) -> None:
        """Mark the mailer closed (tests check that callers close their mailer)."""
        self.closed = True

    def _take_failure(self, recipient: str) -> BaseException | None:
        failure = self._failures.get(recipient.lower())
        if failure is None:
            return None
        if failure.times is not None:
            failure.times -= 1
            if failure.times <= 0:
                del self._failures[recipient.lower()]
        return failure.error
