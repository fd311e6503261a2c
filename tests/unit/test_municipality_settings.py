"""`MunicipalitySettings`: what the loader writes is what every reader reads back, typed."""

from __future__ import annotations

import datetime as dt

import models
from scheduler.municipality import MunicipalitySettings
from scheduler.spec import CaseRules, Period, SchoolYears

SCHOOL_YEARS = SchoolYears.model_validate(
    {
        "years": [{"start": "2027-08-18", "end": "2028-06-09"}],
        "rule": {"start": {"month": 8, "day": 19}, "end": {"month": 6, "day": 11}},
    }
)


def row(calendar: dict[str, object]) -> models.Municipality:
    return models.Municipality(
        key="exempel", name="Exempel", sender_email="noreply@kommun.example.se", calendar=calendar
    )


def test_what_the_loader_writes_reads_back_the_same() -> None:
    written = MunicipalitySettings(
        send_time=dt.time(7, 30),
        school_years=SCHOOL_YEARS,
        role_names={"rektor": "Rektor"},
        intake_phone="08-123 45",
        staff_domains=("kommun.example.se", "skola.example.se"),
        cases=CaseRules(first_meeting=Period(weeks=3)),
        unit_stages={"ekskolan": ["F-3"]},
        places={"stora": {"name": "Stora rummet"}},
    )
    assert MunicipalitySettings.of(row(written.to_json())) == written


def test_a_row_loaded_before_the_optional_keys_existed_reads_their_defaults() -> None:
    calendar = {
        "send_time": "08:00:00",
        "school_years": SCHOOL_YEARS.model_dump(mode="json"),
        "roles": {"rektor": "Rektor"},
    }
    read = MunicipalitySettings.of(row(calendar))
    assert read.intake_phone is None
    assert read.staff_domains == ("kommun.example.se",)  # the sender's domain
    assert read.cases == CaseRules()
    assert dict(read.unit_stages) == {}
    assert dict(read.places) == {}
