"""Render a message from its templates: `email/<name>.subject`, `.txt` and `.html`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from core.errors import TemplateError as TemplateError  # re-exported

WEEKDAYS = ("måndag", "tisdag", "onsdag", "torsdag", "fredag", "lördag", "söndag")
MONTHS = [
    "januari",
    "februari",
    "mars",
    "april",
    "maj",
    "juni",
    "juli",
    "augusti",
    "september",
    "oktober",
    "november",
    "december",
]


def datum(value: str | dt.date | dt.datetime) -> str:
    """`2027-04-13` → `tisdag 13 april 2027`."""
    day = _as_date(value)
    return f"{WEEKDAYS[day.weekday()]} {day.day} {MONTHS[day.month - 1]} {day.year}"


def klockslag(value: str | dt.datetime) -> str:
    """`2027-04-13T13:00:00+02:00` → `13.00` (Swedish style, local time as given)."""
    moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    return f"{moment.hour:02d}.{moment.minute:02d}"


def manad(value: int) -> str:
    return MONTHS[int(value) - 1]


def roll(value: str) -> str:
    """A role's name inside a sentence: `Enhetschef IFO/bistånd` → `enhetschef IFO/bistånd`.
    Only the first letter changes, and not when it begins an abbreviation (`IFO-chef`)."""
    if len(value) > 1 and value[1].isupper():
        return value
    return value[:1].lower() + value[1:]


def _as_date(value: str | dt.date | dt.datetime) -> dt.date:
    if isinstance(value, str):
        return (
            dt.datetime.fromisoformat(value).date()
            if "T" in value
            else dt.date.fromisoformat(value)
        )
    return value.date() if isinstance(value, dt.datetime) else value


def make_environment(templates_dir: Path) -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(templates_dir)),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(datum=datum, klockslag=klockslag, manad=manad, roll=roll)
    return env


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


class Renderer:
    def __init__(self, templates_dir: Path):
        self.env = make_environment(templates_dir)

    def subject(self, template: str, context: dict[str, Any]) -> str:
        return self._one(f"email/{template}.subject", context).strip()

    def render(self, template: str, context: dict[str, Any]) -> Rendered:
        subject = self.subject(template, context)
        if "\n" in subject or "\r" in subject:
            raise TemplateError(f"the subject of {template!r} renders to more than one line")
        return Rendered(
            subject=subject,
            text=self._one(f"email/{template}.txt", context),
            html=self._one(f"email/{template}.html", context),
        )

    def _one(self, name: str, context: dict[str, Any]) -> str:
        try:
            return self.env.get_template(name).render(**context)
        except Exception as exc:  # jinja raises many kinds; all mean the same to the caller
            raise TemplateError(f"template {name}: {type(exc).__name__}: {exc}") from exc
