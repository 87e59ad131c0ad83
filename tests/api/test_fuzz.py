"""Schema-driven fuzzing of the whole OpenAPI document (schemathesis): whatever a client
sends that the document allows or nearly allows, the gateway answers without a 5xx, and
every 4xx is problem+json naming a rule (issue 12). Run for an admin key and an operator
key on SQLite and PostgreSQL, bounded so the suite stays within minutes."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.generation.case import Case

from lodestone.bootstrap.settings import Settings
from lodestone.gateway import create_app
from tests.api.conftest import ADMIN_KEY, PROBLEM, _recreate, _settings, bearer, register_world

#: Examples per operation and principal: ~50 operations x 2 principals x 2 stores.
EXAMPLES = 20
FUZZ_DB = "api_fuzz"

# The document the gateway serves, loaded without starting it (no lifespan needed).
_DOCUMENT = create_app(
    Settings(data_dir=Path(tempfile.mkdtemp()) / "data", admin_key=ADMIN_KEY)
).openapi()
schema = schemathesis.openapi.from_dict(_DOCUMENT)


@pytest.fixture(scope="module")
def fuzzed(
    store: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[tuple[TestClient, dict[str, dict[str, str]]]]:
    """One registered world per store for the whole module: fuzzing writes into it."""
    data_dir = tmp_path_factory.mktemp("fuzz") / "data"
    if store == "postgres":
        _recreate(request.getfixturevalue("postgres_url"), FUZZ_DB)
    app = create_app(_settings(store, data_dir, request, FUZZ_DB if store == "postgres" else None))
    with TestClient(app, raise_server_exceptions=False) as client:
        world = register_world(client)
        yield client, {"admin": bearer(ADMIN_KEY), "operator": world.headers("mine")}


def _send(client: TestClient, case: Case, headers: dict[str, str]) -> Any:
    kwargs = case.as_transport_kwargs(base_url="http://testserver", headers=headers)
    body = kwargs.pop("json", None)
    content = kwargs.pop("data", None)
    if body is not None:
        content = json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")
        kwargs.setdefault("headers", {})["content-type"] = "application/json"
    # Cookies are not part of this API (keys travel in headers): none are sent.
    return client.request(
        kwargs["method"],
        kwargs["url"],
        content=content,
        headers=kwargs.get("headers"),
        params=kwargs.get("params"),
    )


@pytest.mark.parametrize("who", ["admin", "operator"])
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the same examples every run: CI is green or red for a reason
    suppress_health_check=list(HealthCheck),
)
def test_no_input_gets_a_5xx_and_every_4xx_is_a_problem_with_a_rule(
    case: Case, fuzzed: tuple[TestClient, dict[str, dict[str, str]]], who: str
) -> None:
    client, keys = fuzzed
    response = _send(client, case, keys[who])

    assert response.status_code < 500, (case.method, case.path, response.text[:500])
    if 400 <= response.status_code < 500:
        assert response.headers["content-type"] == PROBLEM, (case.path, response.text[:300])
        assert response.json().get("rule"), (case.path, response.text[:300])
