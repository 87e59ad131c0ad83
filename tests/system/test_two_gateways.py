"""Two gateway processes on one PostgreSQL database (how a deployment scales the
gateway): clients of both race on one mining quota; every write is stored once, no
draw is lost and every chain verifies."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from lodestone.audit.verify import verify
from lodestone.domain.values import reo_kg
from lodestone.infra.postgres.database import postgres_env
from lodestone.infra.postgres.stores import PostgresCheckpointStore, PostgresEventRows
from lodestone.ledger import Ledger

pytestmark = pytest.mark.postgres

ADMIN_KEY = "two-gateways-admin"
ORE = {"Nd": "0.030", "Pr": "0.010", "Fe": "0.20"}
#: What each extraction draws from the quota: its oxide content.
DRAW = reo_kg(Decimal("1000"), {k: Decimal(v) for k, v in ORE.items()})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def gateways(make_postgres_database: Any, tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    """(database URL, the two gateways' base URLs); the second runs no projectors (the
    first projects the read models for both)."""
    url = make_postgres_database()
    children, bases = [], []
    for n, projecting in enumerate((True, False)):
        port = free_port()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("LODESTONE_")},
            "LODESTONE_POSTGRES_URL": url,
            "LODESTONE_ADMIN_KEY": ADMIN_KEY,
            "LODESTONE_DATA_DIR": str(tmp_path / f"gateway-{n}"),
            "LODESTONE_EMBEDDED_PROJECTOR": "true" if projecting else "false",
        }
        log = open(tmp_path / f"gateway-{n}.log", "ab")  # noqa: SIM115 - closed with the process
        command = [sys.executable, "-m", "lodestone.cli.main", "serve", "--port", str(port)]
        children.append(subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT))
        bases.append(f"http://127.0.0.1:{port}")
        if n == 0:
            wait_healthy(bases[0], children[0])  # the first creates the tables
    try:
        wait_healthy(bases[1], children[1])
        yield url, bases
    finally:
        for child in children:
            child.terminate()
        for child in children:
            child.wait(timeout=30)


def wait_healthy(base: str, child: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert child.poll() is None, f"gateway {base} exited with {child.returncode}"
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"gateway {base} did not start in {timeout} s")


def register_mine(base: str) -> str:
    """MINECO, its mine and quota, and an operator key: the key."""
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(base_url=base, headers=admin, timeout=30) as c:
        for path, body in (
            (
                "/v1/actors",
                {"code": "MINECO", "name": "Mine Co", "country": "CN", "roles": ["miner"]},
            ),
            (
                "/v1/facilities",
                {"code": "PIT", "name": "Pit", "kind": "mine", "owner": "MINECO", "country": "CN"},
            ),
            (
                "/v1/licences",
                {
                    "number": "MQ",
                    "kind": "mining_quota",
                    "holder": "MINECO",
                    "max_kg": "100000000",
                    "valid_from": "2026-01-01T00:00:00Z",
                    "valid_until": "2030-12-31T00:00:00Z",
                },
            ),
        ):
            assert c.post(path, json=body).status_code == 201
        answer = c.post(
            "/v1/credentials", json={"role": "operator", "actor": "MINECO", "label": "mine"}
        )
        assert answer.status_code == 201, answer.text
        return str(answer.json()["key"])


def test_two_gateways_racing_on_one_quota_store_every_write_once_and_lose_no_draw(
    gateways: tuple[str, list[str]],
) -> None:
    url, bases = gateways
    key = register_mine(bases[0])
    clients, each = 4, 15
    statuses: list[int] = []
    lock = threading.Lock()

    def client(base: str, name: str) -> None:
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=base, headers=headers, timeout=60) as c:
            for i in range(each):
                body = {
                    "facility": "PIT",
                    "quota": "MQ",
                    "lot_code": f"{name}-{i}",
                    "mass_kg": "1000",
                    "composition": ORE,
                }
                status = c.post("/v1/events/ore-extracted", json=body).status_code
                with lock:
                    statuses.append(status)

    threads = [
        threading.Thread(target=client, args=(base, f"G{n}-C{c}"))
        for n, base in enumerate(bases)
        for c in range(clients)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert statuses == [201] * (2 * clients * each)
    ledger = Ledger(postgres_env(url))
    rows, checkpoints = PostgresEventRows(url), PostgresCheckpointStore(url)
    try:
        assert ledger.licence_by_number("MQ").drawn_kg == DRAW * 2 * clients * each
        report = verify(ledger.recorder, checkpoints, rows=rows)
        assert report.ok, report.first
    finally:
        rows.close()
        checkpoints.close()
        ledger.close()
