"""Who may do what with a report of concern or a cooperation case: the rules, in one place.

Pure: the desk (service/desk.py) describes the person acting (`Actor`: the roles they hold
today) and the report or case (`Matter`: who stands where in it), and asks `may`. Every
interface (the CLI, the web forms, the JSON API) goes through the desk, so no rule lives in a
command or a route. The rules are seed 004's:

- register a report, open a case, add a note: any active person of the profile (the duty to
  report is personal; whoever raises a case owns it);
- receive a report: the intake unit it went to (its `intake_role`), an administrator;
- flag a report as suspected abuse: its reporter, that intake unit, an administrator;
- consent, withdraw consent, book, hold, minutes, SIP, SIP rows, close: the case owner
  (processbärare), an administrator;
- see a report or case, read its notes: its parties (a report's reporter and intake unit; a
  case's owner, family worker and staff participants, the rektor of its school), an
  administrator; at the console, with no person acting, whoever is at the terminal.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

ADMINISTRATOR = "administrator"


class Action(StrEnum):
    REGISTER_REPORT = "report.register"
    RECEIVE_REPORT = "report.receive"
    FLAG_ABUSE = "report.flag_abuse"
    OPEN_CASE = "case.open"
    RECORD_CONSENT = "case.consent"
    WITHDRAW_CONSENT = "case.withdraw_consent"
    BOOK_MEETING = "case.book"
    HOLD_MEETING = "case.hold"
    RECORD_MINUTES = "case.minutes"
    MARK_SIP = "case.sip"
    ADD_SIP_ITEM = "case.sip_add"
    CLOSE_CASE = "case.close"
    ADD_NOTE = "note.add"
    SHOW = "show"
    READ_NOTES = "note.read"


# Anyone of the profile: the duty to report is personal, and whoever raises a case owns it.
ANYONE = frozenset({Action.REGISTER_REPORT, Action.OPEN_CASE, Action.ADD_NOTE})
# The case owner's work (and an administrator's).
OWNERS = frozenset(
    {
        Action.RECORD_CONSENT,
        Action.WITHDRAW_CONSENT,
        Action.BOOK_MEETING,
        Action.HOLD_MEETING,
        Action.RECORD_MINUTES,
        Action.MARK_SIP,
        Action.ADD_SIP_ITEM,
        Action.CLOSE_CASE,
    }
)
PARTIES = frozenset({Action.SHOW, Action.READ_NOTES})
# With no person acting (the console, where the operator is trusted): reading only.
CONSOLE = PARTIES


@dataclass(frozen=True)
class Actor:
    """The person acting, with the roles they hold today: (role, unit id or None)."""

    key: str
    roles: frozenset[tuple[str, int | None]] = frozenset()

    def holds(self, role: str, unit_id: int | None = None) -> bool:
        """Holds `role` today (at `unit_id`, when given)."""
        return any(r == role and (unit_id is None or u == unit_id) for r, u in self.roles)


@dataclass(frozen=True)
class Matter:
    """Who stands where in a report or a case (person keys, unit ids)."""

    label: str  # "Anmälan 2027-0001", "Ärende 2027-0002": names the matter in a refusal
    reference: str
    reporter: str | None = None
    intake_unit_id: int | None = None
    intake_name: str = ""
    intake_role: str = "mottagning"
    owner: str | None = None
    participants: frozenset[str] = frozenset()  # family worker and further staff
    school_unit_id: int | None = None


def may(action: Action, actor: Actor | None, matter: Matter | None) -> bool:
    """Whether `actor` (None: the console) may do `action` on `matter`."""
    if actor is None:
        return action in CONSOLE
    if action in ANYONE or actor.holds(ADMINISTRATOR):
        return True
    if matter is None:
        return False
    if action is Action.RECEIVE_REPORT:
        return _intake(actor, matter)
    if action is Action.FLAG_ABUSE:
        return actor.key == matter.reporter or _intake(actor, matter)
    if action in OWNERS:
        return matter.owner is not None and actor.key == matter.owner
    if action in PARTIES:
        return _party(actor, matter)
    return False


def _intake(actor: Actor, matter: Matter) -> bool:
    return matter.intake_unit_id is not None and actor.holds(
        matter.intake_role, matter.intake_unit_id
    )


def _party(actor: Actor, matter: Matter) -> bool:
    if actor.key in {matter.reporter, matter.owner} or actor.key in matter.participants:
        return True
    if matter.school_unit_id is not None and actor.holds("rektor", matter.school_unit_id):
        return True
    return _intake(actor, matter)


def refusal(action: Action, matter: Matter | None) -> str:
    """Why `action` was refused, naming the matter by its reference only."""
    if matter is None or action in ANYONE:
        return "--by: who is acting must be a person of the profile"
    if action is Action.RECEIVE_REPORT:
        return f"only the intake unit {matter.intake_name} receives report {matter.reference}"
    if action is Action.FLAG_ABUSE:
        return "--by: only the reporter, the intake unit or an administrator may flag a report"
    if action is Action.CLOSE_CASE:
        return f"only the case owner or an administrator may close case {matter.reference}"
    if action in OWNERS:
        return (
            "only the case owner (processbäraren) or an administrator may do that in case "
            f"{matter.reference}"
        )
    return f"--by: only the parties of {matter.label} or an administrator may see it"
