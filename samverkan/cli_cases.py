"""`samverkan report …` and `samverkan case …`: thin commands over service/cases.py.

Every command that changes something takes `--by` (the staff member acting: the later web
layer passes the signed-in user) and `--now` (for tests and previews). Errors are
SamverkanErrors: `main` prints them and exits 2, and the transaction is rolled back, so bad
input changes nothing. Output names a report or case by its reference only.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from service.cases import Outcome
    from service.desk import Desk

report_app = typer.Typer(help="Reports of concern (orosanmälan).", no_args_is_help=True)
case_app = typer.Typer(
    help="Cooperation cases (samverkansmöte, seed 004 Bilaga 1) and SIP.", no_args_is_help=True
)

Reference = Annotated[str, typer.Argument(help="The neutral reference, e.g. 2027-0042.")]
By = Annotated[str, typer.Option("--by", help="Person key of the staff member acting.")]
Now = Annotated[
    str | None,
    typer.Option("--now", help="Act as if it were this moment (ISO, local time if no offset)."),
]
Municipality = Annotated[str | None, typer.Option("--municipality", "-m")]


def _day(value: str | None, what: str) -> dt.date | None:
    if value is None:
        return None
    from service.cases import parse_days

    return parse_days([value], what)[0]


def _run(
    municipality: str | None,
    now: str | None,
    by: str,
    work: Callable[[Desk], Outcome],
    option: str = "--by",
) -> None:
    """Prepare, run `work` at a desk for `by` in one transaction, print its outcome."""
    from models.db import transaction
    from samverkan import cli
    from service.desk import Desk

    settings = cli._settings()
    cli._prepare(settings)
    moment = cli._now(now)
    with transaction(cli._runtime().sessions) as session:
        municipality_id = cli._municipality_id(session, municipality)
        outcome = work(Desk.open(session, municipality_id, by, moment, option=option))
    cli.console.print(str(outcome), highlight=False, markup=False, soft_wrap=True)


# --- reports ------------------------------------------------------------------------------------


@report_app.command("register")
def report_register(
    unit: Annotated[str, typer.Option("--unit", help="Reporting unit (school, förskola) key.")],
    reporter: Annotated[str, typer.Option("--reporter", help="Person key: the duty is personal.")],
    district: Annotated[str, typer.Option("--district", help="The child's district key.")],
    acute: Annotated[bool, typer.Option("--acute", help="An acute matter.")] = False,
    suspected_abuse: Annotated[
        bool, typer.Option("--suspected-abuse", help="Suspected violence or sexual abuse.")
    ] = False,
    wants_feedback: Annotated[
        bool, typer.Option("--wants-feedback", help="The reporter wants feedback.")
    ] = False,
    guardian: Annotated[
        list[str] | None,
        typer.Option("--guardian", help="A guardian's e-mail, to tell them a report is made."),
    ] = None,
    municipality: Municipality = None,
    now: Now = None,
) -> None:
    """Register a report of concern: the reporter and the intake unit are told at once."""
    from service.cases import ReportRequest, register_report

    request = ReportRequest(
        unit=unit,
        reporter=reporter,
        district=district,
        acute=acute,
        suspected_abuse=suspected_abuse,
        wants_feedback=wants_feedback,
        guardians=tuple(guardian or ()),
    )
    _run(municipality, now, reporter, lambda d: register_report(d, request), "--reporter")


@report_app.command("receive")
def report_receive(
    reference: Reference, by: By, municipality: Municipality = None, now: Now = None
) -> None:
    """The intake unit confirms receipt; the reporter is told by whom."""
    from service.cases import receive_report

    _run(municipality, now, by, lambda d: receive_report(d, reference))


@report_app.command("flag-abuse")
def report_flag_abuse(
    reference: Reference, by: By, municipality: Municipality = None, now: Now = None
) -> None:
    """The report concerns suspected violence or sexual abuse after all: from now on nothing
    about it reaches a guardian, a pupil or anyone outside the staff (cannot be undone)."""
    from service.cases import flag_suspected_abuse

    _run(municipality, now, by, lambda d: flag_suspected_abuse(d, reference))


# --- cases --------------------------------------------------------------------------------------


@case_app.command("open")
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
    _run(municipality, now, by, lambda d: open_case(d, request))


@case_app.command("consent")
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

    request = ConsentRequest(given_by, scope, _day(given_on, "--given-on"), pupil_own)
    _run(municipality, now, by, lambda d: record_consent(d, reference, request))


@case_app.command("withdraw-consent")
def case_withdraw_consent(
    reference: Reference, by: By, municipality: Municipality = None, now: Now = None
) -> None:
    """Consent withdrawn: everything pending is cancelled, meetings to come are called off."""
    from service.cases import withdraw_consent

    _run(municipality, now, by, lambda d: withdraw_consent(d, reference))


@case_app.command("book")
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

    request = BookingRequest(date, time, place, meeting)
    _run(municipality, now, by, lambda d: book_meeting(d, reference, request))


@case_app.command("hold")
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
    _run(municipality, now, by, lambda d: hold_meeting(d, reference, meeting, day))


@case_app.command("minutes")
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
    _run(municipality, now, by, lambda d: record_minutes(d, reference, days))


@case_app.command("sip")
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
    _run(municipality, now, by, lambda d: mark_sip(d, reference, day))


@case_app.command("sip-add")
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
    request = SipItemRequest(goal, action, responsible, day)
    _run(municipality, now, by, lambda d: add_sip_item(d, reference, request))


@case_app.command("close")
def case_close(
    reference: Reference, by: By, municipality: Municipality = None, now: Now = None
) -> None:
    """Close the case (case owner or administrator only); pending reminders are cancelled."""
    from service.cases import close_case

    _run(municipality, now, by, lambda d: close_case(d, reference))


def _show(reference: str, notes: bool, municipality: str | None) -> None:
    from samverkan import cli
    from service.cases import show
    from service.desk import Desk

    settings = cli._settings()
    cli._prepare(settings)
    with cli._runtime().sessions() as session:
        # No person acting: the console, which may read (service/permissions.py).
        desk = Desk.open(session, cli._municipality_id(session, municipality), None, cli._now(None))
        data: dict[str, Any] = show(desk, reference, notes)
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def _add_note_and_show(app: typer.Typer, noun: str, shows: str) -> None:
    """`note` and `show` work alike on reports and cases (both are found by reference)."""

    @app.command("note", help=f"Keep a note on a {noun} (never sent anywhere).")
    def note(
        reference: Reference,
        text: Annotated[str, typer.Argument(help="Free text, for signed-in staff only.")],
        by: By,
        municipality: Municipality = None,
        now: Now = None,
    ) -> None:
        from service.cases import add_note

        _run(municipality, now, by, lambda d: add_note(d, reference, text))

    @app.command("show", help=f"A {noun}'s {shows}, as JSON (for signed-in staff).")
    def show(
        reference: Reference,
        notes: Annotated[bool, typer.Option("--notes", help="Include staff notes.")] = False,
        municipality: Municipality = None,
    ) -> None:
        _show(reference, notes, municipality)


_add_note_and_show(report_app, "report", "state and messages")
_add_note_and_show(case_app, "case", "state, deadlines, meetings and messages")
