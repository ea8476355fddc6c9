"""The OpenAPI document against the running API: schemathesis drives every GET operation.

Cases are generated from ``webmap.openapi.openapi_document()`` (positive data only: values the
document allows) and sent to the app in-process (WSGI) with a valid analyst token over a copy of
the demo district.  Every response must be a documented status code with a body that matches
the documented schema, and none may be a 5xx.
"""

from __future__ import annotations

import shutil

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="needs schemathesis (pip install schemathesis)")
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from layers.store import Workspace  # noqa: E402
from webmap import accounts, create_app  # noqa: E402
from webmap.openapi import openapi_document  # noqa: E402

pytestmark = pytest.mark.slow

MAX_EXAMPLES = 12
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

schema = schemathesis.openapi.from_dict(openapi_document()).include(method="GET")
schema.config.generation.update(modes=["positive"], max_examples=MAX_EXAMPLES, deterministic=True)


@pytest.fixture(scope="module")
def api(demo_workspace, tmp_path_factory):
    """The app over a copy of the demo district, and a valid analyst token."""
    path = tmp_path_factory.mktemp("openapi") / "ws"
    shutil.copytree(demo_workspace.path, path)
    ws = Workspace.open(path)
    if accounts.get_user(ws, "api-analyst") is None:
        accounts.add_user(ws, "api-analyst", "analyst", "correct horse 1")
    token = accounts.create_token(ws, "api-analyst")
    app = create_app({"TESTING": True, "WORKSPACE": str(path), "SECRET_KEY": "openapi-test"})
    return app, {"Authorization": f"Bearer {token}"}


def test_document_is_served_and_names_the_bearer_scheme(api):
    app, headers = api
    served = app.test_client().get("/api/v1/openapi.json", headers=headers).get_json()
    assert served["openapi"].startswith("3.1")
    assert served["components"]["securitySchemes"]["bearerAuth"] == {"type": "http", "scheme": "bearer"}
    assert set(served["paths"]) == set(openapi_document()["paths"])


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_get_endpoints_conform_to_the_document(case, api):
    app, headers = api
    response = case.call(app=app, headers=headers)
    assert response.status_code < 500, response.text
    case.validate_response(response, checks=CHECKS, headers=headers)
