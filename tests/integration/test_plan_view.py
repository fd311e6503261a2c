"""`plan` shows what became of each message: planned, sent (when), failed (the reply),
cancelled (why); messages the plan no longer has are shown too, so the whole year is there."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import models
from core.errors import PermanentDeliveryError
from service.planview import state_text, year_plan
from tests.profiles import MINIMAL, load
from tests.simulation import TEMPLATES, simulate_inline
from worker.mailers import MemoryMailer
from worker.render import Renderer

NOW = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC)
LATER = dt.datetime(2027, 5, 21, 10, 0, tzinfo=dt.UTC)
REPLY = "550 5.1.1 mailbox unavailable"


def messages(sessions: sessionmaker[Session], year: int) -> dict[str, dict[str, Any]]:
    with sessions() as session:
        municipality_id = session.scalars(select(models.Municipality.id)).one()
        items = year_plan(session, municipality_id, year, Renderer(TEMPLATES), now=LATER)
    return {i["purpose"]: i for i in items if i["kind"] == "message"}


def test_plan_shows_sent_failed_cancelled_and_planned(
    tmp_path: Path, session_factory: sessionmaker[Session]
) -> None:
    load(session_factory, MINIMAL, NOW)
    mailer = MemoryMailer()
    mailer.fail_recipient(
        "anna@liten.se", PermanentDeliveryError(REPLY, smtp_code=550, reply=REPLY)
    )
    simulate_inline(session_factory, dt.date(2027, 1, 1), dt.date(2027, 5, 20), mailer=mailer)
    text = MINIMAL.read_text(encoding="utf-8")
    start = text.index("      - purpose: paminnelse-30")
    end = text.index("      - purpose: underlag")
    variant = tmp_path / "variant.yaml"
    variant.write_text(text[:start] + text[end:], encoding="utf-8")
    load(session_factory, variant, LATER)

    year = messages(session_factory, 2027)
    sent = year["underlag"]
    assert sent["state"] == "sent"
    assert sent["deliveries"][0]["sent_at"].startswith("2027-05-19")
    assert state_text(sent).startswith("sent (2027-05-19 ")
    failed = year["boka-6v"]
    assert failed["state"] == "failed"
    assert failed["deliveries"][0]["reply"] == REPLY
    assert state_text(failed) == f"failed ({REPLY})"
    # No longer in the plan, yet a message of the year: shown, with why it was stopped.
    cancelled = year["paminnelse-30"]
    assert cancelled["in_plan"] is False
    assert cancelled["state"] == "cancelled"
    assert cancelled["deliveries"][0]["reason"].startswith("no longer in the plan")

    coming = messages(session_factory, 2028)["underlag"]
    assert coming["state"] == "planned" and coming["in_plan"] is True
    assert state_text(coming) == "planned"
