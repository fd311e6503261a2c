"""The e-mail templates render with the context documented in docs/template-context.md.

Each template is rendered with realistic contexts (and with the nullable fields set to None),
under StrictUndefined, with HTML autoescaped, by the environment `worker.render` builds.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined, UndefinedError, meta

from worker.render import datum, klockslag, make_environment, manad, roll

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates"
PROFILE = ROOT / "profiles" / "exempel.yaml"

TEMPLATE_NAMES = (
    "samverkansmote-boka",
    "samverkansmote-kallelse",
    "utvardering-underlag",
    "utvardering-paminnelse",
    "lasarsstart-forbered",
    "lasarsstart-material",
    "foraldramote-ifo",
    "styrning-paminnelse",
    "styrgrupp-kallelse",
    "samverkansmote-obokat",
)
PARTS = ("subject", "txt", "html")

# The top-level names a template may use (docs/template-context.md).
DOCUMENTED_FIELDS = frozenset(
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

FOOTER_TEXT = "Uppgifter om enskilda barn skickas aldrig med e-post"


def local_environment(**options: Any) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        undefined=StrictUndefined,
        autoescape=lambda name: name is not None and name.endswith(".html"),
        **options,
    )
    env.filters.update(datum=datum, klockslag=klockslag, manad=manad, roll=roll)
    return env


@pytest.fixture(scope="module")
def env() -> Environment:
    return make_environment(TEMPLATES)


# --- contexts ---------------------------------------------------------------------------------

SENDER = {
    "name": "Samverkan skola–socialtjänst, Exempelby kommun",
    "email": "samverkan@exempelby.se",
}
OWNERS_MEETING = [
    {"name": "Eva Sjöberg", "role": "Elevhälsochef"},
    {"name": "Sara Lundqvist", "role": "Enhetschef IFO/bistånd"},
]
AGENDA = [
    "Uppföljning av föregående möte",
    "Behovsanalys",
    "Syfte och mål",
    "Utvärdering av samverkan",
    "Gemensamma kompetensutvecklingsfrågor",
    "Tid för nytt möte",
]
DESCRIPTION = (
    "Elevhälsochef inom bildningsförvaltningen och enhetschef inom IFO/bistånd kallar till ett "
    "samverkansmöte två gånger per år, i april och oktober.\nSyftet är att följa upp "
    "framarbetade rutiner för samverkan."
)


def _context(
    *,
    routine: dict[str, Any],
    purpose: str,
    occurrence: dict[str, Any],
    due: dict[str, Any],
    recipient: dict[str, Any],
    owners: list[dict[str, str]],
    reply_to: dict[str, str] | None = None,
    meeting: dict[str, Any] | None = None,
    attachments: list[str] | None = None,
) -> dict[str, Any]:
    full_occurrence = {"window_end": None, "month": None, "school_year": None, **occurrence}
    return {
        "municipality": "Exempelby kommun",
        "sender": dict(SENDER),
        "routine": {"description": None, **routine},
        "purpose": purpose,
        "occurrence": full_occurrence,
        "due": due,
        "meeting": meeting,
        "recipient": recipient,
        "owners": owners,
        "reply_to": reply_to,
        "attachments": attachments or [],
    }


def _boka() -> dict[str, Any]:
    return _context(
        routine={
            "key": "samverkansmote-host",
            "name": "Samverkansmöte skola–socialtjänst i oktober",
            "kind": "meeting",
            "description": DESCRIPTION,
        },
        purpose="boka-6v",
        occurrence={"key": "2027", "date": "2027-10-01", "window_end": "2027-10-29", "month": 10},
        due={"date": "2027-08-20", "days_left": 42},
        recipient={"name": "Eva Sjöberg", "roles": ["Elevhälsochef"], "units": []},
        owners=OWNERS_MEETING,
        reply_to={
            "name": "Elin Bergström",
            "email": "elin.bergstrom@exempelby.se",
            "role": "Samordnare",
        },
    )


def _kallelse(sequence: int = 0) -> dict[str, Any]:
    return _context(
        routine={
            "key": "samverkansmote-var",
            "name": "Samverkansmöte skola–socialtjänst i april",
            "kind": "meeting",
            "description": DESCRIPTION,
        },
        purpose="kallelse",
        occurrence={"key": "2027", "date": "2027-04-13", "window_end": "2027-04-30", "month": 4},
        due={"date": "2027-03-23", "days_left": 21},
        meeting={
            "start": "2027-04-13T13:00:00+02:00",
            "end": "2027-04-13T15:00:00+02:00",
            "location": "Stadshuset, sal Linnén",
            "agenda": list(AGENDA),
            "sequence": sequence,
        },
        recipient={
            "name": "Ingrid Mattsson",
            "roles": ["Rektor"],
            "units": [{"name": "Kyrkbacksskolan F–9", "kind": "grundskola"}],
        },
        owners=OWNERS_MEETING,
        reply_to={
            "name": "Eva Sjöberg",
            "email": "eva.sjoberg@exempelby.se",
            "role": "Elevhälsochef",
        },
    )


def _obokat() -> dict[str, Any]:
    context = _boka()
    context["purpose"] = "obokat"
    context["recipient"] = {"name": "Elin Bergström", "roles": ["Samordnare"], "units": []}
    context["reply_to"] = None
    return context


def _underlag() -> dict[str, Any]:
    return _context(
        routine={"key": "utvardering", "name": "Utvärdering av samverkan", "kind": "deadline"},
        purpose="underlag",
        occurrence={"key": "2029", "date": "2029-06-29"},
        due={"date": "2029-05-18", "days_left": 42},
        recipient={"name": "Ali Hassan", "roles": ["Familjeteam"], "units": []},
        owners=OWNERS_MEETING,
        reply_to={
            "name": "Eva Sjöberg",
            "email": "eva.sjoberg@exempelby.se",
            "role": "Elevhälsochef",
        },
    )


def _utvardering_paminnelse(days_left: int = 30) -> dict[str, Any]:
    return _context(
        routine={
            "key": "utvardering",
            "name": "Utvärdering av samverkan",
            "kind": "deadline",
            "description": "Utvärdering av samverkan sker senast den 30 juni varje år.",
        },
        purpose="paminnelse-30" if days_left == 30 else "paminnelse-7",
        occurrence={"key": "2029", "date": "2029-06-29"},
        due={"date": "2029-05-30", "days_left": days_left},
        recipient={"name": "Sara Lundqvist", "roles": ["Enhetschef IFO/bistånd"], "units": []},
        owners=OWNERS_MEETING,
    )


def _forbered() -> dict[str, Any]:
    return _context(
        routine={
            "key": "lasarsstart-material",
            "name": "Material om föräldrastöd vid läsårets början",
            "kind": "mailout",
        },
        purpose="forbered",
        occurrence={"key": "2027/28", "date": "2027-08-19", "school_year": "2027/28"},
        due={"date": "2027-07-29", "days_left": 21},
        recipient={
            "name": "Peter Åkesson",
            "roles": ["Avdelningschef IFO/bistånd"],
            "units": [{"name": "Individ- och familjeomsorgen (IFO)", "kind": "ifo"}],
        },
        owners=[{"name": "Peter Åkesson", "role": "Avdelningschef IFO/bistånd"}],
        reply_to={
            "name": "Tobias Ahlberg",
            "email": "tobias.ahlberg@exempelby.se",
            "role": "Samordnare",
        },
        attachments=["foraldrastod-exempelby.pdf", "kontaktuppgifter-ifo.txt"],
    )


def _material() -> dict[str, Any]:
    return _context(
        routine={
            "key": "lasarsstart-material",
            "name": "Material om föräldrastöd vid läsårets början",
            "kind": "mailout",
        },
        purpose="utskick",
        occurrence={"key": "2027/28", "date": "2027-08-19", "school_year": "2027/28"},
        due={"date": "2027-08-19", "days_left": 0},
        recipient={
            "name": "Maria Lindgren",
            "roles": ["Rektor"],
            "units": [
                {"name": "Solrosens förskola", "kind": "forskola"},
                {"name": "Blåklockans förskola", "kind": "forskola"},
            ],
        },
        owners=[{"name": "Peter Åkesson", "role": "Avdelningschef IFO/bistånd"}],
        reply_to={
            "name": "Peter Åkesson",
            "email": "peter.akesson@exempelby.se",
            "role": "Avdelningschef IFO/bistånd",
        },
        attachments=["foraldrastod-exempelby.pdf", "kontaktuppgifter-ifo.txt"],
    )


def _foraldramote() -> dict[str, Any]:
    return _context(
        routine={
            "key": "foraldramote-ifo",
            "name": "IFO och familjeteamet på föräldramöten",
            "kind": "reminder",
        },
        purpose="paminnelse",
        occurrence={"key": "2027/28", "date": "2027-09-02", "school_year": "2027/28"},
        due={"date": "2027-09-02", "days_left": 0},
        recipient={
            "name": "Per Sundberg",
            "roles": ["Rektor"],
            "units": [
                {"name": "Solrosens förskola", "kind": "forskola", "stages": ["forskola"]},
                {
                    "name": "Björkhagsskolan F–6",
                    "kind": "grundskola",
                    "stages": ["forskoleklass", "lagstadiet", "mellanstadiet"],
                },
                {"name": "Centralskolan 7–9", "kind": "grundskola", "stages": ["hogstadiet"]},
                {"name": "Exempelbygymnasiet", "kind": "gymnasium", "stages": ["gymnasiet"]},
                {"name": "Individ- och familjeomsorgen (IFO)", "kind": "ifo", "stages": []},
            ],
        },
        owners=[{"name": "Per Sundberg", "role": "Rektor"}],
        reply_to={
            "name": "Peter Åkesson",
            "email": "peter.akesson@exempelby.se",
            "role": "Avdelningschef IFO/bistånd",
        },
    )


def _styrning() -> dict[str, Any]:
    return _context(
        routine={
            "key": "arsrapport",
            "name": "Årlig redovisning till nämnderna",
            "kind": "deadline",
            "description": "Resultat och förändringar av handlingsplanen redovisas årligen\n"
            "i förvaltningarnas nämnder.",
        },
        purpose="paminnelse-6v",
        occurrence={"key": "2027", "date": "2027-11-15"},
        due={"date": "2027-10-04", "days_left": 42},
        recipient={"name": "Helena Strand", "roles": ["Styrgruppen"], "units": []},
        owners=[
            {"name": "Lars Nyström", "role": "Styrgruppen"},
            {"name": "Helena Strand", "role": "Styrgruppen"},
            {"name": "Eva Sjöberg", "role": "Styrgruppen"},
            {"name": "Peter Åkesson", "role": "Styrgruppen"},
        ],
    )


BUILDERS = {
    "samverkansmote-boka": _boka,
    "samverkansmote-kallelse": _kallelse,
    "utvardering-underlag": _underlag,
    "utvardering-paminnelse": _utvardering_paminnelse,
    "lasarsstart-forbered": _forbered,
    "lasarsstart-material": _material,
    "foraldramote-ifo": _foraldramote,
    "styrning-paminnelse": _styrning,
    "styrgrupp-kallelse": _kallelse,
    "samverkansmote-obokat": _obokat,
}


def _with_nulls(context: dict[str, Any]) -> dict[str, Any]:
    """The same context with every nullable field None and every list empty."""
    nulls = copy.deepcopy(context)
    nulls["routine"]["description"] = None
    nulls["occurrence"].update(window_end=None, school_year=None)
    if nulls["meeting"] is None:
        nulls["occurrence"]["month"] = None
    else:
        nulls["meeting"].update(location=None, agenda=[])
    nulls["reply_to"] = None
    nulls["attachments"] = []
    nulls["recipient"]["units"] = []
    return nulls


CASES = [
    *[pytest.param(name, BUILDERS[name](), id=name) for name in TEMPLATE_NAMES],
    *[
        pytest.param(name, _with_nulls(BUILDERS[name]()), id=f"{name}-nulls")
        for name in TEMPLATE_NAMES
    ],
    pytest.param("samverkansmote-kallelse", _kallelse(sequence=2), id="kallelse-updated"),
    pytest.param("utvardering-paminnelse", _utvardering_paminnelse(1), id="paminnelse-1-day"),
]


def render_all(env: Environment, name: str, context: dict[str, Any]) -> dict[str, str]:
    return {part: env.get_template(f"email/{name}.{part}").render(context) for part in PARTS}


# --- files ------------------------------------------------------------------------------------


def test_layout_and_footer_exist() -> None:
    assert (TEMPLATES / "email" / "_layout.html").is_file()
    assert (TEMPLATES / "email" / "_footer.txt").is_file()


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_every_part_exists(name: str) -> None:
    for part in PARTS:
        assert (TEMPLATES / "email" / f"{name}.{part}").is_file(), f"{name}.{part} is missing"


def test_every_template_named_in_the_profile_exists() -> None:
    profile = yaml.safe_load(PROFILE.read_text(encoding="utf-8"))
    named = {
        message["template"] for routine in profile["routines"] for message in routine["messages"]
    }
    for name in sorted(named):
        for part in PARTS:
            assert (TEMPLATES / "email" / f"{name}.{part}").is_file(), f"{name}.{part} is missing"
    assert named == set(TEMPLATE_NAMES), "every template of the profile is tested here"


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_templates_use_only_documented_fields(name: str) -> None:
    env = local_environment()
    for part in PARTS:
        source = (TEMPLATES / "email" / f"{name}.{part}").read_text(encoding="utf-8")
        used = meta.find_undeclared_variables(env.parse(source))
        assert used <= DOCUMENTED_FIELDS, f"{name}.{part} uses {sorted(used - DOCUMENTED_FIELDS)}"


def test_subject_files_are_one_line() -> None:
    for name in TEMPLATE_NAMES:
        source = (TEMPLATES / "email" / f"{name}.subject").read_text(encoding="utf-8")
        assert "\n" not in source.rstrip("\n"), f"{name}.subject spans lines"


# --- rendering --------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "context"), CASES)
def test_renders(env: Environment, name: str, context: dict[str, Any]) -> None:
    out = render_all(env, name, context)
    subject = out["subject"].strip()
    assert subject
    assert "\n" not in subject and "\r" not in subject
    assert len(subject) <= 150
    for part, text in out.items():
        assert "{{" not in text and "{%" not in text, f"{name}.{part} left template syntax"
        assert "None" not in text, f"{name}.{part} printed a None"
    assert context["recipient"]["name"] in out["txt"]
    assert FOOTER_TEXT in out["txt"]
    assert FOOTER_TEXT in out["html"]
    assert out["html"].lstrip().startswith("<!DOCTYPE html>")
    assert 'lang="sv"' in out["html"]
    assert "\n\n\n" not in out["txt"], f"{name}.txt has a run of blank lines"


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_html_is_autoescaped(env: Environment, name: str) -> None:
    context = BUILDERS[name]()
    evil = '<script>alert("x")</script>'
    context["recipient"]["name"] = f"Anna {evil}"
    context["routine"]["name"] = f"Rutin {evil}"
    if context["meeting"] is not None:
        context["meeting"]["location"] = f"Sal {evil}"
    html = env.get_template(f"email/{name}.html").render(context)
    assert "<script" not in html
    assert "&lt;script&gt;" in html
    text = env.get_template(f"email/{name}.txt").render(context)
    assert evil in text, "plain text is not HTML-escaped"


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_a_missing_field_fails_loudly(env: Environment, name: str) -> None:
    context = BUILDERS[name]()
    del context["recipient"]
    with pytest.raises(UndefinedError):
        env.get_template(f"email/{name}.txt").render(context)


@pytest.mark.parametrize(("name", "context"), CASES)
def test_plain_text_does_not_depend_on_trim_blocks(name: str, context: dict[str, Any]) -> None:
    """The same text whether or not the renderer turns on trim_blocks and lstrip_blocks."""
    plain = render_all(local_environment(), name, context)
    trimmed = render_all(
        local_environment(trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True),
        name,
        context,
    )
    assert plain["subject"] == trimmed["subject"]
    assert plain["txt"].rstrip("\n") == trimmed["txt"].rstrip("\n")


# --- content ----------------------------------------------------------------------------------


def test_kallelse_lists_time_place_and_agenda(env: Environment) -> None:
    out = render_all(env, "samverkansmote-kallelse", _kallelse())
    assert out["subject"].strip() == (
        "Kallelse: samverkansmöte skola–socialtjänst tisdag 13 april 2027 kl. 13.00"
    )
    for text in (out["txt"], out["html"]):
        assert "En kalenderinbjudan är bifogad" in text
        assert "tisdag 13 april 2027" in text
        assert "13.00–15.00" in text
        assert "Stadshuset, sal Linnén" in text
        assert "uppdatering" not in text.lower()
    positions = [out["txt"].index(item) for item in AGENDA]
    assert positions == sorted(positions)
    assert out["html"].count("<li") == len(AGENDA)


def test_kallelse_says_when_it_is_an_update(env: Environment) -> None:
    out = render_all(env, "samverkansmote-kallelse", _kallelse(sequence=1))
    assert out["subject"].startswith("Ändrad kallelse:")
    assert "uppdatering av en tidigare kallelse" in out["txt"]
    assert "Uppdaterad kallelse" in out["html"]


def test_both_kallelser_share_one_frame_and_keep_their_own_texts(env: Environment) -> None:
    context = _kallelse()
    context["meeting"]["video"] = "https://video.exempelby.se/rum-12"
    routine = render_all(env, "samverkansmote-kallelse", context)
    board = render_all(env, "styrgrupp-kallelse", context)
    for out, intro in ((routine, "Mötet hålls två gånger per år"), (board, "Styrgruppen träffas")):
        for text in (out["txt"], out["html"]):
            assert intro in text
            assert "Stadshuset, sal Linnén" in text
            assert "En kalenderinbjudan är bifogad" in text
    assert "samverkansmöte skola–socialtjänst</h1>" in routine["html"]
    assert "styrgruppens möte om samverkan</h1>" in board["html"]
    # The samverkansmöte names the place's video link; the styrgrupp's never has.
    for text in (routine["txt"], routine["html"]):
        assert "https://video.exempelby.se/rum-12" in text
    for text in (board["txt"], board["html"]):
        assert "video.exempelby.se" not in text


def test_kallelse_without_location(env: Environment) -> None:
    context = _kallelse()
    context["meeting"]["location"] = None
    assert "Plats: meddelas senare" in env.get_template("email/samverkansmote-kallelse.txt").render(
        context
    )


def test_utvardering_subject_names_the_deadline(env: Environment) -> None:
    subject = env.get_template("email/utvardering-paminnelse.subject").render(
        _utvardering_paminnelse()
    )
    assert (
        subject.strip()
        == "Påminnelse: utvärderingen av samverkan ska vara klar fredag 29 juni 2029"
    )


def test_underlag_warns_against_personal_data(env: Environment) -> None:
    text = env.get_template("email/utvardering-underlag.txt").render(_underlag())
    assert "Skriv inte namn" in text
    assert "Eva Sjöberg (elevhälsochef)" in text  # a role mid-sentence


def test_boka_gives_the_month_window(env: Environment) -> None:
    out = render_all(env, "samverkansmote-boka", _boka())
    assert (
        out["subject"].strip()
        == "Inte bokat ännu: samverkansmötet skola–socialtjänst i oktober 2027"
    )
    assert "fredag 1 oktober 2027" in out["txt"]
    assert "fredag 29 oktober 2027" in out["txt"]
    assert "Elin Bergström (samordnare)" in out["txt"]  # a role's name mid-sentence


def test_foraldramote_lists_new_stages_per_unit(env: Environment) -> None:
    out = render_all(env, "foraldramote-ifo", _foraldramote())
    text = out["txt"]
    assert "Solrosens förskola\n- barnen som börjar i förskolan" in text
    # Only the stages each school has: F–6 up to year 4, a 7–9 school only högstadiet.
    assert (
        "Björkhagsskolan F–6\n- förskoleklass eller årskurs 1 (lågstadiet)\n"
        "- årskurs 4 (mellanstadiet)\n\nCentralskolan 7–9\n- årskurs 7 (högstadiet)\n"
    ) in text
    assert text.count("högstadiet") == 1  # Centralskolan only
    assert text.count("förskoleklass") == 1
    assert "Exempelbygymnasiet\n- år 1 (gymnasiet)" in text
    assert "Individ- och familjeomsorgen" not in text  # not a school unit
    assert "läsåret 2027/28" in out["subject"]
    html = out["html"]
    for stage in ("förskolan", "årskurs 4 (mellanstadiet)", "år 1 (gymnasiet)"):
        assert stage in html
    assert "Individ- och familjeomsorgen" not in html


def test_material_lists_units_and_attachments(env: Environment) -> None:
    out = render_all(env, "lasarsstart-material", _material())
    assert "Solrosens förskola och Blåklockans förskola" in out["txt"]
    assert "- foraldrastod-exempelby.pdf\n- kontaktuppgifter-ifo.txt" in out["txt"]
    assert "Schoolsoft" in out["txt"]
    assert "läsåret 2027/28" in out["subject"]


def test_forbered_names_the_mailout_day(env: Environment) -> None:
    out = render_all(env, "lasarsstart-forbered", _forbered())
    assert "torsdag 19 augusti 2027" in out["subject"]
    assert "   - foraldrastod-exempelby.pdf" in out["txt"]


def test_styrning_paminnelse(env: Environment) -> None:
    out = render_all(env, "styrning-paminnelse", _styrning())
    assert out["subject"].strip() == (
        "Påminnelse: Årlig redovisning till nämnderna – klart senast måndag 15 november 2027"
    )
    assert "(om 42 dagar)" in out["txt"]
    assert "Lars Nyström, Helena Strand, Eva Sjöberg, Peter Åkesson" in out["txt"]
    assert "redovisas årligen<br>i förvaltningarnas nämnder" in out["html"]


def test_days_left_wording(env: Environment) -> None:
    text = env.get_template("email/utvardering-paminnelse.txt").render(_utvardering_paminnelse(1))
    assert "i morgon" in text
    assert not re.search(r"om 1 dagar", text)


def test_obokat_tells_that_the_month_ended_unbooked(env: Environment) -> None:
    out = render_all(env, "samverkansmote-obokat", _obokat())
    assert out["subject"].strip().endswith("i oktober 2027 blev aldrig bokat")
    assert "fredag 29 oktober 2027" in out["txt"]
    assert "som samordnare:" in out["txt"]
    assert "Eva Sjöberg (elevhälsochef)" in out["txt"]
