"""Property-based fuzzing of the gateway's own OpenAPI schema with schemathesis (pinned in requirements/dev.txt).

For each CLIP route, schemathesis generates requests that follow the schema (positive) and that
break it (negative: wrong types, missing fields, bodies that are not even JSON), and sends them
to the real session gateway. Whatever comes in, the answer is never a 5xx, always JSON, and
never slow: each request has a 10 s client timeout and the whole run a 90 s budget.
Generation is derandomized, so a failure reproduces on the next run.
"""

from __future__ import annotations

import collections
import time

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode

pytestmark = pytest.mark.timeout(240)

ROUTES = ("/clip/embed_image", "/clip/embed_text", "/clip/compare")
# (mode, examples per route): 3 x (110 + 60) = 510 requests.
PLAN = ((GenerationMode.POSITIVE, 110), (GenerationMode.NEGATIVE, 60))
MIN_REQUESTS = 500
BUDGET_S = 90.0
REQUEST_TIMEOUT_S = 10.0


def test_schema_fuzzing_never_gives_5xx(gateway) -> None:
    schema = schemathesis.openapi.from_url(f"{gateway.base_url}/openapi.json")
    statuses: collections.Counter[tuple[str, str, int]] = collections.Counter()
    failures: list[str] = []
    started = time.monotonic()

    for route in ROUTES:
        operation = schema[route]["POST"]
        for mode, examples in PLAN:

            @settings(
                max_examples=examples,
                deadline=None,
                derandomize=True,
                database=None,
                phases=[Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(mode))
            def exercise(case: schemathesis.Case) -> None:
                t0 = time.monotonic()
                response = case.call(base_url=gateway.base_url, timeout=REQUEST_TIMEOUT_S)
                elapsed = time.monotonic() - t0
                statuses[(route, mode.name, response.status_code)] += 1
                content_type = response.headers.get("content-type", [""])
                content_type = content_type[0] if isinstance(content_type, list) else content_type
                if response.status_code >= 500 or not content_type.startswith("application/json"):
                    failures.append(
                        f"{route} {mode.name} -> {response.status_code} {content_type}: "
                        f"body={case.body!r:.300} query={case.query} reply={response.text[:200]}"
                    )
                assert elapsed < REQUEST_TIMEOUT_S

            exercise()
            assert time.monotonic() - started < BUDGET_S, f"fuzzing over budget: {dict(statuses)}"

    total = sum(statuses.values())
    assert not failures, "\n".join(failures[:10])
    assert total >= MIN_REQUESTS, dict(statuses)
    # The gateway answered real work too, not only refusals.
    assert any(status == 200 for (_, _, status) in statuses), dict(statuses)
    assert {route for (route, _, _) in statuses} == set(ROUTES)
