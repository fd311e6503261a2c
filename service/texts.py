"""Message texts: every message's default wording, a municipality's own wording (an override
of one template file, stored in `message_text`), its validation and its preview.

The fields a template may use are the ones its kind of message is given
(docs/template-context.md): `FIELDS` below is that table in code. An override is parsed and
rendered in the sandboxed environment the worker renders overrides in (`worker.render`), on
made-up sample data (`SAMPLES`, no real person), and refused with a Swedish message naming the
line and the field when it uses a field its default is not given, does not parse, fails to
render, reaches for another template than the shared layout parts, or has a subject of more
than one line. Only coordinators (`samordnare`) read or change texts; every change is audited.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from jinja2 import Environment, TemplateSyntaxError, UndefinedError, meta, nodes
from jinja2.exceptions import SecurityError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

import models
from core.errors import TemplateError
from service.text_fields import ABOUT, fields_of, sample, variants
from service.viewer import Viewer
from worker.render import LIMIT, Rendered, make_environment

PARTS = ("subject", "txt", "html")
PART_TEXT = {"subject": "Ämnesrad", "txt": "Text", "html": "HTML"}
# Templates an override may extend or include: the shared layout and footer parts.
SHARED_PARTS = frozenset(
    {
        "email/_layout.html",
        "email/_footer.txt",
        "email/_kallelse.html",
        "email/_kallelse.txt",
        "email/_svar-arende.txt",
    }
)
MAX_BODY = 20_000

# --- errors ------------------------------------------------------------------------------------


class TextNotFound(Exception):
    """No such message."""


class NotAllowed(Exception):
    """Only coordinators read and change message texts."""


@dataclass(frozen=True)
class Problem:
    part: str  # subject, txt, html
    line: int | None
    message: str  # Swedish, for the web

    def __str__(self) -> str:
        where = PART_TEXT[self.part] + (f", rad {self.line}" if self.line else "")
        return f"{where}: {self.message}"


class TextRefused(Exception):
    def __init__(self, problems: list[Problem]):
        super().__init__("; ".join(map(str, problems)))
        self.problems = problems


# --- reading -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextRow:
    name: str
    about: str
    overridden: tuple[str, ...]  # parts with the municipality's own wording


@dataclass(frozen=True)
class TextPart:
    part: str
    label: str
    default: str
    override: str | None
    updated_at: dt.datetime | None
    updated_by: str | None

    @property
    def current(self) -> str:
        return self.default if self.override is None else self.override


@dataclass(frozen=True)
class TextView:
    name: str
    about: str
    fields: tuple[str, ...]
    parts: tuple[TextPart, ...]

    @property
    def overridden(self) -> bool:
        return any(p.override is not None for p in self.parts)


def _check(viewer: Viewer) -> None:
    if not viewer.is_coordinator:
        raise NotAllowed("coordinators only")


def template_name(name: str, part: str) -> str:
    return f"email/{name}.{part}"


def message_names(templates_dir: Path) -> list[str]:
    """Every message: the names of `templates/email/<name>.subject` (not the shared parts)."""
    return sorted(
        p.name.removesuffix(".subject")
        for p in (templates_dir / "email").glob("*.subject")
        if not p.name.startswith("_")
    )


def _known(templates_dir: Path, name: str) -> None:
    if name not in message_names(templates_dir):
        raise TextNotFound(name)


def default_text(templates_dir: Path, name: str, part: str) -> str:
    return (templates_dir / "email" / f"{name}.{part}").read_text(encoding="utf-8")


def catalogue(session: Session, viewer: Viewer, templates_dir: Path) -> list[TextRow]:
    """Every message, what it is for, and which of its parts the municipality has reworded."""
    _check(viewer)
    own: dict[str, list[str]] = {}
    t = models.MessageText
    for row in session.scalars(select(t).where(t.municipality_id == viewer.municipality_id)):
        name, _, part = row.template.removeprefix("email/").rpartition(".")
        own.setdefault(name, []).append(part)
    return [
        TextRow(n, ABOUT.get(n, ""), tuple(p for p in PARTS if p in own.get(n, ())))
        for n in message_names(templates_dir)
    ]


def text_view(session: Session, viewer: Viewer, templates_dir: Path, name: str) -> TextView:
    _check(viewer)
    _known(templates_dir, name)
    t = models.MessageText
    rows = {
        r.template: r
        for r in session.scalars(
            select(t).where(
                t.municipality_id == viewer.municipality_id,
                t.template.in_([template_name(name, p) for p in PARTS]),
            )
        )
    }
    parts = []
    for part in PARTS:
        row = rows.get(template_name(name, part))
        who = session.get(models.Person, row.updated_by_id) if row and row.updated_by_id else None
        parts.append(
            TextPart(
                part,
                PART_TEXT[part],
                default_text(templates_dir, name, part),
                row.body if row else None,
                row.updated_at if row else None,
                who.name if who else None,
            )
        )
    return TextView(name, ABOUT.get(name, ""), tuple(sorted(fields_of(name))), tuple(parts))


# --- validation and preview --------------------------------------------------------------------


def _template_line(trace: TracebackType | None) -> int | None:
    """The line of the template where rendering failed (jinja rewrites the traceback so its
    frames carry the template's lines)."""
    line = None
    while trace is not None:
        if trace.tb_frame.f_code.co_filename == "<template>":
            line = trace.tb_lineno
        trace = trace.tb_next
    return line


def _unknown_names(ast: nodes.Template, allowed: frozenset[str]) -> list[Problem]:
    # `self` (the template's own blocks) is no field either
    loaded = {n.name for n in ast.find_all(nodes.Name) if n.ctx == "load"}
    unknown = (meta.find_undeclared_variables(ast) | (loaded & {"self"})) - allowed
    problems = []
    for node in ast.find_all(nodes.Name):
        if node.ctx == "load" and node.name in unknown:
            unknown.discard(node.name)
            problems.append(
                Problem(
                    "",
                    node.lineno,
                    f"okänt fält ”{node.name}”. Meddelandet får använda: "
                    + ", ".join(sorted(allowed)),
                )
            )
    return problems


def check_part(env: Environment, name: str, part: str, body: str) -> list[Problem]:
    """What is wrong with `body` as the `part` of message `name`, before any rendering."""
    if len(body) > MAX_BODY:
        return [Problem(part, None, f"texten är för lång (högst {MAX_BODY} tecken)")]
    try:
        ast = env.parse(body)
    except TemplateSyntaxError as error:
        return [Problem(part, error.lineno, f"mallen går inte att tolka: {error.message}")]
    problems = [Problem(part, p.line, p.message) for p in _unknown_names(ast, fields_of(name))]
    for const in ast.find_all(nodes.Const):
        if isinstance(const.value, int | float) and abs(const.value) > LIMIT:
            problems.append(Problem(part, const.lineno, f"talet är för stort (högst {LIMIT})"))
    for node in ast.find_all((nodes.Import, nodes.FromImport)):
        problems.append(Problem(part, node.lineno, "får inte importera andra mallar"))
    for other in meta.find_referenced_templates(ast):
        if other is None or other not in SHARED_PARTS:
            problems.append(
                Problem(
                    part,
                    None,
                    "får bara bygga på de gemensamma delarna ("
                    + ", ".join(sorted(SHARED_PARTS))
                    + ")",
                )
            )
    return problems


@dataclass(frozen=True)
class Preview:
    rendered: Rendered | None
    problems: list[Problem]


def preview(templates_dir: Path, name: str, bodies: Mapping[str, str]) -> Preview:
    """`bodies` (part → text; a part left out keeps its default) rendered on the sample data
    in the sandbox, or the problems found."""
    texts = {template_name(name, p): b.replace("\r\n", "\n") for p, b in bodies.items()}
    env = make_environment(templates_dir, overrides=texts)
    problems: list[Problem] = []
    for part in bodies:
        problems += check_part(env, name, part, texts[template_name(name, part)])
    if problems:
        return Preview(None, problems)
    default = make_environment(templates_dir)
    first, *others = variants(name)
    parts: dict[str, str] = {}
    for part in PARTS:
        try:
            parts[part] = _render(env, template_name(name, part), first)
        except TemplateError as error:
            problems.append(_render_problem(part, error))
    if not problems:
        problems = [p for part in bodies if (p := _when_empty(default, env, name, part, others))]
    if problems:
        return Preview(None, problems)
    subject = parts["subject"].strip()
    if "\n" in subject or "\r" in subject:
        return Preview(None, [Problem("subject", None, "ämnesraden blir mer än en rad")])
    return Preview(Rendered(subject, parts["txt"], parts["html"]), [])


def _render(env: Environment, template: str, context: dict[str, Any]) -> str:
    try:
        return env.get_template(template).render(**context)
    except Exception as exc:  # as worker.render: every kind of failure is the template's
        raise TemplateError(f"template {template}: {type(exc).__name__}") from exc


def _when_empty(
    default: Environment, env: Environment, name: str, part: str, contexts: list[dict[str, Any]]
) -> Problem | None:
    """Where the default copes with a field left empty (None), so must the override."""
    template = template_name(name, part)
    for context in contexts:
        try:
            _render(default, template, context)
        except TemplateError:
            continue
        try:
            _render(env, template, context)
        except TemplateError as error:
            return _render_problem(part, error, empty=True)
    return None


def _render_problem(part: str, error: TemplateError, empty: bool = False) -> Problem:
    cause = error.__cause__
    line = _template_line(cause.__traceback__) if cause is not None else None
    if isinstance(cause, SecurityError):
        text = "otillåten åtkomst i mallen"
    elif isinstance(cause, UndefinedError):
        missing = re.search(r"attribute '([^']{1,60})'|'([^']{1,60})' is undefined", str(cause))
        field = next((g for g in missing.groups() if g), "") if missing else ""
        text = f"fältet ”{field}” finns inte i meddelandet" if field else "ett fält saknas"
    else:
        text = f"mallen går inte att visa ({type(cause).__name__ if cause else 'fel'})"
    if empty:
        text += " när ett fält som kan saknas är tomt (till exempel mötet eller svarsadressen)"
    return Problem(part, line, text)


# --- changing ----------------------------------------------------------------------------------


def save(
    session: Session,
    viewer: Viewer,
    templates_dir: Path,
    name: str,
    bodies: Mapping[str, str],
    now: dt.datetime,
) -> list[str]:
    """Store the municipality's own wording of `name`: each part that differs from its
    default; a part equal to its default goes back to it. Refused (nothing stored) with the
    problems found. Returns the parts now reworded."""
    _check(viewer)
    _known(templates_dir, name)
    clean = {p: bodies[p].replace("\r\n", "\n") for p in PARTS if p in bodies}
    found = preview(templates_dir, name, clean)
    if found.problems:
        raise TextRefused(found.problems)
    t = models.MessageText
    own = []
    for part, body in clean.items():
        template = template_name(name, part)
        row = session.scalar(
            select(t).where(t.municipality_id == viewer.municipality_id, t.template == template)
        )
        if body == default_text(templates_dir, name, part):
            if row is not None:
                session.delete(row)
            continue
        own.append(part)
        if row is None:
            row = t(municipality_id=viewer.municipality_id, template=template, body=body)
            session.add(row)
        elif row.body == body:
            continue
        row.body, row.updated_at, row.updated_by_id = body, now, viewer.person_id
    _changed(session, viewer)
    _audit(session, viewer, now, "text.saved", {"message": name, "parts": own})
    return own


def revert(
    session: Session, viewer: Viewer, templates_dir: Path, name: str, now: dt.datetime
) -> None:
    """Back to the default wording of every part of `name`, for the viewer's municipality."""
    _check(viewer)
    _known(templates_dir, name)
    t = models.MessageText
    session.execute(
        delete(t).where(
            t.municipality_id == viewer.municipality_id,
            t.template.in_([template_name(name, p) for p in PARTS]),
        )
    )
    _changed(session, viewer)
    _audit(session, viewer, now, "text.reverted", {"message": name})


def _changed(session: Session, viewer: Viewer) -> None:
    """Tell the workers: they read a municipality's texts again only when this was raised."""
    municipality = session.get_one(models.Municipality, viewer.municipality_id)
    municipality.texts_version += 1


def _audit(
    session: Session, viewer: Viewer, now: dt.datetime, action: str, detail: dict[str, Any]
) -> None:
    session.add(
        models.WebAudit(
            municipality_id=viewer.municipality_id,
            at=now,
            actor_id=viewer.person_id,
            action=action,
            detail=detail,
        )
    )


__all__ = [
    "PARTS",
    "NotAllowed",
    "Preview",
    "Problem",
    "TextNotFound",
    "TextRefused",
    "catalogue",
    "fields_of",
    "preview",
    "revert",
    "sample",
    "save",
    "text_view",
]
