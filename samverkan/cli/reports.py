"""`samverkan report …`: reports of concern, thin commands over service/cases.py.

Every command that changes something takes `--by` (the staff member acting: the later web
layer passes the signed-in user) and `--now` (for tests and previews). Errors are
SamverkanErrors: `main` prints them and exits 2, and the transaction is rolled back, so bad
input changes nothing. Output names a report by its reference only.
"""

from __future__ import annotations

from typing import Annotated

import typer

from samverkan.cli.common import By, Reference, act
from samverkan.cli.common import MunicipalityOption as Municipality
from samverkan.cli.common import NowOption as Now
from samverkan.cli.notes import add_note_and_show

app = typer.Typer(help="Reports of concern (orosanmälan).", no_args_is_help=True)


@app.command("register")
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
    act(municipality, now, lambda s, m, t: register_report(s, m, request, t))


@app.command("receive")
def report_receive(
    reference: Reference, by: By, municipality: Municipality = None, now: Now = None
) -> None:
    """The intake unit confirms receipt; the reporter is told by whom."""
    from service.cases import receive_report

    act(municipality, now, lambda s, m, t: receive_report(s, m, reference, by, t))


@app.command("flag-abuse")
def report_flag_abuse(
    reference: Reference, by: By, municipality: Municipality = None, now: Now = None
) -> None:
    """The report concerns suspected violence or sexual abuse after all: from now on nothing
    about it reaches a guardian, a pupil or anyone outside the staff (cannot be undone)."""
    from service.cases import flag_suspected_abuse

    act(municipality, now, lambda s, m, t: flag_suspected_abuse(s, m, reference, by, t))


add_note_and_show(app, "report", "state and messages")
