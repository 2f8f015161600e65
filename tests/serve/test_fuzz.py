"""schemathesis against /openapi.json of the recommender app: no 5xx and no answer outside the schema,
for generated valid and invalid requests (bounded: a few dozen examples per operation)."""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)

pytestmark = pytest.mark.slow
EXAMPLES_PER_OPERATION = 25


@pytest.fixture(scope="session")
def api_schema(rec_app):
    return schemathesis.openapi.from_asgi("/openapi.json", rec_app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_no_server_errors_and_answers_match_the_schema(case):
    case.call_and_validate(checks=[not_a_server_error, response_schema_conformance, status_code_conformance,
                                   content_type_conformance])
