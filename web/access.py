"""Who may see what: the signed-in person, their municipality and roles, and the page rules.

Every route is registered with one rule (`RULES`, filled by `rule(...)` when the route is
declared); `web.app.create_app` refuses to start if a route has none, and the permission test
enumerates the routes to check each rule for every kind of user.

- public: anyone (sign-in, health, metrics, static files; feeds carry their own token);
- signed_in: any signed-in person, role or not (the start page, signing out);
- staff: a person holding at least one role today in their municipality; what they see is
  narrowed to their units and cases by the page queries in `service`;
- coordinator: a person holding the coordinator role (`samordnare`) today;
- api: a system with a live API token (web/api.py); no session cookie and no CSRF token: the
  token names the municipality and the person the system acts as, and the service's
  permission checks decide the rest.

A person is only ever shown rows of their own municipality: every page query in `service`
(`service.viewer`) starts from `Viewer.municipality_id`.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import TypeVar

from service.viewer import COORDINATOR_ROLES, Role, Viewer, load_viewer

__all__ = ["COORDINATOR_ROLES", "RULES", "Role", "Rule", "Viewer", "load_viewer", "rule"]


class Rule(StrEnum):
    PUBLIC = "public"
    SIGNED_IN = "signed_in"
    STAFF = "staff"
    COORDINATOR = "coordinator"
    API = "api"


# endpoint name -> rule; filled by the `rule` decorator as the route modules are imported.
RULES: dict[str, Rule] = {}

F = TypeVar("F", bound=Callable[..., object])


def rule(which: Rule) -> Callable[[F], F]:
    """Declare the access rule of a route (its endpoint function's name is the key)."""

    def mark(endpoint: F) -> F:
        RULES[endpoint.__name__] = which
        return endpoint

    return mark
