"""Case work as service functions: what the CLI, the web forms and the JSON API call.

Every function takes a desk (service/desk.py: the session, the municipality, the person acting
and `now`) and works inside the caller's transaction: the desk checks who may (service/
permissions.py), the pure rules check the request (scheduler/cases/rules.py), the new state is
written, the outbox is brought in line with the state's plan (scheduler/cases/outbox.py), and
the desk writes the audit row. An error raises before anything is committed, so bad input
changes nothing. Free text (notes, who gave consent and its scope, a plan's goals and actions) is
stored for signed-in staff and never enters a message or a log.

| module | commands |
|---|---|
| `reports.py` | register, receive, flag as suspected abuse |
| `cases.py` | open, close |
| `consent.py` | record, withdraw |
| `meetings.py` | book (or move), hold, minutes |
| `sip.py` | mark as SIP, add a plan row |
| `show.py` | show, add a note |
| `inputs.py`, `references.py`, `changes.py`, `results.py` | what they share |
"""

from core.errors import CaseInputError, PermissionRefused
from service.cases.cases import CaseRequest, close_case, open_case
from service.cases.consent import ConsentRequest, record_consent, withdraw_consent
from service.cases.inputs import check_address, check_place, parse_days
from service.cases.meetings import BookingRequest, book_meeting, hold_meeting, record_minutes
from service.cases.references import allocate_reference
from service.cases.reports import (
    ReportRequest,
    flag_suspected_abuse,
    receive_report,
    register_report,
)
from service.cases.results import Outcome
from service.cases.show import add_note, show
from service.cases.sip import SipItemRequest, add_sip_item, mark_sip
from service.desk import Desk

__all__ = [
    "BookingRequest",
    "CaseInputError",
    "CaseRequest",
    "ConsentRequest",
    "Desk",
    "Outcome",
    "PermissionRefused",
    "ReportRequest",
    "SipItemRequest",
    "add_note",
    "add_sip_item",
    "allocate_reference",
    "book_meeting",
    "check_address",
    "check_place",
    "close_case",
    "flag_suspected_abuse",
    "hold_meeting",
    "mark_sip",
    "open_case",
    "parse_days",
    "receive_report",
    "record_consent",
    "record_minutes",
    "register_report",
    "show",
    "withdraw_consent",
]
