"""SmtpMailer against a real SMTP server (tests.fixtures.smtp), FileMailer against a real disk."""

from __future__ import annotations

import os
import smtplib
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import make_msgid
from pathlib import Path

import pytest

from core.errors import PermanentDeliveryError, TransientDeliveryError
from core.settings import SmtpConfig
from tests.fixtures.smtp import SmtpRecorder, TlsCert
from worker.mailers import FileMailer
from worker.smtp_mailer import SmtpMailer

pytestmark = pytest.mark.integration

SENDER = "paminnelser@kommun.example"
RECIPIENT = "rektor@skolan.example"
DATE = "Mon, 02 Feb 2026 08:00:00 +0100"


def make_message(
    to: str = RECIPIENT,
    *,
    subject: str = "Påminnelse: samverkansmöte",
    body: str = "Hej!\n\nSamverkansmötet börjar kl. 9.\n",
    message_id: str | None = None,
    date: str | None = DATE,
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"Samverkan <{SENDER}>"
    message["To"] = to
    message["Subject"] = subject
    if date is not None:
        message["Date"] = date
    message["Message-ID"] = message_id or make_msgid(domain="samverkan.test")
    message.set_content(body)
    return message


@pytest.fixture(params=[True, False], ids=["pipelining", "one-command-at-a-time"])
def smtp_server(request: pytest.FixtureRequest) -> Iterator[SmtpRecorder]:
    """The plain test server, offering PIPELINING (as every common relay does) or not: each
    test here runs against both, since the mailer sends the envelope differently."""
    server = SmtpRecorder(pipelining=request.param)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mailer(smtp_server: SmtpRecorder) -> Iterator[SmtpMailer]:
    mailer = SmtpMailer(smtp_server.smtp_config(), local_hostname="worker.test")
    yield mailer
    mailer.close()


def subjects(server: SmtpRecorder) -> list[str]:
    return [str(received.message["Subject"]) for received in server.received]


# --------------------------------------------------------------------------- delivery


def test_smtp_mailer_delivers_and_returns_the_servers_reply_to_data(
    smtp_server: SmtpRecorder, mailer: SmtpMailer
) -> None:
    message = make_message()

    result = mailer.send(message)

    [received] = smtp_server.wait_for(1)
    assert result.reply == received.reply
    assert result.reply.startswith("250 2.0.0 Ok: queued as ")
    assert received.mail_from == SENDER
    assert received.rcpt_tos == (RECIPIENT,)
    assert received.message["Message-ID"] == message["Message-ID"]
    assert received.message["Subject"] == "Påminnelse: samverkansmöte"


def test_envelope_sender_is_the_sender_header_when_there_is_one(
    smtp_server: SmtpRecorder, mailer: SmtpMailer
) -> None:
    message = make_message()
    message["Sender"] = "studsar@kommun.example"

    mailer.send(message)

    assert smtp_server.received[0].mail_from == "studsar@kommun.example"


def test_non_ascii_body_and_leading_dots_arrive_unchanged(
    smtp_server: SmtpRecorder, mailer: SmtpMailer
) -> None:
    body = "Hej Åsa!\n.\n..två punkter\nVänliga hälsningar\n"

    mailer.send(make_message(body=body))

    assert smtp_server.received[0].message.get_content().replace("\r\n", "\n") == body


def test_internationalised_recipient_address_is_delivered_with_smtputf8(
    smtp_server: SmtpRecorder, mailer: SmtpMailer
) -> None:
    mailer.send(make_message(to="åsa.öberg@skolan.example"))

    assert smtp_server.received[0].rcpt_tos == ("åsa.öberg@skolan.example",)


def test_smtp_mailer_reuses_one_connection_for_several_messages(
    smtp_server: SmtpRecorder, mailer: SmtpMailer
) -> None:
    for number in range(3):
        mailer.send(make_message(subject=f"nr {number}"))

    assert subjects(smtp_server) == ["nr 0", "nr 1", "nr 2"]
    assert smtp_server.connections == 1


def test_threads_sharing_one_mailer_deliver_every_message_over_one_connection(
    smtp_server: SmtpRecorder, mailer: SmtpMailer
) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda n: mailer.send(make_message(subject=f"nr {n}")), range(20)))

    assert sorted(subjects(smtp_server)) == sorted(f"nr {n}" for n in range(20))
    assert smtp_server.connections == 1


def test_close_says_quit_and_the_next_send_opens_a_new_connection(
    smtp_server: SmtpRecorder, mailer: SmtpMailer
) -> None:
    mailer.send(make_message(subject="före"))
    mailer.close()
    mailer.send(make_message(subject="efter"))

    assert subjects(smtp_server) == ["före", "efter"]
    assert smtp_server.connections == 2


def test_smtp_mailer_reconnects_after_the_server_restarted(
    smtp_server: SmtpRecorder, mailer: SmtpMailer
) -> None:
    mailer.send(make_message(subject="före omstart"))
    smtp_server.stop()
    smtp_server.start()

    mailer.send(make_message(subject="efter omstart"))

    assert subjects(smtp_server) == ["före omstart", "efter omstart"]
    assert smtp_server.connections == 2


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork()")
def test_a_forked_child_opens_its_own_connection_and_leaves_the_parents_alone(
    smtp_server: SmtpRecorder, mailer: SmtpMailer
) -> None:
    mailer.send(make_message(subject="förälder före"))

    pid = os.fork()
    if pid == 0:  # the child: report by exit status, never return into pytest
        status = 1
        try:
            mailer.send(make_message(subject="barn"))
            status = 0
        finally:
            os._exit(status)
    _, wait_status = os.waitpid(pid, 0)

    assert os.waitstatus_to_exitcode(wait_status) == 0
    mailer.send(make_message(subject="förälder efter"))
    assert subjects(smtp_server) == ["förälder före", "barn", "förälder efter"]
    assert smtp_server.connections == 2


# --------------------------------------------------------------------------- failures


def test_a_550_for_one_recipient_raises_permanent_error_with_code_and_reply(
    smtp_server: SmtpRecorder, mailer: SmtpMailer
) -> None:
    smtp_server.fail_rcpt("finns.inte@skolan.example", 550, "5.1.1 Recipient address rejected")

    with pytest.raises(PermanentDeliveryError) as caught:
        mailer.send(make_message(to="finns.inte@skolan.example"))

    assert caught.value.smtp_code == 550
    assert caught.value.reply == "550 5.1.1 Recipient address rejected"
    assert smtp_server.received == []


def test_the_connection_is_kept_after_a_recipients_550(
    smtp_server: SmtpRecorder, mailer: SmtpMailer
) -> None:
    smtp_server.fail_rcpt("finns.inte@skolan.example")
    with pytest.raises(PermanentDeliveryError):
        mailer.send(make_message(to="finns.inte@skolan.example"))

    mailer.send(make_message(subject="nästa"))

    assert subjects(smtp_server) == ["nästa"]
    assert smtp_server.connections == 1


def test_a_451_raises_transient_error_and_the_next_send_starts_a_fresh_connection(
    smtp_server: SmtpRecorder, mailer: SmtpMailer
) -> None:
    smtp_server.fail_all(451, "4.3.0 Try again later")
    with pytest.raises(TransientDeliveryError) as caught:
        mailer.send(make_message())
    assert caught.value.smtp_code == 451
    assert caught.value.reply == "451 4.3.0 Try again later"

    smtp_server.recover()
    mailer.send(make_message(subject="igen"))

    assert subjects(smtp_server) == ["igen"]
    assert smtp_server.connections == 2


def test_a_421_that_closes_the_connection_raises_transient_error_and_the_next_send_reconnects(
    smtp_server: SmtpRecorder, mailer: SmtpMailer
) -> None:
    smtp_server.fail_all(421, "4.3.2 Service shutting down")
    with pytest.raises(TransientDeliveryError) as caught:
        mailer.send(make_message())
    assert caught.value.smtp_code == 421

    smtp_server.recover()
    mailer.send(make_message(subject="igen"))

    assert subjects(smtp_server) == ["igen"]
    assert smtp_server.connections == 2


@pytest.mark.parametrize(
    ("command", "code", "text", "error"),
    [
        ("DATA", 452, "4.3.1 Insufficient system storage", TransientDeliveryError),
        ("DATA", 554, "5.7.1 Message rejected as spam", PermanentDeliveryError),
        ("MAIL", 451, "4.3.0 Try again later", TransientDeliveryError),
        ("MAIL", 421, "4.3.2 Service shutting down", TransientDeliveryError),  # and closes
        ("MAIL", 550, "5.7.1 Sender not allowed", PermanentDeliveryError),
    ],
)
def test_a_refusal_of_the_sender_or_after_data_is_classified_by_its_code_and_nothing_is_sent(
    smtp_server: SmtpRecorder,
    mailer: SmtpMailer,
    command: str,
    code: int,
    text: str,
    error: type[Exception],
) -> None:
    smtp_server.fail_all(code, text, commands=[command])

    with pytest.raises(error) as caught:
        mailer.send(make_message())

    assert getattr(caught.value, "smtp_code", None) == code
    assert getattr(caught.value, "reply", None) == f"{code} {text}"
    assert smtp_server.received == []
    smtp_server.recover()
    mailer.send(make_message(subject="igen"))
    assert subjects(smtp_server) == ["igen"]


def test_a_refused_connection_raises_transient_error(
    smtp_server: SmtpRecorder, mailer: SmtpMailer
) -> None:
    smtp_server.stop()

    with pytest.raises(TransientDeliveryError) as caught:
        mailer.send(make_message())

    assert caught.value.smtp_code is None
    assert isinstance(caught.value.__cause__, ConnectionRefusedError)


def test_a_server_still_down_after_the_one_reconnect_raises_transient_error(
    smtp_server: SmtpRecorder, mailer: SmtpMailer
) -> None:
    mailer.send(make_message(subject="före"))
    smtp_server.stop()

    with pytest.raises(TransientDeliveryError):
        mailer.send(make_message(subject="under avbrottet"))

    smtp_server.start()
    mailer.send(make_message(subject="efter"))
    assert subjects(smtp_server) == ["före", "efter"]


@pytest.mark.parametrize(
    "to",
    ["", "inte-en-adress", "a@skolan.example, b@skolan.example", "<@skolan.example>"],
)
def test_a_malformed_recipient_raises_permanent_error_without_contacting_the_server(
    smtp_server: SmtpRecorder, mailer: SmtpMailer, to: str
) -> None:
    with pytest.raises(PermanentDeliveryError):
        mailer.send(make_message(to=to))

    assert smtp_server.connections == 0


# --------------------------------------------------------------------------- TLS and AUTH


def test_starttls_and_login_deliver_over_tls_as_the_configured_user(
    smtp_server_tls_auth: SmtpRecorder,
) -> None:
    server = smtp_server_tls_auth
    mailer = SmtpMailer(server.smtp_config(), ssl_context=server.ssl_context)
    try:
        result = mailer.send(make_message())
    finally:
        mailer.close()

    [received] = server.received
    assert result.reply == received.reply
    assert received.tls
    assert received.login == server.username


def test_a_wrong_password_raises_transient_error_with_535(
    smtp_server_tls_auth: SmtpRecorder,
) -> None:
    server = smtp_server_tls_auth
    mailer = SmtpMailer(server.smtp_config(password="fel"), ssl_context=server.ssl_context)

    with pytest.raises(TransientDeliveryError) as caught:
        mailer.send(make_message())

    assert caught.value.smtp_code == 535
    assert server.received == []


def test_starttls_refuses_a_certificate_it_cannot_verify(
    smtp_server_tls_auth: SmtpRecorder,
) -> None:
    server = smtp_server_tls_auth
    mailer = SmtpMailer(server.smtp_config())  # the default context does not trust it

    with pytest.raises(TransientDeliveryError):
        mailer.send(make_message())

    assert server.received == []


def test_starttls_missing_at_the_server_raises_transient_error_before_any_login(
    smtp_server: SmtpRecorder,
) -> None:
    config = smtp_server.smtp_config(starttls=True, username="samverkan", password="hemligt")
    mailer = SmtpMailer(config)

    with pytest.raises(TransientDeliveryError, match="STARTTLS"):
        mailer.send(make_message())

    assert smtp_server.received == []


def test_a_non_ascii_password_logs_in(smtp_tls_cert: TlsCert) -> None:
    server = SmtpRecorder(
        tls="starttls", cert=smtp_tls_cert, username="skolan", password="vårt-lösenord"
    )
    server.start()
    mailer = SmtpMailer(server.smtp_config(), ssl_context=server.ssl_context)
    try:
        mailer.send(make_message())
    finally:
        mailer.close()
        server.stop()

    assert server.received[0].login == "skolan"


def test_implicit_tls_delivers(smtp_tls_cert: TlsCert) -> None:
    server = SmtpRecorder(tls="implicit", cert=smtp_tls_cert)
    server.start()
    mailer = SmtpMailer(server.smtp_config(), ssl_context=server.ssl_context)
    try:
        mailer.send(make_message())
    finally:
        mailer.close()
        server.stop()

    assert server.received[0].tls


# --------------------------------------------------------------------------- files


def read_eml(path: Path) -> EmailMessage:
    parsed = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_file_mailer_writes_a_parseable_eml_under_the_date_named_after_the_message_id(
    tmp_path: Path,
) -> None:
    message = make_message(message_id="<paminnelse-42@samverkan.test>")

    result = FileMailer(tmp_path).send(message)

    path = tmp_path / "2026-02-02" / "paminnelse-42@samverkan.test.eml"
    assert result.reply == f"written {path}"
    written = read_eml(path)
    assert written["Message-ID"] == "<paminnelse-42@samverkan.test>"
    assert written["Subject"] == "Påminnelse: samverkansmöte"
    assert written["To"] == RECIPIENT
    assert written.get_content().replace("\r\n", "\n") == message.get_content()
    assert b"\r\n" in path.read_bytes()  # RFC 5322 line endings, as a mail client expects


def test_file_mailer_writing_the_same_message_twice_leaves_one_file(tmp_path: Path) -> None:
    mailer = FileMailer(tmp_path)
    message = make_message()

    first = mailer.send(message)
    second = mailer.send(message)

    assert first == second
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files == [Path(first.reply.removeprefix("written "))]


def test_file_mailer_uses_the_date_headers_own_day(tmp_path: Path) -> None:
    # 00:30 in Sweden is still the day before in UTC.
    message = make_message(date="Mon, 02 Feb 2026 00:30:00 +0100")

    path = Path(FileMailer(tmp_path).send(message).reply.removeprefix("written "))

    assert path.parent == tmp_path / "2026-02-02"


def test_file_mailer_keeps_an_unsafe_message_id_inside_the_outbox(tmp_path: Path) -> None:
    mailer = FileMailer(tmp_path)

    path = Path(mailer.send(make_message(message_id="<../../etc/passwd@x>")).reply[8:])
    other = Path(mailer.send(make_message(message_id="<.._.._etc_passwd@x>")).reply[8:])

    assert path.parent == tmp_path / "2026-02-02"
    assert path.name.endswith(".eml") and not path.name.startswith(".")
    assert path != other  # ids that map to the same characters still get their own files


def test_file_mailer_leaves_no_temporary_files(tmp_path: Path) -> None:
    FileMailer(tmp_path).send(make_message())

    assert [p.suffix for p in (tmp_path / "2026-02-02").iterdir()] == [".eml"]


def test_file_mailer_without_a_date_raises_permanent_error(tmp_path: Path) -> None:
    with pytest.raises(PermanentDeliveryError, match="Date"):
        FileMailer(tmp_path).send(make_message(date=None))

    assert list(tmp_path.iterdir()) == []


def test_a_421_to_the_recipient_keeps_its_code_though_the_connection_closed(
    smtp_server: SmtpRecorder, mailer: SmtpMailer
) -> None:
    smtp_server.fail_all(421, "4.3.2 Service shutting down", commands=["RCPT"])
    with pytest.raises(TransientDeliveryError) as caught:
        mailer.send(make_message())
    assert caught.value.smtp_code == 421
    assert caught.value.reply == "421 4.3.2 Service shutting down"
    assert smtp_server.received == []


def test_with_pipelining_the_envelope_goes_in_one_write_and_the_message_in_another(
    smtp_server: SmtpRecorder, mailer: SmtpMailer, monkeypatch: pytest.MonkeyPatch
) -> None:
    mailer.send(make_message(subject="först"))  # connected, greeted
    writes: list[bytes] = []
    send = smtplib.SMTP.send

    def counted(self: smtplib.SMTP, data: bytes | str) -> None:
        writes.append(data.encode() if isinstance(data, str) else data)
        send(self, data)

    monkeypatch.setattr(smtplib.SMTP, "send", counted)
    mailer.send(make_message(subject="sedan"))

    commands = [w.split(b" ", 1)[0].strip().upper() for w in writes if len(w) < 200]
    if smtp_server.pipelining:
        assert len(writes) == 2
        group = writes[0].upper()
        assert group.startswith(b"MAIL FROM:") and group.endswith(b"\r\nDATA\r\n")
        assert b"\r\nRCPT TO:" in group
    else:
        assert len(writes) == 4 and commands[:3] == [b"MAIL", b"RCPT", b"DATA"]
    assert writes[-1].endswith(b"\r\n.\r\n")
    assert subjects(smtp_server) == ["först", "sedan"]


class _Scripted:
    """A one-connection SMTP server on a free port that offers PIPELINING and answers the
    envelope's group with `group` (whole reply lines), then closes: what a server shutting
    down does when it answers the first command with 421 and leaves the rest unanswered."""

    def __init__(self, group: bytes) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.group = group
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn, conn.makefile("rb") as lines:
            conn.sendall(b"220 scripted ESMTP\r\n")
            lines.readline()  # EHLO
            conn.sendall(b"250-scripted\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
            command = lines.readline()  # MAIL, with RCPT and DATA in the same write
            assert command.upper().startswith(b"MAIL FROM:")
            conn.sendall(self.group)
        self.listener.close()


@pytest.mark.parametrize(
    ("group", "code", "error"),
    [
        (b"421 4.3.2 Shutting down\r\n", 421, TransientDeliveryError),
        (b"550 5.7.1 Sender not allowed\r\n", 550, PermanentDeliveryError),
        (b"250 2.1.0 Ok\r\n452 4.5.3 Too many recipients\r\n", 452, TransientDeliveryError),
        (b"250 2.1.0 Ok\r\n550 5.1.1 No such user\r\n", 550, PermanentDeliveryError),
    ],
)
def test_a_refusal_in_a_pipelined_group_keeps_its_code_when_the_server_then_closes(
    group: bytes, code: int, error: type[Exception]
) -> None:
    server = _Scripted(group)
    mailer = SmtpMailer(
        SmtpConfig(host="127.0.0.1", port=server.port, timeout=5), local_hostname="worker.test"
    )
    try:
        with pytest.raises(error) as caught:
            mailer.send(make_message())
    finally:
        mailer.close()
        server.thread.join(5)
    assert getattr(caught.value, "smtp_code", None) == code
