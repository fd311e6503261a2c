"""One outbox row made into the message that is sent: rendered, addressed, with its invite.

worker.delivery calls `build_message` after claiming the row; what fails here fails that row
only (the caller records it as a permanent failure).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from email.message import EmailMessage
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

import models
from core.errors import SamverkanError
from scheduler.answers import SUMMARY_TEMPLATE, summary_context
from scheduler.calendar import STOCKHOLM
from worker.compose import Address, Attachment, compose_message
from worker.invite import Party, build_invite
from worker.render import Renderer, municipality_texts

__all__ = ["build_message"]


def build_message(
    session: Session,
    renderer: Renderer,
    row: models.Notification,
    as_of: dt.datetime,
    reply_mailbox: str | None = None,
    memo: dict[object, object] | None = None,
) -> EmailMessage:
    """The message for one outbox row, as of sending: rendered, addressed, with its invite
    and attachments. Any error is the row's own (a template, an invite, an attachment).

    `memo` keeps what several rows of one worker's batch share (their attachments' names and
    types, read in the batch's transaction), so it is read once per batch."""
    municipality = session.get_one(models.Municipality, row.municipality_id)
    # The non-responders summary lists who has not answered as of sending, not of planning.
    context = summary_context(session, row) if row.template == SUMMARY_TEMPLATE else row.context
    rendered = renderer.render(row.template, context, municipality_texts(session, municipality))
    sender = Address(municipality.sender_name, municipality.sender_email)
    reply = context.get("reply_to")
    invite, method = (
        _invite(row, context, sender, as_of, reply_mailbox)
        if context.get("meeting")
        else (None, "")
    )
    return compose_message(
        sender=sender,
        to=Address(row.recipient_name, row.recipient_email),
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        message_id=row.message_id,
        date=as_of.astimezone(STOCKHOLM),  # readers see local time in the Date header
        reply_to=Address(reply["name"], reply["email"]) if reply else None,
        invite=invite,
        invite_method=method or "REQUEST",
        attachments=_attachments(
            session, municipality.id, context.get("attachment_files", []), memo
        ),
    )


def _invite(
    row: models.Notification,
    context: dict[str, Any],
    sender: Address,
    as_of: dt.datetime,
    reply_mailbox: str | None = None,
) -> tuple[bytes, str]:
    """The invite and its iTIP method.

    The convener (the organizer) is not invited to her own meeting: she gets a copy for her
    calendar (METHOD:PUBLISH, no ATTENDEE), so no client offers her to accept or decline it."""
    meeting = context["meeting"]
    organizer = meeting.get("organizer") or {"name": sender.name, "email": sender.email}
    summary = f"{context['routine']['name']} {context['occurrence']['key']}"
    agenda = "\n".join(f"- {item}" for item in meeting.get("agenda", []))
    # The summary first: for a case it is what names the case (its neutral reference).
    description = f"{summary}\n\nDagordning:\n{agenda}" if agenda else summary
    if meeting.get("video"):  # the place's video link, from the profile
        description += f"\n\nVideolänk: {meeting['video']}"
    method = meeting.get("method", "REQUEST")
    cancelled = method == "CANCEL"
    own = row.recipient_email.strip().lower() == organizer["email"].strip().lower()
    if own:
        method = "PUBLISH"
    invite = build_invite(
        method=method,
        status="CANCELLED" if cancelled else "CONFIRMED",
        uid=meeting["uid"],
        sequence=int(meeting["sequence"]),
        dtstamp=as_of,
        start=_event_moment(meeting["start"]),
        end=_event_moment(meeting["end"]),
        summary=summary,
        description=description,
        location=meeting.get("location"),
        # With a reply mailbox, calendars send their REPLY there (they answer the ORGANIZER's
        # address and ignore SENT-BY); the convener's name stays what they show.
        organizer=Party(organizer["name"], reply_mailbox or organizer["email"]),
        # Only the recipient: one message per person, so no one sees another's address.
        attendees=[] if own else [Party(row.recipient_name, row.recipient_email)],
        sent_by=None if reply_mailbox else sender.email,
    )
    return invite, method


def _event_moment(text: str) -> dt.datetime:
    """A meeting's start or end for the invite: Stockholm time, or UTC for the second pass of
    the hour repeated when summer time ends (a local time with TZID would be read as the
    first pass, an hour early; RFC 5545 lets DTSTART and DTEND use different zones)."""
    moment = dt.datetime.fromisoformat(text).astimezone(STOCKHOLM)
    if moment.fold == 1 and moment.utcoffset() != moment.replace(fold=0).utcoffset():
        return moment.astimezone(dt.UTC)
    return moment


def _attachments(
    session: Session,
    municipality_id: int,
    shas: list[str],
    memo: dict[object, object] | None = None,
) -> list[Attachment]:
    if not shas:
        return []
    key = ("attachments", municipality_id, tuple(shas))
    if memo is not None and key in memo:
        return memo[key]  # type: ignore[return-value]
    found = _read_attachments(session, municipality_id, shas)
    if memo is not None:
        memo[key] = found
    return found


def _read_attachments(session: Session, municipality_id: int, shas: list[str]) -> list[Attachment]:
    # The file's name and type once per batch; its bytes (a material row is never changed
    # once written: a new file is a new row) from the database only once per process.
    rows = session.execute(
        select(
            models.Material.id,
            models.Material.sha256,
            models.Material.filename,
            models.Material.mime_type,
        ).where(
            models.Material.municipality_id == municipality_id, models.Material.sha256.in_(shas)
        )
    )
    found = {m.sha256: m for m in rows}
    missing = [s for s in shas if s not in found]
    if missing:
        raise SamverkanError(f"attachment(s) {', '.join(missing)} missing from the database")
    return [
        Attachment(
            found[s].filename, _content(session, found[s].id, s), found[s].mime_type, sha256=s
        )
        for s in shas
    ]


class _ContentCache:
    """Material bytes by (row id, sha256), least recently used first, within a budget."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[int, str], bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[int, str]) -> bytes | None:
        with self._lock:
            content = self._items.get(key)
            if content is not None:
                self._items.move_to_end(key)
            return content

    def put(self, key: tuple[int, str], content: bytes) -> None:
        if len(content) > self.max_bytes:
            return
        with self._lock:
            if key in self._items:
                return
            self._items[key] = content
            self._size += len(content)
            while self._size > self.max_bytes:
                _, dropped = self._items.popitem(last=False)
                self._size -= len(dropped)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._size = 0


CONTENT_CACHE = _ContentCache(32 * 1024 * 1024)


def _content(session: Session, material_id: int, sha256: str) -> bytes:
    key = (material_id, sha256)
    content = CONTENT_CACHE.get(key)
    if content is None:
        content = session.scalar(
            select(models.Material.content).where(models.Material.id == material_id)
        )
        if content is None:  # deleted between the two statements
            raise SamverkanError(f"attachment {sha256} missing from the database")
        CONTENT_CACHE.put(key, content)
    return content
