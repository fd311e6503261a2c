"""The report and case state machines, and the messages each state calls for: pure, `now` given."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from scheduler.calendar import STOCKHOLM
from scheduler.cases import (
    CaseRuleError,
    CaseState,
    CaseView,
    External,
    MeetingState,
    ReportState,
    ReportView,
    add_follow_ups,
    add_sip_item,
    book_meeting,
    close_case,
    deadlines,
    give_consent,
    hold_meeting,
    plan_case,
    plan_report,
    receive_report,
    withdraw_consent,
)
from scheduler.spec import CaseRules, Period

RULES = CaseRules()
EIGHT = dt.time(8, 0)
MANAGER = "verksamhetschef"


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=STOCKHOLM).astimezone(dt.UTC)


def new_case(**changes: object) -> CaseView:
    case = CaseView(
        reference="2027-0002",
        state=CaseState.OPEN,
        known_on=dt.date(2027, 3, 2),
        opened_at=at("2027-03-02T09:00"),
        owner="rut",
        owner_role="rektor",
        staff=("fia",),
        school_role="rektor@ekskolan",
        externals=(External("guardian", "vh1@hem.se"), External("guardian", "vh2@hem.se")),
    )
    return replace(case, **changes)  # type: ignore[arg-type]


def purposes(case: CaseView, rules: CaseRules = RULES) -> set[str]:
    return {m.purpose for m in plan_case(case, rules, EIGHT, MANAGER)}


def booked(case: CaseView, day: str = "2027-03-10", now: str = "2027-03-03T10:00") -> CaseView:
    return book_meeting(case, None, at(f"{day}T13:00"), 90, "Rum 12", at(now))


def consented(now: str = "2027-03-02T10:00", **changes: object) -> CaseView:
    return give_consent(new_case(**changes), at(now), pupil_own=False)


# --- reports ------------------------------------------------------------------------------------


def report(**changes: object) -> ReportView:
    view = ReportView(
        reference="2027-0001",
        state=ReportState.REGISTERED,
        registered_at=at("2027-03-01T10:00"),
        reporter="rut",
        intake_role="mottagning@mottagning-norr",
        acute=False,
        suspected_abuse=False,
        wants_feedback=False,
    )
    return replace(view, **changes)  # type: ignore[arg-type]


def test_a_report_tells_the_reporter_and_the_intake_unit_at_once() -> None:
    plan = {m.purpose: m for m in plan_report(report(), RULES, EIGHT)}
    assert set(plan) == {"registrerad", "mottagning"}
    assert plan["mottagning"].recipients[0].key == "mottagning@mottagning-norr"
    assert plan["registrerad"].due_at == at("2027-03-01T10:00")


@pytest.mark.parametrize("flag", ["acute", "suspected_abuse"])
def test_acute_or_abuse_is_urgent(flag: str) -> None:
    plan = plan_report(report(**{flag: True}), RULES, EIGHT)
    assert all(m.facts["urgent"] for m in plan)


def test_feedback_reminder_after_two_weeks_as_a_waiting_period() -> None:
    plan = {m.purpose: m for m in plan_report(report(wants_feedback=True), RULES, EIGHT)}
    assert plan["aterkoppling"].due_at == at("2027-03-15T08:00")
    saturday = report(wants_feedback=True, registered_at=at("2027-03-06T10:00"))
    plan = {m.purpose: m for m in plan_report(saturday, RULES, EIGHT)}
    assert plan["aterkoppling"].due_at == at("2027-03-22T08:00")  # Saturday 20th → Monday


def test_receiving_names_the_receiver_once() -> None:
    received = receive_report(report(), "mona", at("2027-03-01T11:00"))
    assert received.state is ReportState.RECEIVED and received.received_by == "mona"
    assert "mottagen" in {m.purpose for m in plan_report(received, RULES, EIGHT)}
    with pytest.raises(CaseRuleError, match="received already"):
        receive_report(received, "mona", at("2027-03-01T12:00"))


def test_guardians_of_a_report_are_planned_as_external_addresses() -> None:
    plan = {m.purpose: m for m in plan_report(report(guardians=("vh@hem.se",)), RULES, EIGHT)}
    (recipient,) = plan["vardnadshavare"].recipients
    assert (recipient.kind, recipient.external, recipient.email) == (
        "external",
        "guardian",
        "vh@hem.se",
    )


# --- cases --------------------------------------------------------------------------------------


def test_an_open_case_reminds_its_owner_before_the_first_deadline_and_reports_it_overdue() -> None:
    plan = {m.purpose: m for m in plan_case(new_case(), RULES, EIGHT, MANAGER)}
    assert set(plan) == {
        "oppnat",
        "frist1-1v",
        "frist1-2ad",
        "frist1-forsenad",
        "frist1-forsenad-chef",
    }
    assert plan["frist1-forsenad-chef"].recipients[0].key == MANAGER
    assert plan["frist1-1v"].late == "skip" and plan["frist1-forsenad"].late == "send"


def test_no_meeting_without_consent() -> None:
    with pytest.raises(CaseRuleError, match="consent must be recorded"):
        booked(new_case())


def test_an_adult_pupil_gives_their_own_consent() -> None:
    case = new_case(adult_pupil=True)
    with pytest.raises(CaseRuleError, match="pupil's own consent"):
        give_consent(case, at("2027-03-02T10:00"), pupil_own=False)
    assert give_consent(case, at("2027-03-02T10:00"), pupil_own=True).state is CaseState.ACTIVE


def test_booking_drops_the_reminders_and_plans_invites_for_every_participant() -> None:
    case = booked(consented())
    plan = {m.purpose: m for m in plan_case(case, RULES, EIGHT, MANAGER)}
    assert not {p for p in plan if p.startswith("frist1")}
    keys = [r.key for r in plan["kallelse-m1"].recipients]
    assert keys == ["rut", "fia", "rektor@ekskolan", "vardnadshavare-1", "vardnadshavare-2"]
    # The second deadline now runs from the first meeting: 10 March + two weeks.
    assert deadlines(case, RULES)[1].last_day == dt.date(2027, 3, 24)
    assert {"frist2-1v", "frist2-2ad", "frist2-forsenad", "frist2-forsenad-chef"} <= set(plan)


def test_booking_is_refused_in_the_past_on_a_holiday_and_out_of_order() -> None:
    case = consented()
    with pytest.raises(CaseRuleError, match="already passed"):
        booked(case, "2027-03-01")
    with pytest.raises(CaseRuleError, match="Långfredagen"):
        booked(case, "2027-03-26")
    with pytest.raises(CaseRuleError, match="söndag"):
        booked(case, "2027-03-14")
    with pytest.raises(CaseRuleError, match="book meeting 1 before meeting 2"):
        book_meeting(case, 2, at("2027-03-10T13:00"), 90, None, at("2027-03-03T10:00"))


def test_moving_a_meeting_raises_its_sequence_and_keeps_its_number() -> None:
    case = booked(consented())
    moved = booked(case, "2027-03-11", now="2027-03-04T10:00")
    (meeting,) = moved.meetings
    assert (meeting.number, meeting.sequence) == (1, 1)
    assert "kallelse-m1-v1" in purposes(moved)
    assert booked(case) == case  # the same booking again changes nothing


def test_a_late_booking_keeps_the_overdue_notice() -> None:
    case = booked(consented(), "2027-03-18")
    assert {"frist1-forsenad", "frist1-forsenad-chef"} <= purposes(case)
    assert "frist1-1v" not in purposes(case)


def test_holding_sends_the_minutes_template_and_follow_ups_become_reminders() -> None:
    case = booked(consented())
    with pytest.raises(CaseRuleError, match="future"):
        hold_meeting(case, 1, None, at("2027-03-09T12:00"))
    held = hold_meeting(case, 1, None, at("2027-03-10T16:00"))
    assert held.meetings[0].state is MeetingState.HELD
    assert "minnesanteckningar-m1" in purposes(held)
    assert "kallelse-m1" not in purposes(held)  # a pending invite for a held meeting is stale
    with pytest.raises(CaseRuleError, match="after today"):
        add_follow_ups(held, [dt.date(2027, 3, 10)], at("2027-03-10T16:00"))
    followed = add_follow_ups(held, [dt.date(2027, 4, 20)], at("2027-03-10T16:00"))
    assert "uppfoljning-2027-04-20" in purposes(followed)
    with pytest.raises(CaseRuleError, match="held"):
        add_follow_ups(case, [dt.date(2027, 4, 20)], at("2027-03-10T16:00"))


def test_withdrawn_consent_cancels_everything_and_a_new_round_has_new_keys() -> None:
    case = booked(consented())
    withdrawn = withdraw_consent(case, at("2027-03-04T09:00"))
    assert withdrawn.meetings[0].state is MeetingState.CANCELLED
    assert purposes(withdrawn) == {"oppnat", "installt-m1-v1", "samtycke-aterkallat-r1"}
    again = give_consent(withdrawn, at("2027-03-05T09:00"), pupil_own=False)
    assert {"frist1-1v-r1", "frist1-forsenad-r1", "installt-m1-v1"} <= purposes(again)
    with pytest.raises(CaseRuleError, match="no consent in force"):
        withdraw_consent(withdrawn, at("2027-03-05T09:00"))


def test_only_the_owner_or_an_administrator_closes_and_upcoming_meetings_are_called_off() -> None:
    case = booked(consented())
    with pytest.raises(CaseRuleError, match="only the case owner"):
        close_case(case, at("2027-03-04T09:00"), by_owner_or_admin=False)
    closed = close_case(case, at("2027-03-04T09:00"), by_owner_or_admin=True)
    assert closed.state is CaseState.CLOSED and closed.closed_at == at("2027-03-04T09:00")
    assert purposes(closed) == {"oppnat", "installt-m1-v1", "avslutat"}
    for change in (
        lambda: booked(closed),
        lambda: give_consent(closed, at("2027-03-05T09:00"), pupil_own=False),
        lambda: close_case(closed, at("2027-03-05T09:00"), by_owner_or_admin=True),
    ):
        with pytest.raises(CaseRuleError, match="closed"):
            change()


def test_a_sip_uses_its_own_period_and_reminds_the_responsible_roles() -> None:
    rules = CaseRules(sip_first_meeting=Period(weeks=3))
    case = consented(sip=True)
    assert deadlines(case, rules)[0].last_day == dt.date(2027, 3, 23)
    case, number = add_sip_item(
        case, "familjebehandlare@ifo", dt.date(2027, 5, 3), at("2027-03-03T09:00")
    )
    case = replace(case, sip_follow_up=dt.date(2027, 6, 1))
    plan = {m.purpose: m for m in plan_case(case, rules, EIGHT, MANAGER)}
    assert number == 1
    assert plan["sip-1"].recipients[0].key == "familjebehandlare@ifo"
    assert plan["sip-1"].due_at == at("2027-04-26T08:00")
    assert [r.key for r in plan["sip-uppfoljning-2027-06-01"].recipients] == [
        "rut",
        "familjebehandlare@ifo",
    ]
    with pytest.raises(CaseRuleError, match="not a SIP"):
        add_sip_item(consented(), "rektor", dt.date(2027, 5, 3), at("2027-03-03T09:00"))
