"""Shared fixtures: real services (Redis, SMTP, PostgreSQL) are started by the plugins below."""

pytest_plugins = [
    "tests.fixtures.smtp",
    "tests.fixtures.services",
]
