"""`compute_plan`: occurrences → outbox rows, without a database. The rows of a window are the
messages due in it, one per holder of the addressed role on the day it is due."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from scheduler.calendar import STOCKHOLM
from scheduler.directory import Assignment, RoleDirectory
from scheduler.identity import message_id_for
from scheduler.planner import Municipal, PlanningInput, compute_plan
from scheduler.spec import Routine, SchoolYears

D = dt.date
SCHOOL_YEARS = SchoolYears.model_validate(
    {
        "years": [{"start": "2027-08-18", "end": "2028-06-09"}],
        "rule": {"start": {"month": 8, "day": 19}, "end": {"month": 6, "day": 11}},
    }
)
MUNICIPALITY = Municipal(
    id=1,
    key="exempel",
    name="Exempels kommun",
    sender_name="Samverkan",
    sender_email="noreply@kommun.example.se",
    send_time=dt.time(8, 0),
    school_years=SCHOOL_YEARS,
    role_names={"rektor": "Rektor", "elevhalsochef": "Elevhälsochef"},
)
EVALUATION = Routine.model_validate(
    {
        "key": "utvardering",
        "name": "Utvärdering",
        "kind": "deadline",
        "owners": ["elevhalsochef"],
        "when": {"date": {"month": 6, "day": 30}},
        "messages": [
            {"purpose": "paminnelse-30", "to": ["rektor"], "template": "t", "before": {"days": 30}},
            {"purpose": "paminnelse-7", "to": ["rektor"], "template": "t", "before": {"days": 7}},
        ],
    }
)


def person(person_id: int, role: str, **dates: Any) -> Assignment:
    return Assignment(
        person_id=person_id,
        person_key=f"p{person_id}",
        name=f"Person {person_id}",
        email=f"p{person_id}@kommun.example.se",
        role=role,
        unit_key="ekskolan",
        unit_name="Ekskolan",
        unit_kind="grundskola",
        valid_from=dates.get("valid_from"),
        valid_to=dates.get("valid_to"),
    )


def data(*assignments: Assignment) -> PlanningInput:
    directory = RoleDirectory(assignments, MUNICIPALITY.role_names)
    return PlanningInput(MUNICIPALITY, [(EVALUATION, [])], {}, directory)


def moment(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tzinfo=STOCKHOLM).astimezone(dt.UTC)


def test_each_message_due_in_the_window_becomes_one_row_per_holder() -> None:
    plan = compute_plan(
        data(person(1, "rektor"), person(2, "rektor"), person(3, "elevhalsochef")),
        moment(D(2027, 1, 1)),
        moment(D(2028, 1, 1)),
    )
    assert [(r.purpose, r.recipient.person_key) for r in plan.rows] == [
        ("paminnelse-30", "p1"),
        ("paminnelse-30", "p2"),
        ("paminnelse-7", "p1"),
        ("paminnelse-7", "p2"),
    ]
    first = plan.rows[0]
    assert first.key == "exempel/utvardering/2027/paminnelse-30/p1"
    assert first.due_at == dt.datetime(2027, 5, 31, 8, 0, tzinfo=STOCKHOLM)
    assert first.message_id == message_id_for(first.key, "kommun.example.se")
    assert first.context["recipient"] == {
        "name": "Person 1",
        "roles": ["Rektor"],
        "units": [{"name": "Ekskolan", "kind": "grundskola", "stages": []}],
    }
    assert first.context["owners"] == [{"name": "Person 3", "role": "Elevhälsochef"}]


def test_a_message_goes_to_whoever_holds_the_role_on_the_day_it_is_due() -> None:
    plan = compute_plan(
        data(
            person(1, "rektor", valid_to=D(2027, 6, 1)),
            person(2, "rektor", valid_from=D(2027, 6, 2)),
        ),
        moment(D(2027, 1, 1)),
        moment(D(2028, 1, 1)),
    )
    assert [(r.purpose, r.recipient.person_key) for r in plan.rows] == [
        ("paminnelse-30", "p1"),  # due 31 May
        ("paminnelse-7", "p2"),  # due 23 June
    ]


def test_nobody_holding_the_role_plans_no_row_but_keeps_the_timing() -> None:
    plan = compute_plan(data(), moment(D(2027, 1, 1)), moment(D(2028, 1, 1)))
    assert plan.rows == []
    assert [(t.message.purpose, holders) for t, holders in plan.timings] == [
        ("paminnelse-30", []),
        ("paminnelse-7", []),
    ]


def test_a_window_holds_its_first_moment_and_not_its_last() -> None:
    due = dt.datetime(2027, 5, 31, 8, 0, tzinfo=STOCKHOLM)  # the 30-day reminder
    ending = compute_plan(data(person(1, "rektor")), moment(D(2027, 1, 1)), due)
    starting = compute_plan(data(person(1, "rektor")), due, moment(D(2027, 6, 1)))
    assert [r.purpose for r in ending.rows] == []
    assert [r.purpose for r in starting.rows] == ["paminnelse-30"]


days = st.dates(min_value=D(2026, 1, 1), max_value=D(2030, 12, 31))


@given(days, st.integers(min_value=1, max_value=800))
def test_every_row_is_due_inside_the_window_once_and_in_order(first: dt.date, length: int) -> None:
    start, end = moment(first), moment(first + dt.timedelta(days=length))
    plan = compute_plan(data(person(1, "rektor"), person(2, "rektor")), start, end)
    assert all(start <= r.due_at < end for r in plan.rows)
    assert len({r.key for r in plan.rows}) == len(plan.rows)
    assert plan.rows == sorted(plan.rows, key=lambda r: (r.due_at, r.key))


@given(days, st.integers(min_value=1, max_value=400), st.integers(min_value=1, max_value=400))
def test_two_adjacent_windows_plan_what_their_union_plans(first: dt.date, a: int, b: int) -> None:
    start = moment(first)
    middle = moment(first + dt.timedelta(days=a))
    end = moment(first + dt.timedelta(days=a + b))
    input_ = data(person(1, "rektor"))
    split = compute_plan(input_, start, middle).rows + compute_plan(input_, middle, end).rows
    assert [r.key for r in split] == [r.key for r in compute_plan(input_, start, end).rows]
