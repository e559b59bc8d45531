"""The OpenAPI schema, fuzzed (schemathesis) against a real server: whatever a client sends, no 500, and every
status the server answers is one the schema documents for that operation. A bounded number of examples per
operation keeps this inside `make test`; the full exploration is `schemathesis run URL/openapi.json`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import status_code_conformance

from tests.browser.conftest import LiveServer, start_server
from tests.rasa_token import TOKEN as RASA_TOKEN

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def fuzzed_server(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str, model_dir: Path
) -> Iterator[LiveServer]:
    env = {
        "TRIAGE_RASA_WEBHOOK_TOKEN": RASA_TOKEN,
        "TRIAGE_CONVERSATIONS_PER_MINUTE": "0",  # hundreds of generated requests from one address
        "TRIAGE_MESSAGES_PER_MINUTE": "0",
        "TRIAGE_LOG_LEVEL": "warning",
    }
    yield from start_server(tmp_path_factory, redis_url, model_dir, env)


@pytest.fixture(scope="module")
def api_schema(fuzzed_server: LiveServer) -> Any:
    return schemathesis.openapi.from_url(f"{fuzzed_server.url}/openapi.json")


def test_no_server_errors_and_only_documented_statuses(api_schema: Any) -> None:
    """Every operation, a bounded number of generated requests each. (schemathesis's pytest plugin does not
    run under pytest 9, so hypothesis drives each operation's strategy here.)"""
    failures: list[str] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 10
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def exercise(case: Any) -> None:
            response = case.call(timeout=30)
            case.validate_response(response, checks=[not_a_server_error, status_code_conformance])

        try:
            exercise()
        except (Exception, BaseExceptionGroup) as exc:  # every operation's failures, not just the first
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:600]}")
    assert not failures, "\n\n".join(failures)
