"""The desk's permission rules (service/permissions.py), enumerated: every action × every kind of
person → allowed or refused. A new action without a row here fails the last test."""

from __future__ import annotations

import pytest

from service.permissions import Action, Actor, Matter, may, refusal

SCHOOL, OTHER_SCHOOL, INTAKE, OTHER_INTAKE, IFO = 1, 2, 3, 4, 5

PEOPLE = {
    "coordinator": Actor("ada", frozenset({("administrator", None)})),
    "case owner": Actor("sam", frozenset({("socialsekreterare", IFO)})),
    "rektor": Actor("rut", frozenset({("rektor", SCHOOL)})),
    "family worker": Actor("fia", frozenset({("familjebehandlare", IFO)})),
    "no role": Actor("nils", frozenset()),
    "reporter": Actor("lena", frozenset({("elevhalsa", SCHOOL)})),
    "intake officer": Actor("mona", frozenset({("mottagning", INTAKE)})),
    "another district's intake": Actor("olle", frozenset({("mottagning", OTHER_INTAKE)})),
    "another school's rektor": Actor("rolf", frozenset({("rektor", OTHER_SCHOOL)})),
}
EVERYONE = frozenset(PEOPLE)

REPORT = Matter(
    label="Anmälan 2027-0001",
    reference="2027-0001",
    reporter="lena",
    intake_unit_id=INTAKE,
    intake_name="Mottagningsenheten Norr",
)
CASE = Matter(
    label="Ärende 2027-0002",
    reference="2027-0002",
    owner="sam",
    participants=frozenset({"fia"}),
    school_unit_id=SCHOOL,
)
OWNER = frozenset({"coordinator", "case owner"})
CASE_PARTIES = frozenset({"coordinator", "case owner", "rektor", "family worker"})
REPORT_PARTIES = frozenset({"coordinator", "reporter", "intake officer"})

# (action, on what) → who may.
ALLOWED: dict[tuple[Action, str], frozenset[str]] = {
    (Action.REGISTER_REPORT, "nothing"): EVERYONE,
    (Action.RECEIVE_REPORT, "report"): frozenset({"coordinator", "intake officer"}),
    (Action.FLAG_ABUSE, "report"): frozenset({"coordinator", "reporter", "intake officer"}),
    (Action.OPEN_CASE, "nothing"): EVERYONE,
    (Action.RECORD_CONSENT, "case"): OWNER,
    (Action.WITHDRAW_CONSENT, "case"): OWNER,
    (Action.BOOK_MEETING, "case"): OWNER,
    (Action.HOLD_MEETING, "case"): OWNER,
    (Action.RECORD_MINUTES, "case"): OWNER,
    (Action.MARK_SIP, "case"): OWNER,
    (Action.ADD_SIP_ITEM, "case"): OWNER,
    (Action.CLOSE_CASE, "case"): OWNER,
    (Action.ADD_NOTE, "case"): EVERYONE,
    (Action.ADD_NOTE, "report"): EVERYONE,
    (Action.SHOW, "case"): CASE_PARTIES,
    (Action.SHOW, "report"): REPORT_PARTIES,
    (Action.READ_NOTES, "case"): CASE_PARTIES,
    (Action.READ_NOTES, "report"): REPORT_PARTIES,
}
MATTERS = {"nothing": None, "report": REPORT, "case": CASE}


@pytest.mark.parametrize(
    ("action", "on", "who"),
    [(action, on, who) for (action, on) in ALLOWED for who in PEOPLE],
    ids=lambda value: str(value),
)
def test_who_may_do_what(action: Action, on: str, who: str) -> None:
    expected = who in ALLOWED[action, on]
    assert may(action, PEOPLE[who], MATTERS[on]) is expected


@pytest.mark.parametrize("action", list(Action))
def test_the_console_may_only_read(action: Action) -> None:
    """No person acting (the CLI's `show`): reading only; every change needs a person."""
    for matter in (None, REPORT, CASE):
        assert may(action, None, matter) is (action in {Action.SHOW, Action.READ_NOTES})


def test_a_role_held_elsewhere_does_not_count() -> None:
    """The intake role of another unit, or the administrator's role under another key, is not
    enough: the unit is part of the rule."""
    assert not may(Action.RECEIVE_REPORT, PEOPLE["another district's intake"], REPORT)
    assert not may(Action.SHOW, PEOPLE["another school's rektor"], CASE)
    assert not may(Action.CLOSE_CASE, Actor("x", frozenset({("admin", None)})), CASE)


def test_refusals_name_the_rule_and_the_reference_only() -> None:
    assert refusal(Action.RECEIVE_REPORT, REPORT) == (
        "only the intake unit Mottagningsenheten Norr receives report 2027-0001"
    )
    assert "only the reporter" in refusal(Action.FLAG_ABUSE, REPORT)
    assert "only the case owner or an administrator may close" in refusal(Action.CLOSE_CASE, CASE)
    assert "only the case owner (processbäraren)" in refusal(Action.BOOK_MEETING, CASE)
    assert "only the parties of Ärende 2027-0002" in refusal(Action.READ_NOTES, CASE)


def test_every_action_has_a_row() -> None:
    assert {action for action, _ in ALLOWED} == set(Action)
