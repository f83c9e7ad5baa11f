"""schemathesis against the service's OpenAPI schema: generated requests never get a 5xx."""

import pytest

schemathesis = pytest.importorskip("schemathesis")
from fastapi.testclient import TestClient  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

from anytask.apps.serve import build_app  # noqa: E402

TOKEN = "schema-token-123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_generated_requests_never_get_a_server_error(tmp_path):
    app = build_app(tmp_path / "home", backbone="tiny", token=TOKEN)
    with TestClient(app) as c:  # a task and an index to hit, so that paths with {name} can succeed too
        r = c.post("/v1/tasks", json={"name": "topics", "examples": [{"text": "goal", "label": "sports"},
                                                                     {"text": "salt", "label": "food"}]}, headers=AUTH)
        assert r.status_code == 201
        r = c.post("/v1/indexes", json={"name": "docs", "documents": [{"id": "a", "text": "goal"},
                                                                      {"id": "b", "text": "salt"}]}, headers=AUTH)
        assert r.status_code == 201
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    calls = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case):
            for headers in (AUTH, {}):
                response = case.call(headers=headers)
                calls.append((operation.label, response.status_code))
                case.validate_response(response, checks=[not_a_server_error])

        check()
    assert len({label for label, _ in calls}) == 19  # 9 task paths, the groups path and 9 index paths
    assert not [c for c in calls if c[1] >= 500]
