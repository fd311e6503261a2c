"""Shared fixtures: real services (Redis, SMTP, PostgreSQL, CalDAV) started by the plugins below."""

pytest_plugins = [
    "tests.fixtures.smtp",
    "tests.fixtures.services",
    "tests.fixtures.caldav",
    "tests.fixtures.invites",
    "tests.fixtures.imap",
    "tests.fixtures.browser",
    "tests.fixtures.oidc",
    "tests.fixtures.summaries",
]
