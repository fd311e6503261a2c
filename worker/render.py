"""Render a message from its templates: `email/<name>.subject`, `.txt` and `.html`."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateNotFound,
    select_autoescape,
)
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from sqlalchemy import select
from sqlalchemy.orm import Session

import models
from core.dates import MONTHS, WEEKDAYS
from core.errors import TemplateError as TemplateError  # re-exported


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


def make_environment(
    templates_dir: Path, *, overrides: Mapping[str, str] | None = None
) -> Environment:
    """The environment for the template files; with `overrides` (a municipality's own texts,
    template name → body), a sandboxed one that reads those before the files, and has no
    globals: an override reaches only the context it is given and the filters."""
    files = FileSystemLoader(str(templates_dir))
    kind = Environment if overrides is None else OverrideEnvironment
    env = kind(
        loader=files if overrides is None else ChoiceLoader([OverrideLoader(overrides), files]),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    if overrides is not None:
        env.globals.clear()
    env.filters.update(datum=datum, klockslag=klockslag, manad=manad, roll=roll)
    return env


# --- a municipality's own texts (service/texts.py validates them) ------------------------------

LIMIT = 100_000  # the largest number or repeated text an override may make


class OverrideEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox, and no `**` nor a `*` that makes a huge number or text (memory)."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        sizes = [len(v) if isinstance(v, str | list | tuple) else v for v in (left, right)]
        if operator == "**" or not all(isinstance(v, int | float) for v in sizes):
            raise SecurityError(f"the operator {operator} is not allowed here")
        if abs(sizes[0] * sizes[1]) > LIMIT:
            raise SecurityError(f"{operator} makes more than {LIMIT}")
        return super().call_binop(context, operator, left, right)


class OverrideLoader(BaseLoader):
    """A municipality's own texts (template name → body), put in front of the files."""

    def __init__(self, texts: Mapping[str, str]):
        self.texts = dict(texts)

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool]]:
        if template not in self.texts:
            raise TemplateNotFound(template)
        # Never stale: an environment is built anew for each version of the texts.
        return self.texts[template], None, lambda: True


@dataclass(frozen=True)
class Overrides:
    """A municipality's overrides as stored now: their version (0: none), and a way to read the
    bodies, called only when that version is not the one cached."""

    municipality_id: int
    version: int
    bodies: Callable[[], Mapping[str, str]]


def municipality_texts(session: Session, municipality: models.Municipality) -> Overrides:
    """The lookup: the version is the municipality's `texts_version` (no query); the bodies are
    read only when the cache holds another version, and never when it is 0 (none of its own)."""
    t = models.MessageText

    def bodies() -> Mapping[str, str]:
        where = t.municipality_id == municipality.id
        return {
            name: body for name, body in session.execute(select(t.template, t.body).where(where))
        }

    return Overrides(municipality.id, municipality.texts_version, bodies)


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


class Renderer:
    def __init__(self, templates_dir: Path):
        self.env = make_environment(templates_dir)
        self.templates_dir = templates_dir
        # municipality id -> (version of its overrides, their environment), per process
        self._overridden: dict[int, tuple[int, Environment]] = {}
        self._lock = threading.Lock()

    def subject(
        self, template: str, context: dict[str, Any], overrides: Overrides | None = None
    ) -> str:
        return self._one(f"email/{template}.subject", context, overrides).strip()

    def render(
        self, template: str, context: dict[str, Any], overrides: Overrides | None = None
    ) -> Rendered:
        """The message; with `overrides`, in that municipality's own words where it has any."""
        subject = self.subject(template, context, overrides)
        if "\n" in subject or "\r" in subject:
            raise TemplateError(f"the subject of {template!r} renders to more than one line")
        return Rendered(
            subject=subject,
            text=self._one(f"email/{template}.txt", context, overrides),
            html=self._one(f"email/{template}.html", context, overrides),
        )

    def _env(self, overrides: Overrides | None) -> Environment:
        if overrides is None or not overrides.version:
            return self.env
        with self._lock:
            cached = self._overridden.get(overrides.municipality_id)
            if cached is not None and cached[0] == overrides.version:
                return cached[1]
        env = make_environment(self.templates_dir, overrides=overrides.bodies())
        with self._lock:
            self._overridden[overrides.municipality_id] = (overrides.version, env)
        return env

    def _one(self, name: str, context: dict[str, Any], overrides: Overrides | None = None) -> str:
        try:
            return self._env(overrides).get_template(name).render(**context)
        except Exception as exc:  # jinja raises many kinds; all mean the same to the caller
            raise TemplateError(f"template {name}: {type(exc).__name__}: {exc}") from exc
