"""`samverkan case …`: cooperation cases and SIP, thin commands over service/cases.py.

Every command that changes something takes `--by` (the staff member acting: the later web
layer passes the signed-in user) and `--now` (for tests and previews). Errors are
SamverkanErrors: `main` prints them and exits 2, and the transaction is rolled back, so bad
input changes nothing. Output names a case by its reference only.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

from samverkan.cli.common import By, Reference, act
from samverkan.cli.common import MunicipalityOption as Municipality
from samverkan.cli.common import NowOption as Now
from samverkan.cli.notes import add_note_and_show

app = typer.Typer(
    help="Cooperation cases (samverkansmöte, seed 004 Bilaga 1) and SIP.", no_args_is_help=True
)


def _day(value: str | None, what: str) -> dt.date | None:
    if value is None:
        return None
    from service.cases import parse_days

    return parse_days([value], what)[0]


@app.command("open")
def case_open(
    owner: Annotated[str, typer.Option("--owner", help="The processbärare's person key.")],
    by: By,
    owner_role: Annotated[
        str | None, typer.Option("--owner-role", help="Rektor, familjebehandlare, ...")
    ] = None,
    known_on: Annotated[
        str | None, typer.Option("--known-on", help="When the case became known (default today).")
    ] = None,
    school: Annotated[str | None, typer.Option("--school", help="The school unit key.")] = None,
    family_worker: Annotated[
        str | None, typer.Option("--family-worker", help="The family worker's person key.")
    ] = None,
    staff: Annotated[
        list[str] | None, typer.Option("--staff", help="Further staff participant (person key).")
    ] = None,
    guardian: Annotated[
        list[str] | None, typer.Option("--guardian", help="A guardian's e-mail address.")
    ] = None,
    pupil: Annotated[str | None, typer.Option("--pupil", help="The pupil's e-mail.")] = None,
    adult_pupil: Annotated[
        bool, typer.Option("--adult-pupil", help="The pupil is 18 or older.")
    ] = False,
    sip: Annotated[bool, typer.Option("--sip", help="A SIP (samordnad individuell plan).")] = False,
    report: Annotated[
        str | None, typer.Option("--report", help="The report this case follows.")
    ] = None,
    municipality: Municipality = None,
    now: Now = None,
) -> None:
    """Open a cooperation case; the first meeting's deadline starts when it became known."""
    from service.cases import CaseRequest, open_case

    request = CaseRequest(
        owner=owner,
        by=by,
        owner_role=owner_role,
        known_on=_day(known_on, "--known-on"),
        school=school,
        family_worker=family_worker,
        staff=tuple(staff or ()),
        guardians=tuple(guardian or ()),
        pupil=pupil,
        adult_pupil=adult_pupil,
        sip=sip,
        report=report,
    )
    act(municipality, now, lambda s, m, t: open_case(s, m, request, t))


@app.command("consent")
def case_consent(
    reference: Reference,
    by: By,
    given_by: Annotated[str, typer.Option("--given-by", help="Who gave it (staff-only text).")],
    scope: Annotated[str, typer.Option("--scope", help="What it covers (staff-only text).")],
    given_on: Annotated[str | None, typer.Option("--given-on", help="Default today.")] = None,
    pupil_own: Annotated[
        bool, typer.Option("--pupil-own", help="The pupil's own consent (18 or older).")
    ] = False,
    municipality: Municipality = None,
    now: Now = None,
) -> None:
    """Record written consent; required before any meeting is booked."""
    from service.cases import ConsentRequest, record_consent

    request = ConsentRequest(by, given_by, scope, _day(given_on, "--given-on"), pupil_own)
    act(municipality, now, lambda s, m, t: record_consent(s, m, reference, request, t))


@app.command("withdraw-consent")
def case_withdraw_consent(
    reference: Reference, by: By, municipality: Municipality = None, now: Now = None
) -> None:
    """Consent withdrawn: everything pending is cancelled, meetings to come are called off."""
    from service.cases import withdraw_consent

    act(municipality, now, lambda s, m, t: withdraw_consent(s, m, reference, by, t))


@app.command("book")
def case_book(
    reference: Reference,
    date: Annotated[str, typer.Argument(help="YYYY-MM-DD")],
    time: Annotated[str, typer.Argument(help="Local start time, HH:MM")],
    by: By,
    place: Annotated[
        str | None,
        typer.Option("--place", help="Key of one of the profile's places (goes out in invites)."),
    ] = None,
    meeting: Annotated[
        int | None, typer.Option("--meeting", help="Which meeting (default: the next).")
    ] = None,
    municipality: Municipality = None,
    now: Now = None,
) -> None:
    """Book or move a case meeting; every participant gets their own invite."""
    from service.cases import BookingRequest, book_meeting

    request = BookingRequest(by, date, time, place, meeting)
    act(municipality, now, lambda s, m, t: book_meeting(s, m, reference, request, t))


@app.command("hold")
def case_hold(
    reference: Reference,
    by: By,
    meeting: Annotated[int | None, typer.Option("--meeting")] = None,
    held_on: Annotated[str | None, typer.Option("--held-on", help="Default: its day.")] = None,
    municipality: Municipality = None,
    now: Now = None,
) -> None:
    """Record that a meeting was held; the case owner gets the minutes template."""
    from service.cases import hold_meeting

    day = _day(held_on, "--held-on")
    act(municipality, now, lambda s, m, t: hold_meeting(s, m, reference, by, meeting, day, t))


@app.command("minutes")
def case_minutes(
    reference: Reference,
    by: By,
    follow_up: Annotated[
        list[str], typer.Option("--follow-up", help="A follow-up date from the minutes.")
    ],
    municipality: Municipality = None,
    now: Now = None,
) -> None:
    """Record the minutes' follow-up dates: each becomes a reminder to the case owner."""
    from service.cases import parse_days, record_minutes

    days = parse_days(follow_up, "--follow-up")
    act(municipality, now, lambda s, m, t: record_minutes(s, m, reference, by, days, t))


@app.command("sip")
def case_sip(
    reference: Reference,
    by: By,
    follow_up: Annotated[
        str | None, typer.Option("--follow-up", help="The plan's follow-up date.")
    ] = None,
    municipality: Municipality = None,
    now: Now = None,
) -> None:
    """Mark the case as a SIP, and set the plan's follow-up date."""
    from service.cases import mark_sip

    day = _day(follow_up, "--follow-up")
    act(municipality, now, lambda s, m, t: mark_sip(s, m, reference, by, day, t))


@app.command("sip-add")
def case_sip_add(
    reference: Reference,
    by: By,
    goal: Annotated[str, typer.Option("--goal", help="Mål (staff-only text).")],
    action: Annotated[str, typer.Option("--action", help="Insats (staff-only text).")],
    responsible: Annotated[
        str, typer.Option("--responsible", help="Ansvar: a role, e.g. familjebehandlare@ifo.")
    ],
    due: Annotated[str, typer.Option("--due", help="Tid: done by this date.")],
    municipality: Municipality = None,
    now: Now = None,
) -> None:
    """Add a row to the SIP: goal, action, responsibility, time; its role gets reminders."""
    from service.cases import SipItemRequest, add_sip_item

    day = _day(due, "--due")
    assert day is not None
    request = SipItemRequest(by, goal, action, responsible, day)
    act(municipality, now, lambda s, m, t: add_sip_item(s, m, reference, request, t))


@app.command("close")
def case_close(
    reference: Reference, by: By, municipality: Municipality = None, now: Now = None
) -> None:
    """Close the case (case owner or administrator only); pending reminders are cancelled."""
    from service.cases import close_case

    act(municipality, now, lambda s, m, t: close_case(s, m, reference, by, t))


add_note_and_show(app, "case", "state, deadlines, meetings and messages")
