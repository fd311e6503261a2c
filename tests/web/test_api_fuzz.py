"""schemathesis against the JSON API, in-process (ASGI), with a valid token, for every operation.

The operations are read from the app's own OpenAPI document (`/openapi.json`). For each one,
schemathesis generates requests that fit the schema (positive) and requests that break it
(negative); an operation on a reference runs once with generated references and once on the
world's real report or case, so the bodies also reach the case rules. Every answer is checked
by schemathesis's checks: no 5xx, the status code and the content type are documented, the
body conforms to its schema, a request that breaks the schema is refused, a request without the
token is refused. Examples per operation and mode: SAMVERKAN_TEST_API_FUZZ_EXAMPLES (default
12, about 30 s in all on the shared two-core machine). The figures are printed (pytest -s) and
recorded as properties of the test (junit XML).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import FailedHealthCheck, Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.web.conftest import World
from tests.web.test_api import new_token

EXAMPLES = int(os.environ.get("SAMVERKAN_TEST_API_FUZZ_EXAMPLES", "12"))
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)


def test_no_generated_request_gets_a_server_error_and_every_answer_fits_the_schema(
    world: World, record_property: Any
) -> None:
    token = new_token(world, "ingrid-mattsson", system="fuzz")
    headers = {"Authorization": f"Bearer {token}"}
    schema = schemathesis.openapi.from_asgi("/openapi.json", world.client().app)
    figures: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    started = time.monotonic()

    def fuzz(label: str, strategy: Any) -> None:
        @given(case=strategy)
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],  # no shrinking: failures are collected
            suppress_health_check=list(HealthCheck),
        )
        def one(case: Any) -> None:
            figures["examples"] += 1
            try:
                response = case.call(headers=headers)
                statuses[response.status_code] += 1
                # Positive data that names nothing in the municipality (a made-up unit or
                # reference) is refused with 404/422 by design, so that check is left out.
                case.validate_response(
                    response, headers=headers, excluded_checks=[positive_data_acceptance]
                )
            except (Exception, BaseExceptionGroup) as exc:  # collected, reported below
                failures.append(f"{label}: {type(exc).__name__}: {str(exc)[:600]}")

        try:
            one()
        except (Unsatisfiable, FailedHealthCheck):
            figures["unsatisfiable"] += 1  # e.g. nothing to break in a request without input

    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()
        figures["operations"] += 1
        references: list[str | None] = [None]
        if "{reference}" in operation.path:
            references.append(world.report if "/reports/" in operation.path else world.case)
        for reference in references:
            fixed = {"reference": reference} if reference else None
            for mode in MODES:
                label = f"{operation.label} [{mode.value}{', ' + reference if reference else ''}]"
                figures["runs"] += 1
                fuzz(label, operation.as_strategy(generation_mode=mode, path_parameters=fixed))

    seconds = time.monotonic() - started
    summary = (
        f"schemathesis: {figures['operations']} operations, {figures['runs']} runs "
        f"(positive and negative), {figures['examples']} requests, {len(failures)} failures, "
        f"{seconds:.1f} s; statuses {dict(sorted(statuses.items()))}"
    )
    print(summary)
    record_property("schemathesis", summary)
    assert figures["operations"] == 8
    assert figures["examples"] >= figures["runs"]
    assert not [s for s in statuses if s >= 500]
    assert not failures, "\n\n".join(failures[:10])
