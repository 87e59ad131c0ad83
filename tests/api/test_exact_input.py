"""Numbers and text taken exactly, and every malformed body answered with a problem that
names the field and the rule, storing nothing (issue 12).

Each test here failed on the code before: JSON numbers went through a float, "1_0_0"
was a hundred, "LOT-1\\n" was a second lot, 850511 was not 8505.11, duplicate keys kept
the last value, a NUL or a lone surrogate reached the stores, and a wrong content type
was a 422 about the body's shape."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lodestone.bootstrap.settings import Settings
from lodestone.gateway import create_app
from tests.api.conftest import ADMIN_KEY, PROBLEM, World, bearer, export, hold, ore


def _raw(world: World, path: str, content: bytes, who: str = "mine", **headers: str) -> Any:
    """POST bytes as they are; the answer must be a problem and nothing may be stored."""
    before = world.recorded()
    response = world.client.post(
        path,
        content=content,
        headers={"content-type": "application/json", **world.headers(who), **headers},
    )
    assert response.headers["content-type"] == PROBLEM, response.text
    assert world.recorded() == before, "a refused request stored something"
    return response


def _rule(response: Any) -> tuple[int, str, str]:
    body = response.json()
    return response.status_code, body.get("field", ""), body["rule"]


def test_a_json_number_with_more_places_than_milligrams_is_refused_like_the_same_string(
    world: World,
) -> None:
    content = (
        b'{"facility": "MINE-1", "quota": "MQ-1", "lot_code": "ORE-1", '
        b'"mass_kg": 100.000000000000000000000000001, "composition": {"Nd": "0.03"}}'
    )

    response = _raw(world, "/v1/events/ore-extracted", content)

    assert _rule(response) == (422, "mass_kg", "mass-precision")


def test_a_json_number_is_stored_with_its_exact_digits(world: World) -> None:
    content = (
        b'{"facility": "MINE-1", "quota": "MQ-1", "lot_code": "ORE-1", '
        b'"mass_kg": 1250.000001, "composition": {"Nd": 0.030, "Pr": 0.010}}'
    )
    response = world.client.post(
        "/v1/events/ore-extracted",
        content=content,
        headers={"content-type": "application/json", **world.headers("mine")},
    )
    assert response.status_code == 201, response.text

    state = world.get("/v1/batches/MINECO/ORE-1").json()

    assert state["initial_kg"] == "1250.000001"
    assert state["composition"] == {"Nd": "0.03", "Pr": "0.01"}


@pytest.mark.parametrize("spelling", ["1_0_0", " 100", "100 ", "1e", "NaN", "Infinity", "0x10"])
def test_a_mass_spelt_other_than_a_plain_decimal_is_refused(world: World, spelling: str) -> None:
    response = world.refused("/v1/events/ore-extracted", ore(kg=spelling))

    assert _rule(response)[:2] == (422, "mass_kg")


def test_nan_as_a_json_constant_is_refused(world: World) -> None:
    content = b'{"facility": "MINE-1", "quota": "MQ-1", "lot_code": "O", "mass_kg": NaN}'

    assert _rule(_raw(world, "/v1/events/ore-extracted", content)) == (422, "", "decimal")


def test_a_lot_code_with_a_trailing_newline_is_refused(world: World) -> None:
    response = world.refused("/v1/events/ore-extracted", ore(lot="ORE-1\n"))

    assert _rule(response) == (422, "lot_code", "lot-code")


def test_an_actor_code_with_a_trailing_newline_is_refused(world: World) -> None:
    body = {"code": "NEWCO\n", "name": "New Co", "country": "CN", "roles": ["trader"]}

    response = world.refused("/v1/actors", body, "admin")

    assert _rule(response)[1:] == ("code", "code")


@pytest.mark.parametrize("declared", ["253090", "2530.90.00", "2530 90 00 00", "2530900000"])
def test_an_export_under_a_subheading_of_the_licensed_heading_is_recorded_as_declared(
    world: World, declared: str
) -> None:
    world.extract("ORE-1", "10000")

    world.report("shipment-exported", export("ORE-1", customs_code=declared))

    history = world.get("/v1/batches/MINECO/ORE-1/history", "auditor").json()["events"]
    assert history[-1]["facts"]["customs_code"] == declared


@pytest.mark.parametrize("declared", ["2530.9X", "2531.90", "85", "2530.90\n"])
def test_an_export_under_another_or_malformed_heading_is_refused(
    world: World, declared: str
) -> None:
    world.extract("ORE-1", "10000")

    response = world.refused("/v1/events/shipment-exported", export("ORE-1", customs_code=declared))

    assert _rule(response)[:2] == (422, "customs_code")


def test_a_key_given_twice_is_refused_naming_it(world: World) -> None:
    content = (
        b'{"facility": "MINE-1", "quota": "MQ-1", "lot_code": "ORE-1", "mass_kg": "10", '
        b'"mass_kg": "20", "composition": {"Nd": "0.03"}}'
    )

    response = _raw(world, "/v1/events/ore-extracted", content)

    assert _rule(response) == (422, "mass_kg", "duplicate-key")


@pytest.mark.parametrize(("escape", "what"), [(rb"\u0000", "NUL"), (rb"\ud800", "lone surrogate")])
def test_text_the_stores_cannot_keep_is_refused_naming_the_field(
    world: World, escape: bytes, what: str
) -> None:
    world.extract("ORE-1", "10000")
    content = b'{"batch": "ORE-1", "reason": "assay ' + escape + b' disputed"}'

    response = _raw(world, "/v1/events/batch-quarantined", content)

    assert _rule(response) == (422, "reason", "text"), what


def test_a_lone_surrogate_in_a_composition_key_is_refused(world: World) -> None:
    content = (
        b'{"facility": "MINE-1", "quota": "MQ-1", "lot_code": "ORE-1", "mass_kg": "10", '
        b'"composition": {"\\ud800": "0.03"}}'
    )

    assert _rule(_raw(world, "/v1/events/ore-extracted", content))[2] == "text"


def test_a_body_that_is_not_utf8_is_refused(world: World) -> None:
    content = '{"batch": "ORE-1", "reason": "d\u00e9faut"}'.encode("latin-1")

    assert _rule(_raw(world, "/v1/events/batch-quarantined", content)) == (422, "", "encoding")


def test_a_body_nested_too_deeply_is_refused(world: World) -> None:
    content = b'{"batch": "ORE-1", "reason": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"

    assert _rule(_raw(world, "/v1/events/batch-quarantined", content)) == (
        422,
        "",
        "nesting-depth",
    )


def test_an_integer_too_long_to_read_is_refused(world: World) -> None:
    content = (
        b'{"facility": "MINE-1", "quota": "MQ-1", "lot_code": "O", "mass_kg": '
        + (b"9" * 5_000)
        + b"}"
    )

    assert _rule(_raw(world, "/v1/events/ore-extracted", content)) == (
        422,
        "",
        "number-too-long",
    )


@pytest.mark.parametrize("media", ["text/plain", "application/x-www-form-urlencoded"])
def test_a_body_sent_as_another_media_type_is_415(world: World, media: str) -> None:
    response = _raw(
        world, "/v1/events/batch-quarantined", b'{"batch": "ORE-1"}', **{"content-type": media}
    )

    assert _rule(response) == (415, "", "media-type")


def test_a_checkpoint_sequence_beyond_64_bits_is_422_not_500(world: World) -> None:
    response = world.get(f"/v1/audit/checkpoints?after={2**63}", "auditor")

    assert (response.status_code, response.json()["field"]) == (422, "after")


def test_a_body_over_the_configured_limit_is_413_before_it_is_read(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", admin_key=ADMIN_KEY, max_body_bytes=2048)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        body = hold("ORE-1", reason="x" * 4096)
        response = client.post("/v1/events/batch-quarantined", json=body, headers=bearer(ADMIN_KEY))
        recorded = client.get("/health", headers=bearer(ADMIN_KEY)).json()["recorded_position"]

    assert (response.status_code, response.json()["rule"]) == (413, "too-large")
    assert recorded == 0


def test_every_route_that_takes_a_json_body_reads_it_exactly(tmp_path: Path) -> None:
    from fastapi.routing import APIRoute

    from lodestone.gateway.body import ExactJSONRoute

    app = create_app(Settings(data_dir=tmp_path / "data", admin_key=ADMIN_KEY))

    def routes(items: list[Any]) -> list[Any]:
        # FastAPI keeps an included router whole (its routes keep their class).
        found = []
        for item in items:
            inner = getattr(item, "original_router", None)
            found += routes(inner.routes) if inner is not None else [item]
        return found

    with_body = [
        r for r in routes(app.routes) if isinstance(r, APIRoute) and r.body_field is not None
    ]

    assert with_body  # the writes
    assert [r.path for r in with_body if not isinstance(r, ExactJSONRoute)] == []


def test_a_corrected_hold_reason_longer_than_a_hold_allows_is_refused(world: World) -> None:
    world.extract("ORE-1", "10000")
    world.report("batch-quarantined", hold("ORE-1"))
    body = {
        "batch": "MINECO/ORE-1",
        "version": 2,
        "reason": "incorrect-data",
        "facts": {"reason": "x" * 200_000},
    }

    response = world.refused("/v1/events/corrections", body)

    assert _rule(response) == (422, "facts.reason", "string-too-long")


def test_an_object_as_a_corrected_reason_is_refused(world: World) -> None:
    world.extract("ORE-1", "10000")
    world.report("batch-quarantined", hold("ORE-1"))
    body = {
        "batch": "MINECO/ORE-1",
        "version": 2,
        "reason": "incorrect-data",
        "facts": {"reason": {"why": "assay"}},
    }

    assert _rule(world.refused("/v1/events/corrections", body)) == (
        422,
        "facts.reason",
        "string-type",
    )


def test_an_actor_with_a_hundred_thousand_roles_is_refused(world: World) -> None:
    body = {"code": "NEWCO", "name": "New Co", "country": "CN", "roles": ["trader"] * 100_000}

    assert _rule(world.refused("/v1/actors", body, "admin")) == (422, "roles", "too-long")


def test_a_composition_with_more_entries_than_elements_is_refused(world: World) -> None:
    composition = {chr(65 + n // 26) + chr(97 + n % 26): "0.000001" for n in range(500)}

    response = world.refused("/v1/events/ore-extracted", ore(composition=composition))

    assert _rule(response)[:2] == (422, "composition")


def test_health_tells_an_anonymous_caller_only_that_it_is_up(world: World) -> None:
    world.extract("ORE-1", "10000")

    anonymous = world.client.get("/health")
    known = world.client.get("/health", headers=world.headers("analyst"))

    assert anonymous.json() == {"status": "ok"}
    assert known.json()["recorded_position"] > 0


def test_health_with_a_wrong_key_is_401(world: World) -> None:
    response = world.client.get("/health", headers=bearer("not-a-key"))

    assert (response.status_code, response.json()["rule"]) == (401, "authentication")


def test_the_docs_and_openapi_document_are_not_served_when_not_public(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", admin_key=ADMIN_KEY, public_docs=False)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        answers = [client.get(path).status_code for path in ("/docs", "/redoc", "/openapi.json")]

    assert answers == [404, 404, 404]


def test_wrong_keys_past_the_limit_are_answered_429_even_for_the_right_key(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path / "data", admin_key=ADMIN_KEY, wrong_keys_per_minute=5)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        wrong = [client.get("/v1/me", headers=bearer(f"guess-{n}")).status_code for n in range(5)]
        blocked = client.get("/v1/me", headers=bearer(ADMIN_KEY))

    assert wrong == [401] * 5
    assert (blocked.status_code, blocked.json()["rule"]) == (429, "too-many-attempts")
    assert int(blocked.headers["retry-after"]) > 0
