"""`RoleDirectory.resolve`: who holds a role (or `role@scope`) on a day. Pure, no database."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from scheduler.directory import Assignment, RoleDirectory

D = dt.date
NAMES = {"rektor": "Rektor", "kurator": "Kurator"}


def assignment(
    person_id: int,
    role: str,
    unit: str | None = None,
    kind: str | None = None,
    valid_from: dt.date | None = None,
    valid_to: dt.date | None = None,
) -> Assignment:
    return Assignment(
        person_id=person_id,
        person_key=f"p{person_id}",
        name=f"Person {99 - person_id}",  # names sort the other way round from keys
        email=f"p{person_id}@kommun.example.se",
        role=role,
        unit_key=unit,
        unit_name=unit.capitalize() if unit else None,
        unit_kind=kind,
        valid_from=valid_from,
        valid_to=valid_to,
    )


def keys(directory: RoleDirectory, refs: list[str], on: dt.date) -> list[str]:
    return [h.person_key for h in directory.resolve(refs, on)]


def test_a_role_without_scope_is_held_at_every_unit() -> None:
    directory = RoleDirectory(
        [assignment(1, "rektor", "ekskolan", "grundskola"), assignment(2, "kurator")], NAMES
    )
    assert keys(directory, ["rektor"], D(2027, 3, 1)) == ["p1"]


def test_a_scope_matches_the_unit_key_or_the_unit_kind() -> None:
    directory = RoleDirectory(
        [
            assignment(1, "rektor", "ekskolan", "grundskola"),
            assignment(2, "rektor", "lonnen", "forskola"),
        ],
        NAMES,
    )
    on = D(2027, 3, 1)
    assert keys(directory, ["rektor@ekskolan"], on) == ["p1"]
    assert keys(directory, ["rektor@forskola"], on) == ["p2"]
    assert keys(directory, ["rektor@gymnasium"], on) == []


def test_an_assignment_holds_from_its_first_to_its_last_day_inclusive() -> None:
    directory = RoleDirectory(
        [assignment(1, "kurator", valid_from=D(2027, 1, 10), valid_to=D(2027, 1, 20))], NAMES
    )
    assert keys(directory, ["kurator"], D(2027, 1, 9)) == []
    assert keys(directory, ["kurator"], D(2027, 1, 10)) == ["p1"]
    assert keys(directory, ["kurator"], D(2027, 1, 20)) == ["p1"]
    assert keys(directory, ["kurator"], D(2027, 1, 21)) == []


def test_a_person_reached_by_several_references_is_one_holder_with_all_of_them() -> None:
    directory = RoleDirectory(
        [
            assignment(1, "rektor", "ekskolan", "grundskola"),
            assignment(1, "kurator", "ekskolan", "grundskola"),
        ],
        NAMES,
    )
    (holder,) = directory.resolve(["rektor", "kurator@ekskolan"], D(2027, 3, 1))
    assert holder.roles == ("rektor", "kurator@ekskolan")
    assert holder.role_names == ("Rektor", "Kurator")
    assert holder.units == (("Ekskolan", "grundskola"),)
    assert holder.unit_keys == ("ekskolan",)


def test_a_role_without_a_display_name_is_named_by_its_key() -> None:
    directory = RoleDirectory([assignment(1, "samordnare")], NAMES)
    (holder,) = directory.resolve(["samordnare"], D(2027, 3, 1))
    assert holder.role_names == ("samordnare",)


people = st.lists(
    st.builds(
        assignment,
        person_id=st.integers(1, 30),
        role=st.sampled_from(["rektor", "kurator"]),
        unit=st.sampled_from([None, "ekskolan", "lonnen"]),
        kind=st.sampled_from([None, "grundskola", "forskola"]),
    ),
    max_size=20,
)


@given(people, st.lists(st.sampled_from(["rektor", "kurator", "rektor@ekskolan"]), max_size=3))
def test_each_holder_appears_once_in_a_stable_order(
    assignments: list[Assignment], refs: list[str]
) -> None:
    found = keys(RoleDirectory(assignments, NAMES), refs, D(2027, 3, 1))
    assert len(found) == len(set(found))
    assert found == sorted(found)
    assert keys(RoleDirectory(list(reversed(assignments)), NAMES), refs, D(2027, 3, 1)) == found
