"""Read and validate a municipality profile, whole, before anything is written.

A bad profile changes nothing and the error names file, line and field (service/profilesync.py
writes a valid one).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from core.errors import ProfileError
from scheduler.bookings import check_booking
from scheduler.occurrences import occurrences
from scheduler.privacy import contains_identity_number
from scheduler.spec import Profile
from scheduler.specrefs import Problem, reference_problems
from service.attachments import AttachmentProblem, read_attachment
from service.yamlsource import Located, parse_bytes, read_profile_bytes

# How many years ahead a routine must occur at least once to be a routine at all.
OCCURS_WITHIN_YEARS = 10


@dataclass(frozen=True)
class Attachment:
    filename: str
    mime_type: str
    content: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


@dataclass
class ValidProfile:
    path: Path
    sha256: str
    profile: Profile
    attachments: dict[str, list[Attachment]]  # routine key → files


def validate_profile(path: Path, today: dt.date, raw: bytes | None = None) -> ValidProfile:
    """Read and check `path` (or `raw`, read as if it were `path`) completely; raise
    ProfileError listing every problem found."""
    raw = read_profile_bytes(path) if raw is None else raw
    located = parse_bytes(raw, path)
    if not isinstance(located.data, dict):
        raise ProfileError(
            f"{path}:1: a profile is a mapping of sections (municipality, units, ...)"
        )
    try:
        profile = Profile.model_validate(located.data)
    except ValidationError as exc:
        problems: list[Problem] = [
            (tuple(error["loc"]), _pydantic_message(error)) for error in exc.errors()
        ]
        raise ProfileError(_describe(path, located, problems)) from None
    problems = reference_problems(profile)
    problems += identity_number_problems(located.data)
    problems += _never_occurring(profile, today)
    problems += _booking_problems(profile)
    attachments, attachment_problems = _read_attachments(path.parent, profile)
    problems += attachment_problems
    if problems:
        raise ProfileError(_describe(path, located, problems))
    sha = hashlib.sha256(raw).hexdigest()
    return ValidProfile(path=path, sha256=sha, profile=profile, attachments=attachments)


def _pydantic_message(error: Any) -> str:
    message = str(error["msg"])
    if error["type"] == "extra_forbidden":
        return "unknown field"
    if error["type"] == "missing":
        return "required field is missing"
    return message.removeprefix("Value error, ")


def _describe(path: Path, located: Located, problems: list[Problem]) -> str:
    lines = []
    for where, message in problems:
        if contains_identity_number(message):  # a message that quotes a key holding one
            message = "holds what reads as a personal identity number (its text goes out)"
        line = located.line_of(where)
        field_path = _format_path(where) or "(top level)"
        lines.append(f"{path}:{line or '?'}: {field_path}: {message}")
    count = len(lines)
    heading = (
        f"{path}: the profile has {count} problem{'s' if count > 1 else ''}; nothing was changed"
    )
    return "\n".join([heading, *lines])


def _format_path(where: tuple[object, ...]) -> str:
    text = ""
    for part in where:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def identity_number_problems(data: Any, where: tuple[str | int, ...] = ()) -> list[Problem]:
    """Every string of the profile (keys included) that holds a personal identity number.

    Anything in a profile may reach a message (names, addresses, places, prose), so the
    guard reads all of it; the problem names the field, never the value.
    """
    if isinstance(data, str):
        if contains_identity_number(data):
            return [(where, "holds what reads as a personal identity number (its text goes out)")]
        return []
    problems: list[Problem] = []
    if isinstance(data, dict):
        for key, value in data.items():
            problems += identity_number_problems(str(key), (*where, str(key)))
            problems += identity_number_problems(value, (*where, str(key)))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            problems += identity_number_problems(value, (*where, index))
    return problems


def _never_occurring(profile: Profile, today: dt.date) -> list[Problem]:
    years = range(today.year - 1, today.year + OCCURS_WITHIN_YEARS)
    problems: list[Problem] = []
    for i, routine in enumerate(profile.routines):
        if not occurrences(routine, profile.school_years, years):
            problems.append(
                (
                    ("routines", i, "when"),
                    f"the routine never occurs in {years[0]}-{years[-1]} "
                    "(check its date and its active years)",
                )
            )
    return problems


def _booking_problems(profile: Profile) -> list[Problem]:
    """The `bookings:` of every meeting, checked by the same rules as `samverkan book`.

    Without `now`: a booking of a meeting already held stays as a record (no invitation is
    sent for it, see scheduler/occurrences.py), so last year's bookings need not be removed.
    """
    problems: list[Problem] = []
    for i, routine in enumerate(profile.routines):
        for year, booking in routine.bookings.items():
            check = check_booking(routine, booking.date, booking.time, occurrence_year=year)
            for problem in check.problems:
                problems.append((("routines", i, "bookings", year, problem.field), problem.message))
    return problems


def _read_attachments(
    base: Path, profile: Profile
) -> tuple[dict[str, list[Attachment]], list[Problem]]:
    found: dict[str, list[Attachment]] = {}
    problems: list[Problem] = []
    for i, routine in enumerate(profile.routines):
        files: list[Attachment] = []
        for j, name in enumerate(routine.attachments):
            where = ("routines", i, "attachments", j)
            try:
                filename, content = read_attachment(base, name)
            except AttachmentProblem as exc:
                problems.append((where, str(exc)))
                continue
            mime = mimetypes.guess_type(filename)[0] or "application/octet-stream"
            files.append(Attachment(filename, mime, content))
        found[routine.key] = files
    return found, problems
