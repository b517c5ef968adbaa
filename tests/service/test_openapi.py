"""The OpenAPI document, fuzzed: no input schemathesis can make gets a 5xx, and every
response matches its documented schema."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance

import migrations as migrate
from service.app import create_app
from service.jobs.examples import SEEDS
from tests.conftest import make_settings


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'gradlab.db'}"
    migrate.upgrade(url)
    # schemathesis's in-process client always goes by the name `testserver`: allow that name.
    overrides = {"max_iterations": 1000, "max_inline_rows": 200, "allowed_hosts": "testserver"}
    app = create_app(make_settings(url, **overrides))
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def test_no_input_gets_a_server_error_and_responses_match_their_schema(api_schema):
    # One Hypothesis run per operation. (schemathesis.pytest.from_fixture would do the same,
    # but reaches into a pytest attribute that pytest 9.2 no longer has.)
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 12
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
        def fuzz(case) -> None:
            # Schema-valid bodies may still be refused: the fields must also fit together
            # (service.jobs.validation), which no JSON Schema says.
            case.call_and_validate(excluded_checks=[positive_data_acceptance])

        fuzz()


def test_every_operation_documents_its_errors(api_schema):
    document = api_schema.raw_schema
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            assert operation.get("summary"), f"{method.upper()} {path} has no summary"
            if "{job_id}" in path:
                assert "404" in operation["responses"], f"{method.upper()} {path} documents no 404"


def test_every_spec_field_is_described(api_schema):
    components = api_schema.raw_schema["components"]["schemas"]
    undocumented = []
    for name in ("JobSpec", "GD", "SGD", "Newton", "MLP", "LineData", "BlobsData", "SpiralData",
                 "InlineData", "RandomInit", "GivenInit", "GradientCheckSpec"):  # fmt: skip
        for field, prop in components[name]["properties"].items():
            if field == "kind":
                continue
            if not prop.get("description"):
                undocumented.append(f"{name}.{field}")
    assert undocumented == []


def test_swagger_offers_every_seed_exercise(api_schema):
    post = api_schema.raw_schema["paths"]["/v1/jobs"]["post"]
    examples = post["requestBody"]["content"]["application/json"]["examples"]
    assert set(examples) == set(SEEDS)
    assert {"line_mse", "line_mae", "blobs_logistic", "spiral_softmax"} <= set(examples)
    assert {"spiral_two_layer", "newton_logistic"} <= set(examples)
