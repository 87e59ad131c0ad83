"""A real gateway on a temporary data directory, driven through HTTP (httpx via
FastAPI's TestClient), and a small registered world with one key per role."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from psycopg import sql

from lodestone.bootstrap.settings import Settings
from lodestone.gateway import create_app
from lodestone.gateway.schemas.answers import BulkRecorded, Recorded
from tests.integration.postgres_fixture import with_database

ADMIN_KEY = "test-admin-key"
VALID_FROM = "2026-01-01T00:00:00Z"
VALID_UNTIL = "2027-12-31T00:00:00Z"
ORE = {"Nd": "0.030", "Pr": "0.010", "Dy": "0.002", "Tb": "0.0005", "Fe": "0.20"}
#: Beneficiated ore: what 10,000 kg of ORE yields as 800 kg of concentrate (96 % recovery).
CONCENTRATE = {"Nd": "0.36", "Pr": "0.12", "Dy": "0.024", "Tb": "0.006", "Fe": "0.05"}
PROBLEM = "application/problem+json"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(
    scope="session", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def store(request: pytest.FixtureRequest) -> str:
    """Every API test runs on both stores: SQLite files, or a PostgreSQL database
    holding the event store and the read models."""
    return str(request.param)


def _settings(
    store: str, data_dir: Path, request: pytest.FixtureRequest, database: str | None = None
) -> Settings:
    if store == "sqlite":
        return Settings(data_dir=data_dir, admin_key=ADMIN_KEY)
    server = request.getfixturevalue("postgres_url")
    url = (
        with_database(server, database)
        if database
        else request.getfixturevalue("make_postgres_database")()
    )
    return Settings(data_dir=data_dir, admin_key=ADMIN_KEY, postgres_url=url)


@pytest.fixture
def client(store: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[TestClient]:
    app = create_app(_settings(store, tmp_path / "data", request))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@dataclass
class World:
    """Registered actors, facilities, licences and a key per role."""

    client: TestClient
    keys: dict[str, str]

    def headers(self, who: str) -> dict[str, str]:
        return bearer(self.keys[who])

    def post(self, path: str, body: dict[str, Any], who: str = "mine", **headers: str) -> Any:
        response = self.client.post(path, json=body, headers={**self.headers(who), **headers})
        if response.status_code == 201 and path.startswith("/v1/") and "/audit/" not in path:
            # Every write answer of the suite is what the OpenAPI document says it is.
            documented = BulkRecorded if path.endswith("/bulk") else Recorded
            documented.model_validate(response.json())
        return response

    def get(self, path: str, who: str = "mine") -> Any:
        return self.client.get(path, headers=self.headers(who))

    def event(self, kind: str, body: dict[str, Any], who: str = "mine", **headers: str) -> Any:
        return self.post(f"/v1/events/{kind}", body, who, **headers)

    def recorded(self) -> int:
        return int(
            self.client.get("/health", headers=bearer(ADMIN_KEY)).json()["recorded_position"]
        )

    def extract(self, lot: str = "ORE-1", kg: str = "10000", **extra: Any) -> Any:
        body = {
            "facility": "MINE-1",
            "quota": "MQ-1",
            "lot_code": lot,
            "mass_kg": kg,
            "composition": ORE,
        }
        response = self.event("ore-extracted", body | extra)
        assert response.status_code == 201, response.text
        return response.json()

    def report(self, kind: str, body: dict[str, Any], who: str = "mine") -> Any:
        """Report an event that must be recorded; its answer."""
        return _ok(self.event(kind, body, who))

    def register(self, path: str, body: dict[str, Any], who: str = "admin") -> Any:
        """Register an actor, facility, licence or credential that must be accepted."""
        return _ok(self.post(path, body, who))

    def refused(self, path: str, body: dict[str, Any], who: str = "mine", **headers: str) -> Any:
        """POST a request that must be refused: the answer is problem+json and nothing
        new is stored."""
        before = self.recorded()
        response = self.post(path, body, who, **headers)
        assert response.headers["content-type"] == PROBLEM, response.text
        assert response.status_code >= 400, response.text
        assert self.recorded() == before, "a refused request stored something"
        return response


def _ok(response: Any) -> Any:
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
def world(client: TestClient) -> World:
    return register_world(client)


def register_world(client: TestClient) -> World:
    """Registers the actors, facilities, licences and keys of ``world`` through ``client``."""
    admin = bearer(ADMIN_KEY)

    def post(path: str, body: dict[str, Any]) -> Any:
        return _ok(client.post(path, json=body, headers=admin))

    for code, name, country, roles in [
        ("MINECO", "Bayan Mining Co", "CN", ["miner", "separator"]),
        ("MAGCO", "Ningbo Magnets", "CN", ["magnet_maker", "exporter"]),
        ("OTHER", "Other Refining", "CN", ["separator"]),
        ("AUTOCO", "Auto Motors GmbH", "DE", ["end_client"]),
    ]:
        post("/v1/actors", {"code": code, "name": name, "country": country, "roles": roles})
    for code, kind, owner, country in [
        ("MINE-1", "mine", "MINECO", "CN"),
        ("SEP-1", "separation_plant", "MINECO", "CN"),
        ("MAG-1", "magnet_plant", "MAGCO", "CN"),
        ("OTH-1", "separation_plant", "OTHER", "CN"),
        ("AUTO-1", "magnet_plant", "AUTOCO", "DE"),
    ]:
        post(
            "/v1/facilities",
            {"code": code, "name": code, "kind": kind, "owner": owner, "country": country},
        )
    quota = {
        "kind": "mining_quota",
        "holder": "MINECO",
        "max_kg": "100000",
        "valid_from": VALID_FROM,
        "valid_until": VALID_UNTIL,
    }
    post("/v1/licences", {"number": "MQ-1", **quota})
    post("/v1/licences", {"number": "SQ-1", **quota, "kind": "separation_quota"})
    post(
        "/v1/licences",
        {
            "number": "EX-1",
            "kind": "export_licence",
            "holder": "MINECO",
            "max_kg": "50000",
            "valid_from": VALID_FROM,
            "valid_until": VALID_UNTIL,
            "items": [
                {"material": "ore", "customs_code": "2530.90"},
                {"material": "oxide", "customs_code": "2846"},
            ],
            "consignee": "AUTOCO",
            "end_user": "Auto Motors GmbH",
            "end_use": "EV traction motors",
            "destination_country": "DE",
            "contract": "C-2026-01",
        },
    )
    keys = {"admin": ADMIN_KEY}
    for who, role, actor in [
        ("mine", "operator", "MINECO"),
        ("magnets", "operator", "MAGCO"),
        ("other", "operator", "OTHER"),
        ("auto", "operator", "AUTOCO"),
        ("auditor", "auditor", None),
        ("analyst", "analyst", None),
        ("regulator", "regulator", None),
    ]:
        keys[who] = post("/v1/credentials", {"role": role, "actor": actor, "label": who})["key"]
    return World(client, keys)


TEMPLATE_DB = "api_world_template"
FRESH_DB = "api_world_fresh"


def _recreate(server: str, name: str, template: str | None = None) -> None:
    """(Re)make database ``name``, empty or as a copy of ``template``."""
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            create += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        conn.execute(create)


@pytest.fixture(scope="session")
def world_template(
    store: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> tuple[Path, dict[str, str]]:
    """``world``'s data (a data directory, or a template database), registered once per
    session and store, and its keys."""
    data_dir = tmp_path_factory.mktemp("world-template") / "data"
    if store == "postgres":
        _recreate(request.getfixturevalue("postgres_url"), TEMPLATE_DB)
    app = create_app(_settings(store, data_dir, request, TEMPLATE_DB))
    with TestClient(app, raise_server_exceptions=False) as template_client:
        keys = register_world(template_client).keys
    return data_dir, keys


@pytest.fixture(scope="session")
def fresh_app(
    store: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> tuple[FastAPI, Path]:
    """One gateway app for every ``fresh_world`` of a store, and the data it serves.

    A new app pays for FastAPI building its routes' dependants on their first requests
    (0.1-0.5 s); reusing one app keeps that to once a session. Each test still runs the
    app's lifespan, so it gets a runtime of its own on its own copy of the data."""
    data_dir = tmp_path_factory.mktemp("fresh-world") / "data"
    return create_app(_settings(store, data_dir, request, FRESH_DB)), data_dir


@pytest.fixture
def fresh_world(
    store: str,
    world_template: tuple[Path, dict[str, str]],
    fresh_app: tuple[FastAPI, Path],
    request: pytest.FixtureRequest,
) -> Iterator[World]:
    """The same registered world as ``world`` for this test alone: the template's data
    directory copied into place (SQLite), or the template database cloned (PostgreSQL),
    then the shared app started on it."""
    template_dir, keys = world_template
    app, data_dir = fresh_app
    shutil.rmtree(data_dir, ignore_errors=True)
    if store == "sqlite":
        shutil.copytree(template_dir, data_dir)
    else:
        _recreate(request.getfixturevalue("postgres_url"), FRESH_DB, template=TEMPLATE_DB)
    with TestClient(app, raise_server_exceptions=False) as fresh_client:
        yield World(fresh_client, dict(keys))


# --- request bodies of a small realistic chain (all defaults are MINECO's) -------------------


def ore(lot: str = "ORE-1", kg: str = "10000", **extra: Any) -> dict[str, Any]:
    """Rock ore from MINE-1 under mining quota MQ-1."""
    body = {"facility": "MINE-1", "quota": "MQ-1", "lot_code": lot, "mass_kg": kg}
    return body | {"composition": ORE} | extra


def beneficiation(
    ore_lot: str = "ORE-1",
    take: str = "10000",
    lot: str = "CON-1",
    kg: str = "800",
    reference: str = "WO-1",
    **extra: Any,
) -> dict[str, Any]:
    """Ore -> concentrate at MINE-1."""
    body = {
        "facility": "MINE-1",
        "process": "beneficiation",
        "reference": reference,
        "inputs": [{"batch": ore_lot, "mass_kg": take}],
        "outputs": [
            {"lot_code": lot, "material": "concentrate", "mass_kg": kg, "composition": CONCENTRATE}
        ],
    }
    return body | extra


def sale(batch: str = "ORE-1", buyer: str = "MAGCO", **extra: Any) -> dict[str, Any]:
    body = {"batch": batch, "buyer": buyer, "contract": "C-2026-077"}
    return body | extra


def export(batch: str = "ORE-1", **extra: Any) -> dict[str, Any]:
    """A shipment under EX-1 as licensed: ore to Auto Motors GmbH in Germany."""
    body = {
        "batch": batch,
        "shipment": "BL-2026-0001",
        "licence": "EX-1",
        "consignee": "AUTOCO",
        "destination_country": "DE",
        "end_user": "Auto Motors GmbH",
        "customs_code": "2530.90",
    }
    return body | extra


def receipt(batch: str = "MINECO/ORE-1", **extra: Any) -> dict[str, Any]:
    return {"batch": batch, "facility": "AUTO-1"} | extra


def hold(batch: str = "ORE-1", reason: str = "assay disputed", **extra: Any) -> dict[str, Any]:
    """The body of a quarantine or a release."""
    return {"batch": batch, "reason": reason} | extra


def concentrate_at_separation_plant(world: World) -> None:
    """MINECO mines ORE-1 at MINE-1, beneficiates it there into 800 kg of CON-1 and
    moves that to its separation plant SEP-1."""
    world.extract("ORE-1", "10000")
    world.report("batch-transformed", beneficiation())
    world.report("batch-moved", {"batch": "CON-1", "to_facility": "SEP-1"})


def separation(**extra: Any) -> dict[str, Any]:
    """MINECO separates CON-1 at SEP-1 into NdPr, Dy and Tb oxides under quota SQ-1."""
    body = {
        "facility": "SEP-1",
        "process": "separation",
        "reference": "SX-2026-14",
        "quota": "SQ-1",
        "inputs": [{"batch": "CON-1", "mass_kg": "800"}],
        "outputs": [
            {
                "lot_code": "NDPR-OX",
                "material": "oxide",
                "mass_kg": "440",
                "composition": {"Nd": "0.6375", "Pr": "0.2125"},
            },
            {
                "lot_code": "DY-OX",
                "material": "oxide",
                "mass_kg": "22",
                "composition": {"Dy": "0.86"},
            },
            {
                "lot_code": "TB-OX",
                "material": "oxide",
                "mass_kg": "5.5",
                "composition": {"Tb": "0.85"},
            },
        ],
    }
    return body | extra
