"""The municipality's own settings, typed: written by the loader, read by everyone else.

The loader (service/profiles.py) builds a `MunicipalitySettings` from the profile and stores
`to_json()` in `Municipality.calendar`; every reader takes `MunicipalitySettings.of(row)`
instead of reading that JSON by string key. Rows loaded before a key existed read its default.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import models
from scheduler.identity import sender_domain
from scheduler.spec import CaseRules, SchoolYears


@dataclass(frozen=True)
class MunicipalitySettings:
    send_time: dt.time
    school_years: SchoolYears
    # role key → its display name ("rektor" → "Rektor")
    role_names: Mapping[str, str]
    intake_phone: str | None = None
    # Addresses in these domains are the municipality's staff (the abuse rule); never empty
    # once loaded: the sender's domain when the profile names none.
    staff_domains: tuple[str, ...] = ()
    cases: CaseRules = field(default_factory=CaseRules)
    # unit key → its school stages (parent-meeting reminders name only these)
    unit_stages: Mapping[str, list[str]] = field(default_factory=dict)
    # Meeting places by key: a booking stores the key, messages are built from these.
    places: Mapping[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def of(cls, municipality: models.Municipality) -> MunicipalitySettings:
        calendar = municipality.calendar
        domains = calendar.get("staff_domains") or [sender_domain(municipality.sender_email)]
        return cls(
            send_time=dt.time.fromisoformat(calendar["send_time"]),
            school_years=SchoolYears.model_validate(calendar["school_years"]),
            role_names=dict(calendar["roles"]),
            intake_phone=calendar.get("intake_phone"),
            staff_domains=tuple(domains),
            cases=CaseRules.model_validate(calendar.get("cases") or {}),
            unit_stages=dict(calendar.get("unit_stages") or {}),
            places=dict(calendar.get("places") or {}),
        )

    def to_json(self) -> dict[str, Any]:
        """What the loader stores in `Municipality.calendar`."""
        return {
            "send_time": self.send_time.isoformat(),
            "intake_phone": self.intake_phone,
            "staff_domains": list(self.staff_domains),
            "school_years": self.school_years.model_dump(mode="json"),
            "roles": dict(self.role_names),
            "cases": self.cases.model_dump(mode="json"),
            "unit_stages": dict(self.unit_stages),
            "places": dict(self.places),
        }
