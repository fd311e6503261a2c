"""A role that changed hands between planning and sending: the message goes to the new holder.

The worker asks `hand_over` at send time for a row addressed through roles. The usual answer
is that the planned person still holds the role; otherwise the same message is planned for each
current holder (unless they have it already: the unique key keeps it to one copy each) and this
row is cancelled.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

import models
from scheduler import outbox
from scheduler.calendar import local_date
from scheduler.directory import RoleDirectory, load_directory
from scheduler.identity import idempotency_key, message_id_for, sender_domain
from scheduler.municipality import MunicipalitySettings
from scheduler.planner import PlannedRow, as_wanted, recipient_context


def hand_over(
    session: Session,
    row: models.Notification,
    as_of: dt.datetime,
    recipients: RoleDirectory | None = None,
) -> bool:
    """True when the row's person still holds one of its roles on `as_of`'s day. Otherwise
    plan it for each current holder, cancel it (with the reason) and return False.

    `recipients`, when given, holds the assignments of (at least) the row's person, loaded
    once for a worker's batch; otherwise they are read here."""
    today = local_date(as_of)
    # The usual case first, cheaply: the planned person still holds the role. A batch's
    # directory answers that without the municipality's settings (their validation cost a
    # reminder more than the check itself).
    if (
        recipients is not None
        and row.person_id is not None
        and recipients.holds(row.person_id, row.roles, today)
    ):
        return True
    municipality = session.get_one(models.Municipality, row.municipality_id)
    role_names = dict(MunicipalitySettings.of(municipality).role_names)
    if row.person_id is None:  # no one planned by name: anyone holding the role will do
        if load_directory(session, municipality.id, role_names).resolve(row.roles, today):
            return True
    elif recipients is None:
        recipients = load_directory(session, municipality.id, role_names, person_id=row.person_id)
        if recipients.holds(row.person_id, row.roles, today):
            return True
    holders = load_directory(session, municipality.id, role_names).resolve(row.roles, today)
    domain = sender_domain(municipality.sender_email)
    replacements = []
    for holder in holders:
        key = idempotency_key(
            municipality.key, row.routine_key, row.occurrence, row.purpose, holder.person_key
        )
        context = dict(row.context)
        context["recipient"] = recipient_context(holder)
        replacements.append(
            PlannedRow(
                key=key,
                routine=row.routine_key,
                occurrence=row.occurrence,
                purpose=row.purpose,
                template=row.template,
                context=context,
                recipient=holder,
                due_at=as_of,
                message_id=message_id_for(key, domain),
            )
        )
    wanted = [as_wanted(municipality.id, r) for r in replacements]
    created = len(outbox.insert(session, wanted, as_of))
    outbox.cancel(
        row,
        as_of,
        f"recipient no longer holds {', '.join(row.roles)}; {created} new holder(s) planned",
    )
    return False
