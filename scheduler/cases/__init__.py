"""Case work below the service layer: reports of concern and cooperation cases (docs/cases.md).

Split by concern, bottom-up:

| module | holds | touches the database |
|---|---|---|
| `views.py` | states and frozen views of a report or case | no |
| `rules.py` | deadline maths, the state machines' transitions, a case's deadlines | no |
| `messages.py` | every message a view calls for, with its due moment | no |
| `subjects.py` | views and subjects read from the rows, the municipality's case settings | reads |
| `recipients.py` | recipients resolved on a day (typed), who counts as staff | reads |
| `context.py` | what a case or report message's template may know | reads |
| `outbox.py` | planned messages into rows, through the outbox's one writer | writes |
| `guard.py` | the send-time refusal the worker asks before a message leaves | reads |

This package re-exports the pure part (views, rules, messages), so `from scheduler.cases import
deadlines` reads as the rules of case work; the database-facing modules are imported by name.
"""

from scheduler.cases.messages import (
    PlannedMessage,
    Recipient,
    participants,
    plan_case,
    plan_report,
)
from scheduler.cases.rules import (
    CaseRuleError,
    Deadline,
    add_follow_ups,
    add_sip_item,
    after,
    book_meeting,
    check_open,
    close_case,
    deadlines,
    give_consent,
    hold_meeting,
    local_start,
    overdue_day,
    period_label,
    period_text,
    receive_report,
    reminder_day,
    withdraw_consent,
    within,
)
from scheduler.cases.views import (
    CASE,
    REPORT,
    CaseState,
    CaseView,
    External,
    MeetingState,
    MeetingView,
    ReportState,
    ReportView,
    SipItemView,
)

__all__ = [
    "CASE",
    "REPORT",
    "CaseRuleError",
    "CaseState",
    "CaseView",
    "Deadline",
    "External",
    "MeetingState",
    "MeetingView",
    "PlannedMessage",
    "Recipient",
    "ReportState",
    "ReportView",
    "SipItemView",
    "add_follow_ups",
    "add_sip_item",
    "after",
    "book_meeting",
    "check_open",
    "close_case",
    "deadlines",
    "give_consent",
    "hold_meeting",
    "local_start",
    "overdue_day",
    "participants",
    "period_label",
    "period_text",
    "plan_case",
    "plan_report",
    "receive_report",
    "reminder_day",
    "withdraw_consent",
    "within",
]
