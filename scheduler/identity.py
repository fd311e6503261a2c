"""Deterministic identities: the same planned message always has the same key and Message-ID."""

from __future__ import annotations

import hashlib


def idempotency_key(
    municipality: str, routine: str, occurrence: str, purpose: str, person: str
) -> str:
    return f"{municipality}/{routine}/{occurrence}/{purpose}/{person}"


def message_id_for(key: str, domain: str) -> str:
    """A Message-ID derived from the idempotency key, so a resent copy carries the same one."""
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:40]
    return f"<{digest}@{domain}>"


def event_uid(municipality: str, routine: str, occurrence: str, domain: str) -> str:
    """The calendar UID of a meeting occurrence: stable across rebookings (SEQUENCE rises)."""
    return f"{municipality}-{routine}-{occurrence.replace('/', '-')}@{domain}"


def sender_domain(sender_email: str) -> str:
    """The domain of the municipality's sender address: Message-IDs and UIDs are made in it."""
    return sender_email.rsplit("@", 1)[1]
