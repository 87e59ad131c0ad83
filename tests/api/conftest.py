"""A real gateway on a temporary data directory, driven through HTTP (httpx via
FastAPI's TestClient), and a small registered world with one key per role."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lodestone.gateway import create_app
from lodestone.infra.settings import Settings

ADMIN_KEY = "test-admin-key"
VALID_FROM = "2026-01-01T00:00:00Z"
VALID_UNTIL = "2027-12-31T00:00:00Z"
ORE = {"Nd": "0.030", "Pr": "0.010", "Dy": "0.002", "Tb": "0.0005", "Fe": "0.20"}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(Settings(data_dir=tmp_path / "data", admin_key=ADMIN_KEY))
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
        return self.client.post(path, json=body, headers={**self.headers(who), **headers})

    def get(self, path: str, who: str = "mine") -> Any:
        return self.client.get(path, headers=self.headers(who))

    def event(self, kind: str, body: dict[str, Any], who: str = "mine", **headers: str) -> Any:
        return self.post(f"/v1/events/{kind}", body, who, **headers)

    def recorded(self) -> int:
        return int(self.client.get("/health").json()["recorded_position"])

    def extract(self, lot: str = "ORE-1", kg: str = "10000", **extra: Any) -> Any:
        body = {"facility": "MINE-1", "quota": "MQ-1", "lot_code": lot, "mass_kg": kg, "composition": ORE}
        response = self.event("ore-extracted", body | extra)
        assert response.status_code == 201, response.text
        return response.json()


def _ok(response: Any) -> Any:
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
def world(client: TestClient) -> World:
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
        post("/v1/facilities", {"code": code, "name": code, "kind": kind, "owner": owner, "country": country})
    quota = {"kind": "mining_quota", "holder": "MINECO", "max_kg": "100000", "valid_from": VALID_FROM, "valid_until": VALID_UNTIL}
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
            "items": [{"material": "ore", "customs_code": "2530.90"}, {"material": "oxide", "customs_code": "2846"}],
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
