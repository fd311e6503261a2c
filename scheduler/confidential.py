"""Who may receive a message about a report or case that concerns suspected violence or abuse.

Seed 000/004: when the concern is suspected violence or sexual abuse, the guardians must not be
told. The rule is about the recipient, not about the route a message took to reach them: a
guardian may be a case participant, a person in the profile holding a guardian's role, a role
holder whose address is outside the municipality, a manager the case is escalated to, or the
new holder of a role at send time. So the test is one question asked of every recipient, when
the message is planned and again when it is sent: is this the municipality's own staff?

Staff is a person of the profile (not an address typed for the case), who holds none of the
roles that belong to families (guardian, pupil), and whose address is in one of the
municipality's staff domains, matched exactly: `exempelby.se` does not admit
`elev.exempelby.se`, since pupils' accounts often live on such a subdomain.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# Roles a profile may define for families; their holders are never staff.
FAMILY_ROLES = ("vardnadshavare", "elev")


@dataclass(frozen=True)
class StaffRule:
    domains: frozenset[str]
    family_roles: frozenset[str] = frozenset(FAMILY_ROLES)

    def problem(self, email: str, role_keys: Iterable[str], is_person: bool) -> str | None:
        """Why this recipient is not staff (a reason without personal data), or None."""
        if not is_person:
            return "an external participant"
        if self.family_roles.intersection(role_keys):
            return "a person holding a guardian's or pupil's role"
        domain = email.rpartition("@")[2].strip().lower().rstrip(".")
        if domain not in self.domains:
            return "an address outside the municipality's staff domains"
        return None
