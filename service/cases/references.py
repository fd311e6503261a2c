"""Neutral references ("2027-0042"), and finding a report or case by its reference."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

import models
from core.errors import NotFoundError
from scheduler.cases.views import CASE, REPORT
from service.desk import Desk


def allocate_reference(session: Session, municipality_id: int, year: int) -> str:
    """The next reference of the municipality's series for `year`: "2027-0042"."""
    bump = (
        update(models.ReferenceCounter)
        .where(
            models.ReferenceCounter.municipality_id == municipality_id,
            models.ReferenceCounter.year == year,
        )
        .values(last=models.ReferenceCounter.last + 1)
        .returning(models.ReferenceCounter.last)
    )
    number = session.scalar(bump)
    if number is None:
        insert = (
            postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
        )
        session.execute(
            insert(models.ReferenceCounter)
            .values(municipality_id=municipality_id, year=year, last=0)
            .on_conflict_do_nothing(index_elements=["municipality_id", "year"])
        )
        number = session.scalar(bump)
    assert number is not None
    return f"{year}-{number:04d}"


def find_report(desk: Desk, reference: str) -> models.Report:
    found = desk.session.scalar(
        select(models.Report).where(
            models.Report.municipality_id == desk.municipality_id,
            models.Report.reference == reference,
        )
    )
    if found is None:
        raise NotFoundError("REFERENCE: no report with that reference in this municipality")
    return found


def find_case(desk: Desk, reference: str) -> models.Case:
    found = desk.session.scalar(
        select(models.Case).where(
            models.Case.municipality_id == desk.municipality_id, models.Case.reference == reference
        )
    )
    if found is None:
        raise NotFoundError("REFERENCE: no case with that reference in this municipality")
    return found


def find_either(desk: Desk, reference: str) -> models.Report | models.Case:
    """The report or the case with this reference (they share one series)."""
    found: models.Report | models.Case | None = desk.session.scalar(
        select(models.Case).where(
            models.Case.municipality_id == desk.municipality_id, models.Case.reference == reference
        )
    ) or desk.session.scalar(
        select(models.Report).where(
            models.Report.municipality_id == desk.municipality_id,
            models.Report.reference == reference,
        )
    )
    if found is None:
        raise NotFoundError("REFERENCE: no report or case with that reference in this municipality")
    return found


def series_of(matter: models.Report | models.Case) -> str:
    return CASE if isinstance(matter, models.Case) else REPORT
