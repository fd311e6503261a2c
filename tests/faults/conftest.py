"""Fixtures of the fault-injection suite; the figures of each run are summarised at the end
(`tests/fixtures/summaries.py`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.faults.harness import Cluster, Outbox
from tests.fixtures.services import PostgresSchema, RedisProcess
from tests.fixtures.smtp import SmtpRecorder


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Every test here is a fault scenario: `pytest -m faults` selects them, a plain `pytest`
    # runs them too (at the quick size).
    for item in items:
        if "tests/faults/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.faults)


@pytest.fixture
def outbox(postgres_schema: PostgresSchema) -> Iterator[Outbox]:
    box = Outbox(postgres_schema.url)
    try:
        yield box
    finally:
        box.close()


@pytest.fixture
def make_cluster(
    tmp_path: Path, outbox: Outbox, redis_server: RedisProcess, smtp_server: SmtpRecorder
) -> Iterator[Callable[..., Cluster]]:
    """Build the scenario's Cluster (settings as keyword arguments); stopped after the test."""
    made: list[Cluster] = []

    def build(**settings: str) -> Cluster:
        cluster = Cluster(tmp_path, outbox.url, redis_server.url, smtp_server, **settings)
        made.append(cluster)
        return cluster

    try:
        yield build
    finally:
        for cluster in made:
            cluster.stop()
