"""Property-based fuzzing of the REST API from its own OpenAPI (Swagger 2.0) document.

Schemathesis reads /api/v1/swagger.json from the in-process Flask app and generates requests
for every operation: valid ones, invalid ones, and valid ones whose fields are partly taken
from the document's own `example` values (real symbols, exchanges and expiries, so requests
get past "unknown symbol" and reach the deeper code). They go through the WSGI app (no
sockets; a fresh desk trades in the sandbox) with a valid X-API-KEY, and any 5xx fails the
test. Every operation is fuzzed before the test fails, so one run lists all the operations
that answer with a 500, each with Hypothesis' shrunk reproduction (a curl command).
Bounded and derandomized, so CI runs are reproducible.

Schemathesis' own `from_fixture` pytest integration breaks on pytest 9 (it reads
`request.node._nodeid`), so the operations are driven with `@given` and `as_strategy` instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok

from app import create_app
from config import Settings
from services.clock import IST, FixedClock
from tests.conftest import desk_env, desk_of, make_user

pytestmark = pytest.mark.slow

# Monday 2026-11-23, 11:00 IST: a trading day with the market open.
NOW = datetime(2026, 11, 23, 11, 0, tzinfo=IST)

# Examples per operation, shared among the three kinds of request.
MAX_EXAMPLES = 25

FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    print_blob=False,
)

Spec = dict[str, Any]
Operation = schemathesis.APIOperation[Any, Any, Any, Any]
Case = schemathesis.Case[Any]


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    folder = Path(tmp_path_factory.mktemp("api-fuzz"))
    desk_settings = Settings.from_mapping(desk_env(folder, MARKET_MODE="CALENDAR"))
    flask_app = create_app(desk_settings, clock=FixedClock(NOW))
    desk_of(flask_app).market.master  # noqa: B018  (build the master once for the module)
    yield flask_app
    desk_of(flask_app).close()


@pytest.fixture(scope="module")
def fuzz_key(fuzz_app: Flask) -> str:
    return desk_of(fuzz_app).api_keys.create(make_user(fuzz_app, admin=True).id)


def definition(spec: Spec, schema: Spec) -> Spec:
    ref = schema.get("$ref", "")
    found: Spec = spec["definitions"].get(ref.rsplit("/", 1)[-1], {}) if ref else schema
    return found


def body_schema(spec: Spec, operation: Operation) -> Spec:
    raw = spec["paths"][operation.path][operation.method.lower()]
    for parameter in raw.get("parameters", []):
        if parameter.get("in") == "body":
            return definition(spec, parameter.get("schema", {}))
    return {}


def with_examples(draw: st.DrawFn, spec: Spec, schema: Spec, value: object) -> object:
    """`value` with some of its fields (recursively) replaced by the schema's examples."""
    if not isinstance(value, dict):
        return value
    properties: Spec = schema.get("properties", {})
    patched = dict(value)
    for name, prop in properties.items():
        if name == "apikey" or name not in patched:
            continue
        if "example" in prop and draw(st.integers(0, 7)) > 0:  # mostly the example
            patched[name] = prop["example"]
        elif prop.get("type") == "array" and isinstance(patched[name], list):
            item = definition(spec, prop.get("items", {}))
            patched[name] = [with_examples(draw, spec, item, v) for v in patched[name]]
    return patched


def realistic_cases(spec: Spec, operation: Operation) -> st.SearchStrategy[Case]:
    schema = body_schema(spec, operation)
    positive = operation.as_strategy(generation_mode=schemathesis.GenerationMode.POSITIVE)

    @st.composite
    def cases(draw: st.DrawFn) -> Case:
        case = draw(positive)
        if isinstance(case.body, dict):
            case.body = with_examples(draw, spec, schema, case.body)  # type: ignore[assignment]
        return case

    return cases()


def fuzz_operation(spec: Spec, operation: Operation, key: str) -> None:
    """Send MAX_EXAMPLES generated requests to one operation; raise on a 5xx."""
    cases = st.one_of(
        realistic_cases(spec, operation),
        operation.as_strategy(generation_mode=schemathesis.GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=schemathesis.GenerationMode.NEGATIVE),
    )

    @FUZZ_SETTINGS
    @given(case=cases)
    def run(case: Case) -> None:
        case.call_and_validate(headers={"X-API-KEY": key}, checks=[not_a_server_error])

    run()


def test_no_operation_answers_with_a_server_error(fuzz_app: Flask, fuzz_key: str) -> None:
    api = schemathesis.openapi.from_wsgi("/api/v1/swagger.json", fuzz_app)
    spec: Spec = api.raw_schema
    # The key goes in the header; generated keys would only produce 401s.
    api.config.generation.update(with_security_parameters=False)
    operations = []
    for result in api.get_all_operations():
        assert isinstance(result, Ok), f"the API document is broken: {result}"
        operations.append(result.ok())
    assert len(operations) > 20, "the API document lists too few operations"
    failures: dict[str, str] = {}
    for operation in operations:
        try:
            fuzz_operation(spec, operation, fuzz_key)
        # Schemathesis' FailureGroup is a BaseExceptionGroup, not an Exception.
        except (Exception, BaseExceptionGroup) as e:
            failures[operation.label] = f"{type(e).__name__}: {e}"
    report = "\n\n".join(f"=== {label}\n{error}" for label, error in failures.items())
    assert not failures, f"{len(failures)} operation(s) answered with a 5xx:\n\n{report}"
