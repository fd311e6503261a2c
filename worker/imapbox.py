"""Read calendar replies from the reply mailbox over IMAP, and record each answer.

The beat runs `poll_replies` every `reply_poll_seconds`. One poll:

1. connects with TLS (imaps://, or imap:// with STARTTLS; certificates are verified) and logs
   in with the password or, with ``auth=xoauth2``, with an OAuth2 bearer token (SASL XOAUTH2,
   as Microsoft 365 requires);
2. takes up to `batch` messages of the folder, oldest first; a message larger than
   `worker.replies.MAX_MESSAGE_BYTES` is not downloaded at all;
3. reads each with `worker.replies.parse_reply` and records its answers
   (`scheduler.answers.record_answer`), each message in its own transaction;
4. moves the message out of the folder: to the *done* folder when it held an answer
   (recorded or ignored for a reason such as an old SEQUENCE), to the *junk* folder when it
   held none (no calendar part, broken iCalendar, too large ...). Both folders are created
   when missing. A message is moved only after its transaction committed; if the move fails,
   the next poll reads it again and the answer is found already recorded (`stale`).

Nothing in a message can stop the poll: every ignored reply gives one log line with the
reason and the message's IMAP UID, never an address, a name or a meeting.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import imaplib
import logging
import re
import ssl
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from core.errors import ImapError
from core.settings import ImapConfig
from worker.mailers import TokenSource
from worker.oauth import xoauth2_string
from worker.replies import MAX_MESSAGE_BYTES, parse_reply

log = logging.getLogger("samverkan.replies")

DEFAULT_BATCH = 500
_SIZE = re.compile(rb"UID (\d+) RFC822\.SIZE (\d+)|RFC822\.SIZE (\d+) UID (\d+)")


@dataclass(frozen=True)
class Handled:
    """What became of one message: `answer` True if it held an answer (even an ignored one)."""

    outcomes: tuple[str, ...]
    answer: bool


@dataclass
class PollResult:
    messages: int = 0
    recorded: int = 0
    ignored: Counter[str] = field(default_factory=Counter)


Handler = Callable[[bytes], Handled]


def poll_mailbox(
    config: ImapConfig,
    handle: Handler,
    *,
    tokens: TokenSource | None = None,
    ssl_context: ssl.SSLContext | None = None,
    batch: int = DEFAULT_BATCH,
    max_bytes: int = MAX_MESSAGE_BYTES,
) -> PollResult:
    """Read up to `batch` messages of the configured folder, hand each to `handle`, and move
    it to the done or junk folder. Raises ImapError when the mailbox cannot be used."""
    context = ssl_context or ssl.create_default_context()
    where = f"the reply mailbox at {config.host}:{config.port}"
    try:
        conn = _connect(config, context)
    except (OSError, imaplib.IMAP4.error) as exc:
        raise ImapError(f"cannot reach {where}: {exc}") from None
    try:
        _login(conn, config, tokens)
        return _read(conn, config, handle, batch, max_bytes)
    except imaplib.IMAP4.error as exc:
        raise ImapError(f"{where} refused: {_short(exc)}") from None
    except OSError as exc:
        raise ImapError(f"the connection to {where} failed: {exc}") from None
    finally:
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            conn.logout()


def _read(
    conn: imaplib.IMAP4, config: ImapConfig, handle: Handler, batch: int, max_bytes: int
) -> PollResult:
    result = PollResult()
    for folder in (config.done_folder, config.junk_folder):
        _ensure_folder(conn, folder)
    status, _ = conn.select(_quote(config.folder))
    if status != "OK":
        raise ImapError(f"the reply mailbox has no folder {config.folder!r}")
    moves: list[tuple[bytes, str]] = []
    for uid, size in _sizes(conn, batch):
        result.messages += 1
        if size > max_bytes:
            _note(result, "too-large", uid)
            moves.append((uid, config.junk_folder))
            continue
        handled = _safely(handle, _fetch(conn, uid))
        for outcome in handled.outcomes:
            if outcome == "recorded":
                result.recorded += 1
            else:
                _note(result, outcome, uid)
        moves.append((uid, config.done_folder if handled.answer else config.junk_folder))
    _move(conn, moves)
    return result


def _note(result: PollResult, reason: str, uid: bytes) -> None:
    result.ignored[reason] += 1
    log.info(
        "reply ignored: %s",
        reason,
        extra={"action": "replies.ignored", "reason": reason, "imap_uid": uid.decode()},
    )


def _safely(handle: Handler, raw: bytes) -> Handled:
    try:
        return handle(raw)
    except Exception as exc:  # a bug on one message must not stop the poll
        log.warning(
            "reply could not be handled (%s)",
            type(exc).__name__,
            extra={"action": "replies.failed", "error": type(exc).__name__},
        )
        return Handled(("failed",), False)


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) <= 200 else text[:199] + "…"


def _connect(config: ImapConfig, context: ssl.SSLContext) -> imaplib.IMAP4:
    if config.ssl:
        return imaplib.IMAP4_SSL(
            config.host, config.port, ssl_context=context, timeout=config.timeout
        )
    conn = imaplib.IMAP4(config.host, config.port, timeout=config.timeout)
    try:
        conn.starttls(ssl_context=context)
    except BaseException:
        conn.shutdown()
        raise
    return conn


def _login(conn: imaplib.IMAP4, config: ImapConfig, tokens: TokenSource | None) -> None:
    if config.auth == "xoauth2":
        if tokens is None:
            raise ImapError("auth=xoauth2 needs a token provider (SAMVERKAN_OAUTH_*)")
        response = xoauth2_string(config.username, tokens.token()).encode("ascii")
        try:
            conn.authenticate("XOAUTH2", lambda _challenge: response)
        except imaplib.IMAP4.error as exc:
            tokens.invalidate()  # the next poll asks for a fresh token
            raise ImapError(f"the reply mailbox refused the OAuth2 token: {_short(exc)}") from None
        return
    try:
        if config.username.isascii() and (config.password or "").isascii():
            conn.login(config.username, config.password or "")
        else:  # AUTHENTICATE PLAIN is UTF-8 (RFC 4616); LOGIN in imaplib is ASCII only
            plain = f"\0{config.username}\0{config.password or ''}".encode()
            conn.authenticate("PLAIN", lambda _challenge: plain)
    except imaplib.IMAP4.error as exc:
        raise ImapError(f"the reply mailbox refused the login: {_short(exc)}") from None


def _quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _ensure_folder(conn: imaplib.IMAP4, folder: str) -> None:
    status, data = conn.list('""', _quote(folder))
    if status == "OK" and any(item for item in data if item):
        return
    status, data = conn.create(_quote(folder))
    if status != "OK":
        raise ImapError(f"cannot create the folder {folder!r} in the reply mailbox")


def _sizes(conn: imaplib.IMAP4, batch: int) -> list[tuple[bytes, int]]:
    """(UID, size) of the oldest `batch` messages not marked deleted."""
    status, data = conn.uid("SEARCH", "UNDELETED")
    if status != "OK" or not data or not data[0]:
        return []
    uids = data[0].split()[:batch]
    if not uids:
        return []
    status, data = conn.uid("FETCH", b",".join(uids).decode(), "(RFC822.SIZE)")
    sizes: dict[bytes, int] = {}
    for item in data:
        line = item[0] if isinstance(item, tuple) else item
        if not isinstance(line, bytes):
            continue
        match = _SIZE.search(line)
        if match:
            uid = match.group(1) or match.group(4)
            size = match.group(2) or match.group(3)
            sizes[uid] = int(size)
    return [(uid, sizes.get(uid, 0)) for uid in uids]


def _fetch(conn: imaplib.IMAP4, uid: bytes) -> bytes:
    status, data = conn.uid("FETCH", uid.decode(), "(BODY.PEEK[])")
    if status != "OK":
        return b""
    for item in data:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], bytes):
            return item[1]
    return b""


def _move(conn: imaplib.IMAP4, moves: list[tuple[bytes, str]]) -> None:
    by_folder: dict[str, list[bytes]] = {}
    for uid, folder in moves:
        by_folder.setdefault(folder, []).append(uid)
    can_move = "MOVE" in conn.capabilities
    for folder, uids in by_folder.items():
        numbers = b",".join(uids).decode()
        if can_move:
            status, _ = conn.uid("MOVE", numbers, _quote(folder))
            if status == "OK":
                continue
        status, _ = conn.uid("COPY", numbers, _quote(folder))
        if status != "OK":
            raise ImapError(f"cannot move read messages to {folder!r}")
        conn.uid("STORE", numbers, "+FLAGS.SILENT", r"(\Deleted)")
    if not can_move and moves:
        conn.expunge()


# --- the beat's task ------------------------------------------------------------------------


def handle_with(sessions: object, now: dt.datetime) -> Handler:
    """A handler that records each answer of a message in its own transaction."""
    from models.db import transaction
    from scheduler.answers import record_answer

    def handle(raw: bytes) -> Handled:
        parsed = parse_reply(raw)
        if not parsed.replies:
            return Handled((parsed.problem or "no-answer",), False)
        outcomes = []
        for reply in parsed.replies:
            with transaction(sessions) as session:  # type: ignore[arg-type]
                outcomes.append(record_answer(session, reply, now).value)
        return Handled(tuple(outcomes), True)

    return handle


def poll_replies(runtime: object, now: dt.datetime) -> PollResult:
    """One poll of the configured reply mailbox (nothing when SAMVERKAN_IMAP_URL is unset)."""
    from worker.oauth import provider_from_settings

    settings = runtime.settings  # type: ignore[attr-defined]
    config = settings.imap
    if config is None:
        return PollResult()
    tokens = getattr(runtime, "imap_tokens", None)
    if tokens is None and config.auth == "xoauth2":
        tokens = provider_from_settings(settings)
        runtime.imap_tokens = tokens  # type: ignore[attr-defined]
    result = poll_mailbox(config, handle_with(runtime.sessions, now), tokens=tokens)  # type: ignore[attr-defined]
    log.info(
        "reply mailbox read",
        extra={
            "action": "replies.poll",
            "messages": result.messages,
            "recorded": result.recorded,
            "ignored": sum(result.ignored.values()),
        },
    )
    return result


def read_replies(runtime: object, now: dt.datetime) -> int:
    """The beat's task: read the reply mailbox (when configured), then plan the conveners'
    summaries of who has not answered. Returns answers recorded plus summaries planned.
    A mailbox that cannot be reached is logged and tried again at the next beat."""
    from models.db import transaction
    from scheduler.answers import plan_summaries

    recorded = 0
    try:
        recorded = poll_replies(runtime, now).recorded
    except ImapError as exc:
        log.warning("reply mailbox not read: %s", exc, extra={"action": "replies.unreachable"})
    with transaction(runtime.sessions) as session:  # type: ignore[attr-defined]
        return recorded + plan_summaries(session, now)
