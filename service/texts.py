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

import copy
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
from service.viewer import Viewer
from worker.render import LIMIT, Rendered, make_environment

PARTS = ("subject", "txt", "html")
PART_TEXT = {"subject": "Ämnesrad", "txt": "Text", "html": "HTML"}
# Templates an override may extend or include: the shared layout and footer parts.
SHARED_PARTS = frozenset(
    {"email/_layout.html", "email/_footer.txt", "email/_kallelse.html", "email/_kallelse.txt"}
)
MAX_BODY = 20_000

# --- the fields each kind of message is given (docs/template-context.md) -----------------------

ROUTINE_FIELDS = frozenset(
    {
        "municipality",
        "sender",
        "routine",
        "purpose",
        "occurrence",
        "due",
        "meeting",
        "recipient",
        "owners",
        "reply_to",
        "attachments",
    }
)
CASE_FIELDS = ROUTINE_FIELDS | {"reference", "facts", "report", "case"}
DIGEST_FIELDS = frozenset(
    {"municipality", "sender", "recipient", "routine", "purpose", "window", "failures"}
)
SUMMARY_FIELDS = ROUTINE_FIELDS | {"invited_count", "answered_count", "not_answered", "booked"}

# name -> what the message is for (Swedish, shown on /texter)
ABOUT: dict[str, str] = {
    "samverkansmote-boka": "Påminner den som kallar om att boka samverkansmötet",
    "samverkansmote-kallelse": "Kallelse till samverkansmötet skola–socialtjänst",
    "samverkansmote-obokat": "Till samordnaren när ett samverkansmöte aldrig bokades",
    "styrgrupp-kallelse": "Kallelse till styrgruppens möte om samverkan",
    "styrning-paminnelse": "Påminnelse om en styrningsuppgift med sista dag",
    "utvardering-underlag": "Ber om synpunkter inför utvärderingen av samverkan",
    "utvardering-paminnelse": "Påminnelse om att utvärderingen ska vara klar",
    "lasarsstart-forbered": "Förbereder utskicket om föräldrastöd inför läsårsstart",
    "lasarsstart-material": "Material om föräldrastöd till rektorerna",
    "foraldramote-ifo": "Bjud in familjeteamet till ett föräldramöte",
    "mote-avbokad": "Till den som inte längre är kallad till ett möte",
    "mote-installt": "Ett bokat möte är inställt",
    "svar-sammanstallning": "Till den som kallat: vilka som svarat på kallelsen",
    "fel-sammanstallning": (
        "Daglig sammanställning till samordnaren om meddelanden som inte kom fram"
    ),
    "anmalan-registrerad": "Kvitto till den som gjort en orosanmälan",
    "anmalan-mottagning": "Till mottagningsenheten: en ny orosanmälan",
    "anmalan-mottagen": "Till anmälaren: anmälan är mottagen",
    "anmalan-aterkoppling": "Till anmälaren: dags att be om återkoppling",
    "anmalan-vardnadshavare": "Information till vårdnadshavare om en anmälan",
    "arende-oppnat": "Ett samverkansärende är öppnat",
    "arende-frist": "Påminnelse om sista dag för ett möte i ärendet",
    "arende-forsenad": "Ett möte i ärendet hölls inte i tid",
    "arende-forsenad-chef": "Till chefen: ett ärendes möte är försenat",
    "arende-kallelse": "Kallelse till samverkansmöte i ett ärende",
    "arende-installt": "Ett möte i ärendet är inställt",
    "arende-minnesanteckningar": "Mall för minnesanteckningar efter ett möte i ärendet",
    "arende-uppfoljning": "Påminnelse om uppföljning i ärendet",
    "arende-sip": "Påminnelse om en insats i en SIP",
    "arende-sip-uppfoljning": "Påminnelse om uppföljning av en SIP",
    "arende-aterkallat": "Samtycket i ärendet är återkallat",
    "arende-avslutat": "Ärendet är avslutat",
}


def fields_of(name: str) -> frozenset[str]:
    """The top-level fields the message `name` is given (and so any override of it)."""
    if name.startswith(("anmalan-", "arende-")):
        return CASE_FIELDS
    if name == "fel-sammanstallning":
        return DIGEST_FIELDS
    if name == "svar-sammanstallning":
        return SUMMARY_FIELDS
    return ROUTINE_FIELDS


# --- sample data: made up, no real person ------------------------------------------------------

_SENDER = {"name": "Samverkan skola–socialtjänst", "email": "samverkan@exempel.invalid"}
_OWNER = {"name": "Alva Exempelsson", "email": "alva@exempel.invalid", "role": "Samordnare"}
_AGENDA = ["Uppföljning av föregående möte", "Behovsanalys", "Tid för nytt möte"]
_MEETING: dict[str, Any] = {
    "start": "2027-04-13T13:00:00+02:00",
    "end": "2027-04-13T15:00:00+02:00",
    "location": "Stadshuset, sal 1, Exempelgatan 1",
    "place": "stadshuset",
    "video": None,
    "agenda": list(_AGENDA),
    "sequence": 0,
    "number": 1,
    "method": "REQUEST",
}


def _routine_sample() -> dict[str, Any]:
    return {
        "municipality": "Exempelby kommun",
        "sender": dict(_SENDER),
        "routine": {
            "key": "exempel",
            "name": "Samverkansmöte skola–socialtjänst",
            "kind": "meeting",
            "description": "Ett exempel på rutinens beskrivning.",
        },
        "purpose": "exempel",
        "occurrence": {
            "key": "2027",
            "date": "2027-04-13",
            "window_end": "2027-04-30",
            "month": 4,
            "school_year": "2027/28",
        },
        "due": {"date": "2027-03-23", "days_left": 21},
        "meeting": dict(_MEETING),
        "recipient": {
            "name": "Bo Exempelsson",
            "roles": ["Rektor"],
            "units": [{"name": "Exempelskolan F–9", "kind": "grundskola", "stages": []}],
        },
        "owners": [{"name": _OWNER["name"], "role": _OWNER["role"]}],
        "reply_to": dict(_OWNER),
        "attachments": ["exempel.pdf"],
    }


def _case_sample(name: str) -> dict[str, Any]:
    reference = "Anmälan 2027-0001" if name.startswith("anmalan-") else "Ärende 2027-0001"
    return {
        **_routine_sample(),
        "routine": {"key": "case", "name": "Samverkansmöte i ärende", "kind": "case"},
        "occurrence": {"key": "2027-0001", "date": None},
        "reference": reference,
        "recipient": {
            "name": "Bo Exempelsson",
            "roles": ["Rektor"],
            "units": [{"name": "Exempelskolan F–9", "kind": "grundskola"}],
            "external": False,
        },
        "facts": {
            "urgent": False,
            "wants_feedback": True,
            "feedback_on": "2027-05-04",
            "feedback_after": "två veckor",
            "first_deadline": "2027-04-30",
            "known_on": "2027-04-01",
            "consent": True,
            "sip": False,
            "meeting": 1,
            "deadline": "2027-04-30",
            "runs_from": "2027-04-01",
            "held_on": "2027-04-13",
            "follow_up": "2027-06-01",
            "item": 1,
            "due_on": "2027-05-15",
            "items": 1,
        },
        "report": {
            "reference": "Anmälan 2027-0001",
            "unit": "Exempelskolan F–9",
            "reporter": "Bo Exempelsson",
            "intake": {"name": "Mottagningsenheten Exempel", "phone": "000-00 00 00"},
            "registered_on": "2027-04-01",
            "received": {"name": "Cilla Exempelsson", "on": "2027-04-02"},
        },
        "case": {
            "reference": "Ärende 2027-0001",
            "owner": dict(_OWNER),
            "known_on": "2027-04-01",
            "state": "active",
            "sip": False,
            "adult_pupil": False,
            "agenda": list(_AGENDA),
            "deadlines": [{"meeting": 1, "last_day": "2027-04-30", "met": False}],
        },
    }


def _digest_sample() -> dict[str, Any]:
    base = _routine_sample()
    return {
        "municipality": base["municipality"],
        "sender": base["sender"],
        "recipient": {"name": _OWNER["name"], "roles": ["Samordnare"], "units": []},
        "routine": {"name": "Meddelanden som inte kom fram"},
        "purpose": "digest",
        "window": {"from": "2027-04-12T07:00:00+02:00", "to": "2027-04-13T07:00:00+02:00"},
        "failures": [
            {
                "routine": "Utvärdering av samverkan",
                "purpose": "paminnelse-30",
                "address": "bo@exempel.invalid",
                "attempts": 3,
                "failed_at": "2027-04-12T09:30:00+02:00",
                "error": "550 5.1.1 mailbox unavailable",
            }
        ],
    }


def _summary_sample() -> dict[str, Any]:
    return {
        **_routine_sample(),
        "meeting": None,
        "booked": {"start": _MEETING["start"], "end": _MEETING["end"], "sequence": 0},
        "invited_count": 3,
        "answered_count": 2,
        "not_answered": [{"name": "Bo Exempelsson", "roles": ["Rektor"]}],
    }


# Fields that may be None in a real message: an override must render wherever its default does.
NULLABLE = (
    ("meeting",),
    ("reply_to",),
    ("routine", "description"),
    ("occurrence", "window_end"),
    ("occurrence", "month"),
    ("occurrence", "school_year"),
    ("meeting", "location"),
    ("meeting", "video"),
    ("report", "received"),
    ("facts", "feedback_on"),
)


def variants(name: str) -> list[dict[str, Any]]:
    """The sample, then the sample with each nullable field it has set to None."""
    base = sample(name)
    found = [base]
    for path in NULLABLE:
        context = copy.deepcopy(base)
        holder: Any = context
        for key in path[:-1]:
            holder = holder.get(key) if isinstance(holder, dict) else None
        if isinstance(holder, dict) and holder.get(path[-1]) is not None:
            holder[path[-1]] = None
            found.append(context)
    return found


def sample(name: str) -> dict[str, Any]:
    """Made-up data to preview the message `name` on: every field its kind is given."""
    fields = fields_of(name)
    if fields is CASE_FIELDS:
        return _case_sample(name)
    if fields is DIGEST_FIELDS:
        return _digest_sample()
    if fields is SUMMARY_FIELDS:
        return _summary_sample()
    return _routine_sample()


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


def _overrides(session: Session, municipality_id: int) -> list[models.MessageText]:
    t = models.MessageText
    return list(session.scalars(select(t).where(t.municipality_id == municipality_id)))


def catalogue(session: Session, viewer: Viewer, templates_dir: Path) -> list[TextRow]:
    """Every message, what it is for, and which of its parts the municipality has reworded."""
    _check(viewer)
    own: dict[str, list[str]] = {}
    for row in _overrides(session, viewer.municipality_id):
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
    _audit(session, viewer, now, "text.reverted", {"message": name})


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
