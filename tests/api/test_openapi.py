"""The OpenAPI document describes every answer: each operation's 2xx has a schema, and
the errors a route can give are documented as problem+json."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lodestone.bootstrap.settings import Settings
from lodestone.gateway import create_app

#: Answers that are files, not JSON documents: their media type is the schema.
FILES = {
    "/v1/audit/verifier.py": "text/x-python",
    "/v1/batches/{actor}/{lot}/report.html": "text/html",
    "/v1/batches/{actor}/{lot}/report.pdf": "application/pdf",
    "/v1/batches/{actor}/{lot}/bundle": "application/json",
    "/v1/batches/{actor}/{lot}/graph.svg": "image/svg+xml",
    "/v1/declarations/{actor}/{month}.csv": "text/csv",
    "/v1/declarations/{actor}/{month}.xlsx": (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    ),
    "/v1/declarations/{actor}/{month}.html": "text/html",
    "/v1/declarations/{actor}/{month}.pdf": "application/pdf",
}


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    data_dir: Path = tmp_path_factory.mktemp("openapi") / "data"
    return create_app(Settings(data_dir=data_dir, admin_key="k")).openapi()


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if path not in ("/docs", "/redoc", "/openapi.json")
    ]


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref:
        return document["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return schema


def test_every_operation_documents_a_2xx_answer_with_a_schema(document):
    missing = []
    for path, method, operation in _operations(document):
        ok = {code: r for code, r in operation["responses"].items() if code.startswith("2")}
        if path in FILES:
            content = next(iter(ok.values())).get("content", {})
            if FILES[path] not in content:
                missing.append(f"{method.upper()} {path}: no {FILES[path]} content")
            continue
        schemas = [
            _resolve(document, media["schema"])
            for r in ok.values()
            for media in r.get("content", {}).values()
            if "schema" in media
        ]
        # An empty schema ({}) documents nothing: each answer names its properties.
        if not any(s.get("properties") or s.get("anyOf") or s.get("oneOf") for s in schemas):
            missing.append(f"{method.upper()} {path}")
    assert not missing, missing


def test_every_json_route_documents_its_errors_as_problem_json(document):
    missing = []
    for path, method, operation in _operations(document):
        if path == "/health":
            continue  # open to anyone, takes no input: it has no error to document
        errors = {c: r for c, r in operation["responses"].items() if c[0] in "45"}
        problem = [
            c for c, r in errors.items() if "application/problem+json" in r.get("content", {})
        ]
        if "422" not in problem or "401" not in problem:
            missing.append(f"{method.upper()} {path}: {sorted(problem)}")
    assert not missing, missing


def test_a_problem_is_documented_with_field_and_rule(document):
    operation = document["paths"]["/v1/batches/{actor}/{lot}"]["get"]
    schema = operation["responses"]["404"]["content"]["application/problem+json"]["schema"]
    assert {"type", "title", "status", "detail", "field", "rule"} <= set(schema["properties"])
