"""Texter: coordinators only, each municipality its own wording, CSRF on every change, the
preview on sample data (escaped), refusals that name the line and the field."""

from __future__ import annotations

import html

from sqlalchemy import func, select

import models
from tests.web.conftest import World, csrf_of

NAME = "utvardering-underlag"
PAGE = f"/texter/{NAME}"


def count(world: World) -> int:
    with world.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(models.MessageText)) or 0)


def post(client, path: str, **form: str):  # type: ignore[no-untyped-def]
    token = csrf_of(client.get(PAGE).text)
    return client.post(path, data={"csrf": token, **form})


def test_the_list_shows_every_message_with_what_it_is_for(world: World, signed_in: dict) -> None:
    text = signed_in["samordnare"].get("/texter").text
    for name in ("samverkansmote-kallelse", "arende-kallelse", "fel-sammanstallning", NAME):
        assert f'href="/texter/{name}"' in text
    assert "Ber om synpunkter inför utvärderingen av samverkan" in text
    assert "Nej, standardtexten" in text and "Ja:" not in text


def test_only_coordinators_see_or_change_texts(world: World, signed_in: dict) -> None:
    for kind in ("rektor", "familj", "mottagning", "ingenroll"):
        client = signed_in[kind]
        assert client.get("/texter").status_code == 403
        assert client.get(PAGE).status_code == 403
        token = csrf_of(client.get("/logga-in").text)
        answer = client.post(PAGE, data={"csrf": token, "subject": "Hej {{ occurrence.key }}"})
        assert answer.status_code == 403
    assert count(world) == 0


def test_a_coordinator_saves_sees_and_reverts_her_municipality_s_wording(
    world: World, signed_in: dict
) -> None:
    mine, other = signed_in["samordnare"], signed_in["annan"]
    answer = post(mine, PAGE, subject="Vår egen rubrik {{ occurrence.key }}")
    assert answer.status_code == 303 and answer.headers["location"] == f"{PAGE}?klart=sparat"
    page = mine.get(answer.headers["location"]).text
    assert "Texten är sparad" in page and "Vår egen rubrik {{ occurrence.key }}" in page
    assert "Ja: ämnesrad" in mine.get("/texter").text
    # The other municipality's coordinator sees the default, not Exempelby's wording.
    assert "Vår egen rubrik" not in other.get(PAGE).text
    assert "Ja:" not in other.get("/texter").text
    # ... and reverting there leaves Exempelby's wording alone.
    assert post(other, f"{PAGE}/aterstall").status_code == 303
    assert count(world) == 1
    assert post(mine, f"{PAGE}/aterstall").status_code == 303
    assert count(world) == 0
    with world.sessions() as session:
        audit = session.execute(
            select(models.WebAudit.action, models.WebAudit.detail).order_by(models.WebAudit.id)
        ).all()
    actions = [a for a, _ in audit]
    assert actions == ["text.saved", "text.reverted", "text.reverted"]
    assert audit[0][1] == {"message": NAME, "parts": ["subject"]}


def test_every_change_needs_the_csrf_token(world: World, signed_in: dict) -> None:
    client = signed_in["samordnare"]
    for path in (PAGE, f"{PAGE}/forhandsgranska", f"{PAGE}/aterstall"):
        assert client.post(path, data={"subject": "x"}).status_code == 403
        assert client.post(path, data={"csrf": "fel", "subject": "x"}).status_code == 403
    assert count(world) == 0


def test_the_preview_renders_sample_data_escaped(world: World, signed_in: dict) -> None:
    client = signed_in["samordnare"]
    body = "<b>{{ recipient.name }}</b> <script>alert(1)</script>\n"
    answer = post(
        client, f"{PAGE}/forhandsgranska", subject="Rubrik {{ occurrence.key }}", txt=body
    )
    assert answer.status_code == 200
    assert "Rubrik 2027" in answer.text
    assert "<script>alert(1)</script>" not in answer.text
    assert html.escape("<b>Bo Exempelsson</b>", quote=False) in answer.text
    assert count(world) == 0  # a preview stores nothing
    # The htmx request gets the fragment only.
    token = csrf_of(client.get(PAGE).text)
    fragment = client.post(
        f"{PAGE}/forhandsgranska",
        data={"csrf": token, "subject": "Rubrik {{ occurrence.key }}"},
        headers={"HX-Request": "true"},
    )
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert "Rubrik 2027" in fragment.text


def test_a_refused_text_names_line_and_field_and_stores_nothing(
    world: World, signed_in: dict
) -> None:
    client = signed_in["samordnare"]
    answer = post(client, PAGE, txt="Hej\n{{ barnets_personnummer }}\n")
    assert answer.status_code == 400
    text = html.unescape(answer.text)
    assert "Text, rad 2: okänt fält ”barnets_personnummer”" in text
    # What was typed stays in the form, so nothing is lost.
    assert "{{ barnets_personnummer }}" in text
    answer = post(client, PAGE, subject="En\nTvå")
    assert answer.status_code == 400 and "ämnesraden blir mer än en rad" in answer.text
    assert count(world) == 0


def test_an_unknown_message_is_not_found(world: World, signed_in: dict) -> None:
    client = signed_in["samordnare"]
    assert client.get("/texter/finns-inte").status_code == 404
    # A shared part, or a name that is no message name, is refused before any lookup.
    assert client.get("/texter/_layout").status_code == 400
    assert client.get("/texter/..%2Fweb%2Fbase").status_code in (400, 404)
    assert post(client, "/texter/finns-inte", subject="x").status_code == 404
