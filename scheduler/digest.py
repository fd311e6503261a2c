"""The daily digest of failed messages, to the municipality's coordinators (role `samordnare`).

Planned here; the worker's beat task (`samverkan.digest`, worker/tasks.py) calls `plan_digests`.

A permanent failure (5xx, an invalid address), or a transient one that outlived the retry
horizon, leaves its row `failed`. Once a day (beat, `DIGEST_AT` in worker/app.py) each
coordinator gets one message listing the rows that failed since the previous digest: routine,
purpose, recipient address, attempts and error. Never message content, never anything about a
child.

The digest is itself an outbox row (idempotency key `digest/<municipality>/<date>/<person>`), so
it is delivered, retried and de-duplicated like every other message, and a second beat or a
second run on the same day plans nothing new. Its window runs from the moment the previous
digest was planned (its `created_at`) to `now - settle`; the settle time (the lease) leaves
deliveries that were still being recorded at `now` to the next digest instead of losing them.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

import models
from models import Status
from scheduler import outbox
from scheduler.calendar import STOCKHOLM, local_date
from scheduler.directory import load_directory
from scheduler.identity import message_id_for, sender_domain
from scheduler.municipality import MunicipalitySettings
from scheduler.planner import PlannedRow, as_wanted, recipient_context
from scheduler.spec import DIGEST_ROUTINE_KEY

log = logging.getLogger("samverkan.digest")

# Not a valid routine key in a profile (keys start with a letter or digit), so never a clash.
DIGEST_ROUTINE = DIGEST_ROUTINE_KEY
DIGEST_PURPOSE = "digest"
DIGEST_TEMPLATE = "fel-sammanstallning"
COORDINATOR_ROLE = "samordnare"
# The first digest of a municipality looks back this far.
FIRST_WINDOW = dt.timedelta(days=1)
MAX_ERROR_CHARS = 300


def digest_key(municipality: str, day: dt.date, person: str) -> str:
    return f"digest/{municipality}/{day.isoformat()}/{person}"


def plan_digests(session: Session, now: dt.datetime, settle: dt.timedelta) -> int:
    """Plan today's digest for every municipality with failures; return the rows created."""
    created = 0
    municipalities = session.scalars(select(models.Municipality).order_by(models.Municipality.id))
    for municipality in municipalities:
        created += _plan_one(session, municipality, now, settle)
    return created


def failed_since(
    session: Session, municipality_id: int, start: dt.datetime, end: dt.datetime
) -> list[models.Notification]:
    """Rows of the municipality that failed in [start, end), digests themselves excepted."""
    return list(
        session.scalars(
            select(models.Notification)
            .where(
                models.Notification.municipality_id == municipality_id,
                models.Notification.status == Status.FAILED,
                models.Notification.routine_key != DIGEST_ROUTINE,
                models.Notification.updated_at >= start,
                models.Notification.updated_at < end,
            )
            .order_by(models.Notification.updated_at, models.Notification.id)
        )
    )


def _plan_one(
    session: Session, municipality: models.Municipality, now: dt.datetime, settle: dt.timedelta
) -> int:
    previous = session.scalar(
        select(func.max(models.Notification.created_at)).where(
            models.Notification.municipality_id == municipality.id,
            models.Notification.routine_key == DIGEST_ROUTINE,
        )
    )
    end = now - settle
    if previous is not None and previous.tzinfo is None:  # SQLite hands back naive UTC
        previous = previous.replace(tzinfo=dt.UTC)
    start = previous - settle if previous is not None else end - FIRST_WINDOW
    failures = failed_since(session, municipality.id, start, end)
    if not failures:
        return 0
    today = local_date(now)
    role_names = dict(MunicipalitySettings.of(municipality).role_names)
    coordinators = load_directory(session, municipality.id, role_names).resolve(
        [COORDINATOR_ROLE], today
    )
    if not coordinators:
        log.warning(
            "no coordinator to send the digest to",
            extra={"action": "digest.nobody", "municipality": municipality.key},
        )
        return 0
    base = _context(session, municipality, failures, start, end)
    domain = sender_domain(municipality.sender_email)
    rows = []
    for holder in coordinators:
        key = digest_key(municipality.key, today, holder.person_key)
        context = dict(base)
        context["recipient"] = recipient_context(holder)
        rows.append(
            PlannedRow(
                key=key,
                routine=DIGEST_ROUTINE,
                occurrence=today.isoformat(),
                purpose=DIGEST_PURPOSE,
                template=DIGEST_TEMPLATE,
                context=context,
                recipient=holder,
                due_at=now,
                message_id=message_id_for(key, domain),
            )
        )
    created = len(outbox.insert(session, [as_wanted(municipality.id, r) for r in rows], now))
    log.info(
        "digest planned",
        extra={"action": "digest.planned", "failures": len(failures), "rows": created},
    )
    return created


def _context(
    session: Session,
    municipality: models.Municipality,
    failures: list[models.Notification],
    start: dt.datetime,
    end: dt.datetime,
) -> dict[str, Any]:
    names = {
        key: name
        for key, name in session.execute(
            select(models.Routine.key, models.Routine.name).where(
                models.Routine.municipality_id == municipality.id
            )
        )
    }
    return {
        "municipality": municipality.name,
        "sender": {"name": municipality.sender_name, "email": municipality.sender_email},
        "routine": {"key": DIGEST_ROUTINE, "name": "Meddelanden som inte kom fram"},
        "purpose": DIGEST_PURPOSE,
        "window": {"from": _local(start), "to": _local(end)},
        "failures": [
            {
                "routine": names.get(row.routine_key, row.routine_key),
                "purpose": row.purpose,
                "address": row.recipient_email,
                "attempts": row.attempts,
                "failed_at": _local(row.updated_at),
                "error": _short(row.last_error or "okänt fel"),
            }
            for row in failures
        ],
    }


def _local(moment: dt.datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(STOCKHOLM).isoformat(timespec="seconds")


def _short(error: str) -> str:
    line = " ".join(error.split())
    return line if len(line) <= MAX_ERROR_CHARS else line[: MAX_ERROR_CHARS - 1] + "…"
