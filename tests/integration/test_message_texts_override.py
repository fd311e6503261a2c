"""A municipality's own wording of a message, end to end: stored by `service.texts`, used by
the worker for that municipality only (through a real SMTP server), changed and reverted
without restarting the worker; refused (nothing stored) when it names a field the message is
not given, does not parse, has a subject of more than one line, or reaches outside its fields.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

import models
from core.settings import ROOT
from models.db import transaction
from scheduler.outbox import claim_due, resend
from service import texts
from service.viewer import Role, Viewer
from tests.fixtures.smtp import SmtpRecorder
from tests.profiles import MINIMAL, load, write_variant
from worker.delivery import Delivery, DeliveryOutcome, RetryPolicy, deliver_one
from worker.render import Renderer
from worker.smtp_mailer import SmtpMailer

pytestmark = pytest.mark.integration

TEMPLATES = ROOT / "templates"
LOADED = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC)
NAME = "utvardering-underlag"
OWN_SUBJECT = "Egen ämnesrad för {{ municipality }}: {{ occurrence.key }}\n"


@pytest.fixture
def sessions(session_factory: sessionmaker[Session], tmp_path: Path) -> sessionmaker[Session]:
    load(session_factory, MINIMAL, LOADED)
    other = write_variant(
        tmp_path, "  key: liten\n  name: Lilla kommunen\n", "  key: annan\n  name: Annan kommun\n"
    )
    load(session_factory, other, LOADED)
    return session_factory


@pytest.fixture
def delivery(sessions: sessionmaker[Session], smtp_server: SmtpRecorder) -> Iterator[Delivery]:
    mailer = SmtpMailer(smtp_server.smtp_config())
    # One renderer for the whole test, as one worker process keeps it.
    yield Delivery(sessions, mailer, Renderer(TEMPLATES), RetryPolicy(base_seconds=600))
    mailer.close()


def coordinator(sessions: sessionmaker[Session], town: str) -> Viewer:
    with sessions() as session:
        municipality = session.scalars(
            select(models.Municipality).where(models.Municipality.key == town)
        ).one()
        person = session.scalars(
            select(models.Person).where(models.Person.municipality_id == municipality.id)
        ).first()
        assert person is not None
        return Viewer(
            account_id=0,
            person_id=person.id,
            person_key=person.key,
            name=person.name,
            email=person.email,
            municipality_id=municipality.id,
            municipality_name=municipality.name,
            roles=(Role("samordnare", None, None),),
        )


def rows(sessions: sessionmaker[Session], town: str) -> list[tuple[int, dt.datetime]]:
    with sessions() as session:
        n = models.Notification
        found = session.execute(
            select(n.id, n.due_at)
            .join(models.Municipality, models.Municipality.id == n.municipality_id)
            .where(models.Municipality.key == town, n.template == NAME)
            .order_by(n.due_at, n.id)
        ).all()
        return [(i, due) for i, due in found]


def send(delivery: Delivery, smtp: SmtpRecorder, row: tuple[int, dt.datetime]) -> str:
    """Deliver one row as the worker does; the subject the server received. The row is then
    put back for sending, as a coordinator's "Skicka igen" does, so it can be sent again."""
    before = len(smtp.received)
    with transaction(delivery.sessions) as session:
        claim_due(session, row[1], 10_000)
    outcome = deliver_one(delivery, row[0], row[1])
    with delivery.sessions() as session:
        error = session.get_one(models.Notification, row[0]).last_error
    assert outcome is DeliveryOutcome.SENT, error
    with transaction(delivery.sessions) as session:
        session.get_one(models.Notification, row[0]).status = models.Status.FAILED
        assert resend(session, row[0], row[1])
    got = smtp.received[before:]
    assert len(got) == 1
    return str(got[0].message["Subject"])


def save(
    sessions: sessionmaker[Session], who: Viewer, bodies: dict[str, str], at: dt.datetime
) -> None:
    with transaction(sessions) as session:
        texts.save(session, who, TEMPLATES, NAME, bodies, at)


def stored(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(models.MessageText)) or 0)


def test_an_override_is_used_for_its_municipality_only_changed_and_reverted_live(
    sessions: sessionmaker[Session], delivery: Delivery, smtp_server: SmtpRecorder
) -> None:
    (mine,), (theirs,) = rows(sessions, "liten"), rows(sessions, "annan")
    liten = coordinator(sessions, "liten")
    default_subject = send(delivery, smtp_server, mine)
    assert not default_subject.startswith("Egen")

    save(sessions, liten, {"subject": OWN_SUBJECT}, LOADED)
    assert send(delivery, smtp_server, mine) == "Egen ämnesrad för Lilla kommunen: 2027"
    # The other municipality keeps the default wording.
    assert send(delivery, smtp_server, theirs) == default_subject
    # Its own wording, saved at the same moment (the same version), is its own.
    save(sessions, coordinator(sessions, "annan"), {"subject": "Annans {{ municipality }}"}, LOADED)
    assert send(delivery, smtp_server, theirs) == "Annans Annan kommun"
    assert send(delivery, smtp_server, mine) == "Egen ämnesrad för Lilla kommunen: 2027"

    # Changed while the worker runs: the next message has the new wording (no restart).
    later = LOADED + dt.timedelta(minutes=1)
    save(sessions, liten, {"subject": "Ny lydelse {{ occurrence.key }}"}, later)
    assert send(delivery, smtp_server, mine) == "Ny lydelse 2027"
    # The text and html parts were not overridden: they keep the default wording.
    with transaction(sessions) as session:
        texts.revert(session, liten, TEMPLATES, NAME, LOADED + dt.timedelta(minutes=2))
    assert stored(sessions) == 1  # the other municipality's
    assert send(delivery, smtp_server, mine) == default_subject
    assert send(delivery, smtp_server, theirs) == "Annans Annan kommun"
    with sessions() as session:
        actions = list(session.scalars(select(models.WebAudit.action).order_by(models.WebAudit.id)))
    assert actions == ["text.saved", "text.saved", "text.saved", "text.reverted"]


# Each refused body: (part, body, what the Swedish message says).
REFUSED = [
    ("subject", "Hej {{ barnets_namn }}", "okänt fält ”barnets_namn”"),
    ("txt", "Rad ett\n{{ personnummer }}\n", "rad 2: okänt fält ”personnummer”"),
    # unknown even where rendering on the sample would pass
    ("txt", "{% if personnummer is defined %}{{ personnummer }}{% endif %}", "okänt fält"),
    ("subject", "Kallelse {% if occurrence.key %}", "mallen går inte att tolka"),
    ("txt", "{{ occurrence.key }\n", "mallen går inte att tolka"),
    ("subject", "Första raden\nAndra raden", "ämnesraden blir mer än en rad"),
    ("html", "{{ recipient.nothere }}", "fältet ”nothere” finns inte"),
    ("subject", "{{ reply_to.email }}", "när ett fält som kan saknas är tomt"),
    ("txt", "{{ (1/0) }}", "mallen går inte att visa"),
    # reaching other data: attributes, globals, another template
    ("subject", "{{ municipality.__class__ }}", "otillåten åtkomst"),
    ("subject", "{{ ''.__class__.__mro__[1].__subclasses__() }}", "otillåten åtkomst"),
    ("txt", "{{ sender.items.__self__.__class__ }}", "otillåten åtkomst"),
    ("txt", "{{ municipality|attr('__class__') }}", "otillåten åtkomst"),
    ("txt", "{{ municipality.format.__globals__ }}", "otillåten åtkomst"),
    ("txt", "{{ lipsum.__globals__['os'] }}", "okänt fält ”lipsum”"),
    ("txt", "{{ cycler.__init__.__globals__ }}", "okänt fält ”cycler”"),
    ("txt", "{{ range(10)|list }}", "okänt fält ”range”"),
    ("txt", "{{ namespace() }}", "okänt fält ”namespace”"),
    ("txt", "{{ self }}", "okänt fält ”self”"),
    ("txt", "{{ config }}", "okänt fält ”config”"),
    ("txt", "{{ request }}", "okänt fält ”request”"),
    ("txt", "{{ case.reference }}", "okänt fält ”case”"),  # a routine message has no case
    ("txt", "{% include 'email/arende-kallelse.txt' %}", "gemensamma delarna"),
    # exhausting memory
    ("txt", "{{ 'x' * 99999 * 99999 }}", "otillåten åtkomst"),
    ("txt", "{{ municipality * 50000 }}", "otillåten åtkomst"),
    ("txt", "{{ 9 ** 9 ** 9 }}", "otillåten åtkomst"),
    ("txt", "{{ municipality|center(999999999) }}", "talet är för stort"),
    ("txt", "{{ municipality|center(99999 * 99999) }}", "otillåten åtkomst"),
    ("txt", "{% import 'email/_layout.html' as x %}{{ x.__class__ }}", "importera"),
]


@pytest.mark.parametrize(("part", "body", "says"), REFUSED)
def test_a_bad_override_is_refused_and_nothing_is_stored(
    sessions: sessionmaker[Session], part: str, body: str, says: str
) -> None:
    liten = coordinator(sessions, "liten")
    with pytest.raises(texts.TextRefused) as refused:
        save(sessions, liten, {part: body}, LOADED)
    message = str(refused.value).lower()
    assert says.lower() in message, message
    assert texts.PART_TEXT[part].lower() in message
    assert stored(sessions) == 0
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(models.WebAudit)) == 0


def test_every_default_passes_its_own_check_and_renders_on_the_sample() -> None:
    for name in texts.message_names(TEMPLATES):
        bodies = {p: texts.default_text(TEMPLATES, name, p) for p in texts.PARTS}
        found = texts.preview(TEMPLATES, name, bodies)
        assert found.problems == [] and found.rendered is not None, name


def test_the_sample_data_names_no_real_person_and_no_identity_number() -> None:
    from scheduler.privacy import contains_identity_number

    for name in texts.message_names(TEMPLATES):
        sample = repr(texts.sample(name))
        assert not contains_identity_number(sample)
        assert "@exempel.invalid" in sample or name == "anmalan-vardnadshavare"


def test_an_override_of_a_field_the_default_is_not_given_is_refused_per_kind() -> None:
    """The fields are per kind of message: a case field is fine in a case message only."""
    case_ok = texts.preview(
        TEMPLATES, "arende-avslutat", {"subject": "Klart: {{ case.reference }}"}
    )
    assert case_ok.problems == []
    routine = texts.preview(TEMPLATES, NAME, {"subject": "Klart: {{ case.reference }}"})
    assert routine.problems and "case" in str(routine.problems[0])


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("{{ municipality.__class__.__mro__ }}", "SecurityError"),
        ("{{ lipsum.__globals__ }}", "UndefinedError"),  # no globals at all
        ("{{ 'x' * 999999 }}", "SecurityError"),
    ],
)
def test_the_worker_renders_a_stored_override_in_the_sandbox(
    sessions: sessionmaker[Session],
    delivery: Delivery,
    smtp_server: SmtpRecorder,
    body: str,
    error: str,
) -> None:
    """A row written around the validation (straight into the table) still cannot reach
    beyond its context: the worker renders overrides sandboxed, so the message fails."""
    (mine,) = rows(sessions, "liten")
    municipality_id = coordinator(sessions, "liten").municipality_id
    with transaction(sessions) as session:
        session.add(
            models.MessageText(
                municipality_id=municipality_id,
                template=f"email/{NAME}.subject",
                body=body,
                updated_at=LOADED,
            )
        )
        # As the service does on every change: the worker reads texts when this was raised.
        session.get_one(models.Municipality, municipality_id).texts_version += 1
        claim_due(session, mine[1], 10_000)
    assert deliver_one(delivery, mine[0], mine[1]) is DeliveryOutcome.FAILED
    with sessions() as session:
        last_error = session.get_one(models.Notification, mine[0]).last_error or ""
    assert error in last_error
    assert smtp_server.received == []


def test_only_a_coordinator_reads_or_changes_texts(sessions: sessionmaker[Session]) -> None:
    """The service refuses by itself, whatever the interface in front of it."""
    rektor = dataclasses.replace(
        coordinator(sessions, "liten"), roles=(Role("rektor", None, None),)
    )
    with transaction(sessions) as session:
        for attempt in (
            lambda: texts.catalogue(session, rektor, TEMPLATES),
            lambda: texts.text_view(session, rektor, TEMPLATES, NAME),
            lambda: texts.save(session, rektor, TEMPLATES, NAME, {"subject": "x"}, LOADED),
            lambda: texts.revert(session, rektor, TEMPLATES, NAME, LOADED),
        ):
            with pytest.raises(texts.NotAllowed):
                attempt()
    assert stored(sessions) == 0
