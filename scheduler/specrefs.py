"""The checks of a profile that span fields: every name it uses points at something it defines.

The schema (scheduler/spec.py) checks each field by itself; `reference_problems` then checks
the profile whole: unknown roles, units, districts and places, duplicate keys, addresses shared
between people, and the case rules' roles. Each problem carries the path of its field.
"""

from __future__ import annotations

from scheduler.spec import (
    RESERVED_ROUTINE_KEYS,
    CaseRules,
    Message,
    Path,
    Profile,
    RoleRef,
    Routine,
    RoutineKind,
    UnitKind,
)

Problem = tuple[Path, str]


def reference_problems(profile: Profile) -> list[Problem]:
    """Every name in the profile that points at nothing, each with the path of its field."""
    problems: list[Problem] = []
    problems += _duplicate_keys(profile)
    problems += _shared_addresses(profile)
    districts = {d.key for d in profile.districts}
    units = {u.key for u in profile.units}
    roles = profile.role_names()
    for i, unit in enumerate(profile.units):
        if unit.district is not None and unit.district not in districts:
            problems.append((("units", i, "district"), f"unknown district {unit.district!r}"))
    problems += [
        (("places", i, "unit"), "no unit with that key")
        for i, place in enumerate(profile.places)
        if place.unit is not None and place.unit not in units
    ]
    for i, person in enumerate(profile.people):
        for j, assignment in enumerate(person.roles):
            where: Path = ("people", i, "roles", j)
            if assignment.role not in roles:
                problems.append(((*where, "role"), f"unknown role {assignment.role!r}"))
            if assignment.unit is not None and assignment.unit not in units:
                problems.append(((*where, "unit"), f"unknown unit {assignment.unit!r}"))
    for i, routine in enumerate(profile.routines):
        if routine.key in RESERVED_ROUTINE_KEYS:
            problems.append((("routines", i, "key"), f"{routine.key!r} is reserved for case work"))
        problems += _routine_reference_problems(("routines", i), routine, roles, units)
        problems += _place_problems(("routines", i), routine, {p.key for p in profile.places})
    problems += _case_rule_problems(profile.cases, roles, units)
    return problems


def _case_rule_problems(rules: CaseRules, roles: dict[str, str], units: set[str]) -> list[Problem]:
    problems: list[Problem] = []
    where: Path = ("cases",)
    for j, role in enumerate(rules.owner_roles):
        if role not in roles:
            problems.append(((*where, "owner_roles", j), f"unknown role {role!r}"))
    for role, manager in rules.managers.items():
        if role not in roles:
            problems.append(((*where, "managers", role), f"unknown role {role!r}"))
        problem = _role_ref_problem(manager, roles, units)
        if problem:
            problems.append(((*where, "managers", role), problem))
    if rules.intake_role not in roles:
        problems.append(((*where, "intake_role"), f"unknown role {rules.intake_role!r}"))
    return problems


def _duplicate_keys(profile: Profile) -> list[Problem]:
    problems: list[Problem] = []
    sections: dict[str, list[str]] = {
        "districts": [d.key for d in profile.districts],
        "units": [u.key for u in profile.units],
        "people": [p.key for p in profile.people],
        "routines": [r.key for r in profile.routines],
        "roles": [r.key for r in profile.roles],
        "places": [p.key for p in profile.places],
    }
    for section, keys in sections.items():
        seen: set[str] = set()
        for i, key in enumerate(keys):
            if key in seen:
                problems.append(((section, i, "key"), f"duplicate key {key!r}"))
            seen.add(key)
    return problems


def _place_problems(where: Path, routine: Routine, places: set[str]) -> list[Problem]:
    """A meeting's place, and each booking's, must be one of the profile's places."""
    problems: list[Problem] = []
    if routine.meeting is not None and routine.meeting.place not in (None, *places):
        problems.append(((*where, "meeting", "place"), "no place with that key under 'places'"))
    for year, booking in routine.bookings.items():
        if booking.place not in (None, *places):
            problems.append(
                ((*where, "bookings", year, "place"), "no place with that key under 'places'")
            )
    return problems


def _shared_addresses(profile: Profile) -> list[Problem]:
    """Two people with one address would each get their own copy of every message: refused.

    Addresses are compared without regard to case (mail systems treat them alike). A shared
    mailbox is one person with several roles. The message names the other person, not the
    address, so the error shows no more than the file's line and keys.
    """
    problems: list[Problem] = []
    first: dict[str, tuple[int, str]] = {}
    for i, person in enumerate(profile.people):
        address = person.email.casefold()
        if address in first:
            index, key = first[address]
            problems.append(
                (
                    ("people", i, "email"),
                    f"the same address as people[{index}] (key {key!r}); each person needs "
                    "their own address (a shared mailbox is one person with several roles)",
                )
            )
        else:
            first[address] = (i, person.key)
    return problems


def _role_ref_problem(text: str, roles: dict[str, str], units: set[str]) -> str | None:
    ref = RoleRef.parse(text)
    if ref.role not in roles:
        return f"unknown role {ref.role!r}"
    if ref.scope is not None and ref.scope not in units and ref.scope not in set(UnitKind):
        return f"unknown unit or unit kind {ref.scope!r} in {text!r}"
    return None


def _month_meeting_problems(where: Path, routine: Routine, message: Message) -> list[Problem]:
    """`on: window_end` and `repeat` count from a meeting's month: only such a routine has one."""
    if routine.kind is RoutineKind.MEETING and routine.when.month is not None:
        return []
    problems: list[Problem] = []
    if message.on == "window_end":
        problems.append(((*where, "on"), "window_end is for a meeting held in a month"))
    if message.repeat is not None:
        problems.append(((*where, "repeat"), "repeat is for a meeting held in a month"))
    return problems


def _routine_reference_problems(
    where: Path, routine: Routine, roles: dict[str, str], units: set[str]
) -> list[Problem]:
    problems: list[Problem] = []
    for field in ("owners", "participants"):
        for j, text in enumerate(getattr(routine, field)):
            problem = _role_ref_problem(text, roles, units)
            if problem:
                problems.append(((*where, field, j), problem))
    for m, message in enumerate(routine.messages):
        for j, text in enumerate(message.to):
            problem = _role_ref_problem(text, roles, units)
            if problem:
                problems.append(((*where, "messages", m, "to", j), problem))
        if message.reply_to is not None:
            problem = _role_ref_problem(message.reply_to, roles, units)
            if problem:
                problems.append(((*where, "messages", m, "reply_to"), problem))
        if message.on == "booking" and routine.kind is not RoutineKind.MEETING:
            problems.append(((*where, "messages", m, "on"), "only a meeting can send on booking"))
        problems += _month_meeting_problems((*where, "messages", m), routine, message)
    return problems
