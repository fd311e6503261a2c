"""The SMTP transport: one reused connection per process to the relay, sent under a lock.

The envelope rules and the mapping of SMTP failures to Transient/PermanentDeliveryError are
in worker.mailers, shared with the file and memory mailers.
"""

from __future__ import annotations

import base64
import contextlib
import os
import smtplib
import ssl
import threading
import weakref
from dataclasses import dataclass, field
from email.message import EmailMessage

from core.errors import PermanentDeliveryError
from core.settings import SmtpConfig
from worker import mimepolicy
from worker.mailers import (
    SMTP_FAULTS,
    SendResult,
    StartTlsRefused,
    TokenSource,
    classify_smtp_error,
    code_and_reply,
    envelope_recipient,
    envelope_sender,
    wire_bytes,
)
from worker.oauth import xoauth2_string

__all__ = ["SmtpMailer"]


_LIVE_SMTP_MAILERS: weakref.WeakSet[SmtpMailer] = weakref.WeakSet()


def _fresh_locks_after_fork() -> None:
    # A thread of the parent may have held the lock at fork time; in the child that thread
    # does not exist and would never release it.
    for mailer in list(_LIVE_SMTP_MAILERS):
        mailer._lock = threading.Lock()


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_fresh_locks_after_fork)

# A dropped connection noticed at MAIL means the server closed our idle connection: nothing
# of the message was sent yet, so one retry on a fresh connection cannot duplicate it.
_STALE_CONNECTION = (smtplib.SMTPServerDisconnected, ConnectionError)


@dataclass(frozen=True)
class _Envelope:
    sender: str
    recipient: str
    international: bool  # non-ASCII addresses: needs SMTPUTF8 at the server
    data: bytes = field(repr=False)

    @classmethod
    def of(cls, message: EmailMessage) -> _Envelope:
        sender, recipient = envelope_sender(message), envelope_recipient(message)
        international = not (sender + recipient).isascii()
        policy = mimepolicy.SMTPUTF8 if international else mimepolicy.SMTP
        return cls(sender, recipient, international, wire_bytes(message, policy))

    @property
    def stuffed(self) -> bytes:
        """The DATA as sent: dot-stuffed, ended by CRLF "." CRLF (see `dot_stuffed`)."""
        return dot_stuffed(self.data)

    def mail_options(self, conn: smtplib.SMTP) -> list[str]:
        if self.international:
            if not conn.has_extn("smtputf8"):
                raise PermanentDeliveryError(
                    f"the SMTP server does not accept internationalised addresses "
                    f"(SMTPUTF8) such as {self.sender} or {self.recipient}"
                )
            return ["SMTPUTF8", "BODY=8BITMIME"]
        if not self.data.isascii() and conn.has_extn("8bitmime"):
            return ["BODY=8BITMIME"]
        return []


class SmtpMailer:
    """Sends through an SMTP relay over one reused connection per process.

    Thread-safe: sends are serialised on the one connection. After os.fork() the child opens
    its own connection and never touches the parent's.
    """

    def __init__(
        self,
        config: SmtpConfig,
        local_hostname: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        tokens: TokenSource | None = None,
    ) -> None:
        if config.auth == "xoauth2" and tokens is None:
            raise ValueError("auth=xoauth2 needs a token provider (SAMVERKAN_OAUTH_*)")
        self._config = config
        self._tokens = tokens
        self._local_hostname = local_hostname
        # Verifying context by default: smtplib's own default does not check certificates.
        self._ssl_context = ssl_context or ssl.create_default_context()
        self._lock = threading.Lock()
        self._conn: smtplib.SMTP | None = None
        self._pid = 0  # the process that opened self._conn
        _LIVE_SMTP_MAILERS.add(self)

    def send(self, message: EmailMessage) -> SendResult:
        """Deliver the message; return the server's reply to DATA, e.g. "250 2.0.0 Ok"."""
        envelope = _Envelope.of(message)
        with self._lock:
            try:
                return self._transact(envelope)
            except SMTP_FAULTS as exc:
                self._recover_after(exc)
                raise classify_smtp_error(exc) from exc

    def close(self) -> None:
        """Say QUIT and close the connection; a later send() opens a new one."""
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                # Closing anyway if QUIT fails; the server forgets the session on its own.
                with contextlib.suppress(*SMTP_FAULTS):
                    self._conn.quit()
            self._discard()

    def _transact(self, envelope: _Envelope) -> SendResult:
        conn, reused = self._checkout()
        try:
            mail = _start(conn, envelope)
        except _STALE_CONNECTION:
            if not reused:
                raise
            self._discard()
            conn, _ = self._checkout()
            mail = _start(conn, envelope)
        if mail.pipelined:
            replies = _pipelined_replies(conn, envelope, mail)
        else:
            replies = _one_at_a_time(conn, envelope, mail)
        if replies[2][0] != 354:  # DATA
            raise smtplib.SMTPDataError(*replies[2])
        code, text = _data(conn, envelope.stuffed)
        if code != 250:
            raise smtplib.SMTPDataError(code, text)
        return SendResult(code_and_reply(code, text)[1])

    def _checkout(self) -> tuple[smtplib.SMTP, bool]:
        """The open connection and True, or a new connection and False."""
        if self._conn is not None and self._pid == os.getpid():
            return self._conn, True
        self._discard()  # a connection inherited over fork() belongs to the parent
        self._conn = self._open()
        self._pid = os.getpid()
        return self._conn, False

    def _open(self) -> smtplib.SMTP:
        cfg = self._config
        conn: smtplib.SMTP
        if cfg.ssl:
            conn = smtplib.SMTP_SSL(
                cfg.host,
                cfg.port,
                local_hostname=self._local_hostname,
                timeout=cfg.timeout,
                context=self._ssl_context,
            )
        else:
            conn = smtplib.SMTP(
                cfg.host, cfg.port, local_hostname=self._local_hostname, timeout=cfg.timeout
            )
        try:
            conn.ehlo_or_helo_if_needed()
            if cfg.starttls:
                code, text = conn.starttls(context=self._ssl_context)
                if code != 220:
                    raise StartTlsRefused(code, text)
                conn.ehlo_or_helo_if_needed()
            if cfg.auth == "xoauth2" and self._tokens is not None and cfg.username:
                _login_xoauth2(conn, cfg.username, self._tokens)
            elif cfg.username:
                _login(conn, cfg.username, cfg.password or "")
        except BaseException:
            conn.close()
            raise
        return conn

    def _recover_after(self, exc: BaseException) -> None:
        """Keep the connection after a recipient's 5xx (the session is fine); else drop it."""
        conn = self._conn
        refused = isinstance(exc, smtplib.SMTPRecipientsRefused) and all(
            500 <= code <= 599 for code, _ in exc.recipients.values()
        )
        if conn is not None and refused:
            try:
                if conn.rset()[0] == 250:
                    return
            except SMTP_FAULTS:
                pass
        self._discard()

    def _discard(self) -> None:
        # No QUIT: after an error the session's state is unknown, and after fork() the
        # socket is shared with the parent. close() only closes our file descriptor.
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


def _login(conn: smtplib.SMTP, username: str, password: str) -> None:
    if (username + password).isascii():
        conn.login(username, password)
        return
    # smtplib sends credentials as ASCII only, and Swedish passwords may well hold å, ä or ö.
    # AUTH PLAIN is defined over UTF-8 (RFC 4616), so send that one ourselves.
    if "PLAIN" not in str(conn.esmtp_features.get("auth", "")).upper().split():
        raise smtplib.SMTPNotSupportedError(
            "the credentials are not ASCII, which needs AUTH PLAIN; the server does not offer it"
        )
    token = base64.b64encode(f"\0{username}\0{password}".encode()).decode("ascii")
    code, text = conn.docmd("AUTH", f"PLAIN {token}")
    if code != 235:
        raise smtplib.SMTPAuthenticationError(code, text)


def _login_xoauth2(conn: smtplib.SMTP, username: str, tokens: TokenSource) -> None:
    """SASL XOAUTH2 with a bearer token. A refused token is forgotten, so the next
    connection (the retry) asks the token endpoint for a fresh one."""
    if "XOAUTH2" not in str(conn.esmtp_features.get("auth", "")).upper().split():
        raise smtplib.SMTPNotSupportedError("the SMTP server does not offer AUTH XOAUTH2")
    initial = xoauth2_string(username, tokens.token())
    replies = iter([initial])

    def respond(challenge: bytes | None = None) -> str:
        # After a refusal the server sends a 334 with an error (JSON); the answer is empty.
        return next(replies, "")

    try:
        conn.auth("XOAUTH2", respond, initial_response_ok=True)
    except smtplib.SMTPAuthenticationError:
        tokens.invalidate()
        raise


def dot_stuffed(data: bytes) -> bytes:
    """What smtplib's `data()` sends after the server's 354, without its regular expression:
    a "." doubled at the start of each line (RFC 5321 4.5.2), a line end added if missing,
    then the terminating "." line. The same bytes (tests/unit/test_mimepolicy.py); a
    replace is some forty times faster than smtplib's `re.sub` over a 270 kB mailout."""
    stuffed = data.replace(b"\n.", b"\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    if not stuffed.endswith(b"\r\n"):
        stuffed += b"\r\n"
    return stuffed + b".\r\n"


def _data(conn: smtplib.SMTP, stuffed: bytes) -> _Reply:
    """What smtplib's `data()` does after the server's 354: send `stuffed` (already
    dot-stuffed and terminated) and read the reply."""
    conn.send(stuffed)
    return conn.getreply()


_Reply = tuple[int, bytes]  # an SMTP reply: code and text


@dataclass(frozen=True)
class _Mail:
    """The reply to MAIL, and whether RCPT and DATA were sent with it (pipelined)."""

    code: int
    text: bytes
    pipelined: bool


def _start(conn: smtplib.SMTP, envelope: _Envelope) -> _Mail:
    """Send MAIL and read its reply. With a server that offers PIPELINING (RFC 2920; every
    common relay does), RCPT and DATA go in the same write: one round trip instead of three
    before the message. Nothing of the message itself is sent here, so a connection found
    dropped here (the server closed it while idle) can be retried on a fresh one."""
    options = envelope.mail_options(conn)
    if envelope.international:
        conn.command_encoding = "utf-8"  # as smtplib's mail() does for SMTPUTF8
    mail = f"FROM:{smtplib.quoteaddr(envelope.sender)}" + "".join(" " + o for o in options)
    if not conn.has_extn("pipelining"):
        conn.putcmd("mail", mail)
        code, text = conn.getreply()
        return _Mail(code, text, pipelined=False)
    commands = [f"mail {mail}", f"rcpt TO:{smtplib.quoteaddr(envelope.recipient)}", "data"]
    if any("\r" in command or "\n" in command for command in commands):
        raise ValueError("an SMTP command holds a line break")  # as smtplib's putcmd refuses
    conn.send("".join(command + "\r\n" for command in commands))
    code, text = conn.getreply()
    return _Mail(code, text, pipelined=True)


def _one_at_a_time(conn: smtplib.SMTP, envelope: _Envelope, mail: _Mail) -> list[_Reply]:
    """RCPT after MAIL was accepted, then DATA after RCPT was: the replies to the three."""
    replies = [(mail.code, mail.text)]
    _raise_refusal(envelope, replies)
    replies.append(conn.rcpt(envelope.recipient))
    _raise_refusal(envelope, replies)
    replies.append(conn.docmd("data"))
    return replies


def _pipelined_replies(conn: smtplib.SMTP, envelope: _Envelope, mail: _Mail) -> list[_Reply]:
    """Read the replies to the pipelined RCPT and DATA, and raise for the first refusal, as
    the commands one at a time would: MAIL, then RCPT (DATA's reply is the caller's). Every
    reply of the group is read first (RFC 2920 3.1); when the connection ends before all came
    (a 421 closes it), the first refusal read is what is raised. A server that accepted DATA
    after refusing MAIL or RCPT gets an empty message, which it refuses for want of a
    recipient."""
    replies = [(mail.code, mail.text)]
    try:
        replies.append(conn.getreply())  # RCPT
        replies.append(conn.getreply())  # DATA
    except SMTP_FAULTS:
        _raise_refusal(envelope, replies)
        raise
    try:
        _raise_refusal(envelope, replies)
    except smtplib.SMTPException:
        if replies[2][0] == 354:
            with contextlib.suppress(*SMTP_FAULTS):
                _data(conn, b".\r\n")
        raise
    return replies


def _raise_refusal(envelope: _Envelope, replies: list[_Reply]) -> None:
    """Raise what MAIL's or RCPT's reply among `replies` refused, as the command alone would."""
    if replies[0][0] != 250:
        raise smtplib.SMTPSenderRefused(*replies[0], envelope.sender)
    if len(replies) > 1 and replies[1][0] not in (250, 251):
        raise smtplib.SMTPRecipientsRefused({envelope.recipient: replies[1]})
