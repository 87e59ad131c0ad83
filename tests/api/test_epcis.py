"""The EPCIS 2.0 export of the demo's magnet lot: schema-valid with a real format checker,
stable event hashes, exact masses, the same redaction by role as the rest of the API."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from jsonschema import Draft7Validator, FormatChecker

from lodestone.bootstrap.settings import Settings
from lodestone.bootstrap.stores import build_ledger
from lodestone.demo.generator import load
from lodestone.epcis.hashing import event_hash
from lodestone.gateway import create_app
from tests.api.conftest import ADMIN_KEY, PROBLEM, _recreate, bearer
from tests.integration.postgres_fixture import with_database

#: The official schema, unchanged, with its origin and GS1's terms beside it
#: (tests/fixtures/epcis/README.md), so that a clone anywhere can check against it.
SCHEMA = Path(__file__).resolve().parents[1] / "fixtures" / "epcis" / "EPCIS-JSON-Schema.json"
LINEAGES = ["none", "upstream", "downstream"]
DEMO_DB = "api_epcis_demo"


def _validator() -> Draft7Validator:
    checker = Draft7Validator.FORMAT_CHECKER
    # Without a uri checker (jsonschema's format-nongpl extra) a bare word passes as a
    # URI and the schema lets non-CBV business steps through: fail instead.
    assert "uri" in checker.checkers, "no uri format checker: install jsonschema[format-nongpl]"
    assert not checker.conforms("transforming", "uri")
    assert not checker.conforms("yesterday", "date-time")
    return Draft7Validator(json.loads(SCHEMA.read_text()), format_checker=FormatChecker())


@pytest.fixture(scope="module")
def demo(
    store: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[tuple[TestClient, str, dict[str, dict[str, str]]]]:
    """The demo chain loaded once per store, and a key per role."""
    data_dir = tmp_path_factory.mktemp("epcis") / "data"
    url = None
    if store == "postgres":
        server = request.getfixturevalue("postgres_url")
        _recreate(server, DEMO_DB)
        url = with_database(server, DEMO_DB)
    settings = Settings(data_dir=data_dir, admin_key=ADMIN_KEY, postgres_url=url)
    ledger = build_ledger(settings)
    try:
        magnet = load(ledger, seed=7, size=120).magnet
    finally:
        ledger.close()
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        keys = {}
        company = {
            "code": "OUTSIDER",
            "name": "Outsider Trading",
            "country": "DE",
            "roles": ["trader"],
        }
        made = client.post("/v1/actors", json=company, headers=bearer(ADMIN_KEY))
        assert made.status_code == 201, made.text
        for role, actor in (
            ("regulator", None),
            ("analyst", None),
            ("auditor", None),
            ("operator", "OUTSIDER"),
        ):
            body = {"role": role, "actor": actor, "label": role}
            answer = client.post("/v1/credentials", json=body, headers=bearer(ADMIN_KEY))
            assert answer.status_code == 201, answer.text
            keys[role] = bearer(answer.json()["key"])
        yield client, magnet, keys


def _export(demo: Any, role: str, lineage: str = "none") -> Any:
    client, magnet, keys = demo
    response = client.get(f"/v1/batches/{magnet}/epcis?lineage={lineage}", headers=keys[role])
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/ld+json")
    return response


def _events(response: Any) -> list[dict[str, Any]]:
    return list(response.json()["epcisBody"]["eventList"])


@pytest.mark.parametrize("lineage", LINEAGES)
@pytest.mark.parametrize("role", ["regulator", "analyst"])
def test_every_export_of_the_magnet_lot_is_schema_valid(demo: Any, role: str, lineage: str) -> None:
    document = _export(demo, role, lineage).json()

    errors = [f"{list(e.absolute_path)}: {e.message}" for e in _validator().iter_errors(document)]
    assert errors == []
    assert document["epcisBody"]["eventList"]


def test_lineage_exports_hold_more_events_than_the_lot_alone(demo: Any) -> None:
    alone = _events(_export(demo, "regulator"))
    upstream = _events(_export(demo, "regulator", "upstream"))

    assert len(upstream) > len(alone)
    assert {"ObjectEvent", "TransformationEvent"} <= {e["type"] for e in upstream}


@pytest.mark.parametrize("lineage", LINEAGES)
def test_event_ids_are_stable_across_two_exports(demo: Any, lineage: str) -> None:
    first = [e["eventID"] for e in _events(_export(demo, "regulator", lineage))]
    second = [e["eventID"] for e in _events(_export(demo, "regulator", lineage))]

    assert first == second
    assert len(set(first)) == len(first)


def test_each_event_id_is_the_cbv_hash_of_the_event(demo: Any) -> None:
    document = _export(demo, "regulator", "upstream").json()
    namespaces = {"re": "urn:lodestone:epcis:re:"}

    for event in document["epcisBody"]["eventList"]:
        assert event["eventID"] == event_hash(event, namespaces)
        assert re.fullmatch(r"ni:///sha-256;[0-9a-f]{64}\?ver=CBV2\.0", event["eventID"])


def test_masses_are_exported_exactly(demo: Any) -> None:
    client, magnet, keys = demo
    state = client.get(f"/v1/batches/{magnet}", headers=keys["regulator"]).json()
    document = json.loads(_export(demo, "regulator").content, parse_float=Decimal)
    actor, lot = magnet.split("/")
    own = f"urn:lodestone:lot:{actor}:{lot}"

    made = next(
        q
        for e in document["epcisBody"]["eventList"]
        for q in e.get("outputQuantityList", []) + e.get("quantityList", [])
        if q["epcClass"] == own and "quantity" in q
    )
    assert made["quantity"] == Decimal(state["initial_kg"])
    assert made["uom"] == "KGM"


def _commercial(document: dict[str, Any]) -> tuple[set[str], set[str]]:
    """The contracts and the parties (client names) a document names, and its prices."""
    names: set[str] = set()
    prices: set[str] = set()
    for event in document["epcisBody"]["eventList"]:
        names |= {t["bizTransaction"] for t in event.get("bizTransactionList", [])}
        names |= {s["source"] for s in event.get("sourceList", [])}
        names |= {d["destination"] for d in event.get("destinationList", [])}
        for key in ("re:licence", "re:shipment", "re:endUser"):
            if key in event:
                names.add(event[key])
        if "re:price" in event:
            prices.add(str(event["re:price"]))
    return names, prices


@pytest.mark.parametrize("lineage", LINEAGES)
def test_an_analyst_export_names_no_client_contract_or_price_the_regulator_sees(
    demo: Any, lineage: str
) -> None:
    regulator = _export(demo, "regulator", lineage).json()
    analyst = _export(demo, "analyst", lineage)
    names, prices = _commercial(regulator)
    assert prices or lineage == "none"  # the demo's sales upstream and downstream carry prices
    _, magnet, _ = demo
    named_by_caller = f"urn:lodestone:actor:{magnet.split('/')[0]}"

    assert names, "the regulator's export names no party: nothing was compared"
    text = analyst.text
    assert [n for n in names - {named_by_caller} if n in text] == []
    assert '"re:price"' not in text and '"bizTransactionList"' not in text
    assert _commercial(analyst.json()) == (set(), set())


@pytest.mark.parametrize("lineage", LINEAGES)
def test_an_unrelated_operator_gets_the_analysts_redacted_export(demo: Any, lineage: str) -> None:
    analyst = _events(_export(demo, "analyst", lineage))
    operator = _events(_export(demo, "operator", lineage))

    assert [e["eventID"] for e in operator] == [e["eventID"] for e in analyst]


def test_an_auditor_sees_what_the_regulator_sees(demo: Any) -> None:
    regulator = _events(_export(demo, "regulator", "downstream"))
    auditor = _events(_export(demo, "auditor", "downstream"))

    assert [e["eventID"] for e in auditor] == [e["eventID"] for e in regulator]


def test_an_unknown_lot_is_a_404_problem(demo: Any) -> None:
    client, _, keys = demo

    response = client.get("/v1/batches/NOBODY/NOLOT/epcis", headers=keys["analyst"])

    assert response.status_code == 404
    assert response.headers["content-type"].startswith(PROBLEM)


def test_an_export_needs_a_key(demo: Any) -> None:
    client, magnet, _ = demo

    assert client.get(f"/v1/batches/{magnet}/epcis").status_code == 401


def test_the_rare_earth_context_is_served_to_anyone(demo: Any) -> None:
    client, _, _ = demo

    response = client.get("/epcis/contexts/rare-earth.jsonld")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/ld+json")
    assert response.json()["@context"]["re"] == "urn:lodestone:epcis:re:"


def test_the_document_points_at_the_gs1_and_the_rare_earth_contexts(demo: Any) -> None:
    context = _export(demo, "analyst").json()["@context"]

    assert context[0] == "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
    assert {"re": "urn:lodestone:epcis:re:"} in context
    assert context[-1].endswith("/epcis/contexts/rare-earth.jsonld")


def test_an_analyst_sees_the_mines_of_the_magnet_lot(demo: Any) -> None:
    events = _events(_export(demo, "analyst", "upstream"))

    mined = [e for e in events if e.get("re:ledgerEvent") == "OreExtracted"]
    assert mined and all(e["readPoint"]["id"].startswith("urn:lodestone:facility:") for e in mined)
    assert all(e["quantityList"][0]["epcClass"].startswith("urn:lodestone:batch:") for e in mined)
