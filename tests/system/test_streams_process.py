"""``lodestone streams``: the live streams served by a process of their own, beside a
gateway (``lodestone serve``) on the same settings; real processes, a real database
(SQLite files, or PostgreSQL)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from lodestone.bootstrap.settings import Settings
from lodestone.bootstrap.stores import open_view
from lodestone.projections.registry import REGISTRY
from tests.api.conftest import ADMIN_KEY, World, register_world
from tests.api.test_stream_fanout import GENEALOGY, Reader, parse, shown, wait_for

pytestmark = pytest.mark.timeout(240)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(params=["sqlite", "postgres"])
def environment(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("LODESTONE_")},
        "LODESTONE_DATA_DIR": str(tmp_path / "data"),
        "LODESTONE_ADMIN_KEY": ADMIN_KEY,
        "LODESTONE_STREAM_PING": "0.5",
        "LODESTONE_STREAM_POLL_INTERVAL": "0.05",
    }
    if request.param == "postgres":
        make: Callable[[], str] = request.getfixturevalue("make_postgres_database")
        env["LODESTONE_POSTGRES_URL"] = make()
    return env


@pytest.fixture
def start(environment: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., str]]:
    """``start(command)``: ``lodestone <command>`` on a free port; its base URL once it
    answers."""
    children: list[subprocess.Popen[bytes]] = []

    def run(command: str) -> str:
        port = _free_port()
        log = open(tmp_path / f"{command}.log", "ab")  # noqa: SIM115 - closed with the process
        child = subprocess.Popen(
            [sys.executable, "-m", "lodestone.cli.main", command, "--port", str(port)],
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        children.append(child)
        base = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            assert child.poll() is None, (tmp_path / f"{command}.log").read_text()
            try:
                httpx.get(f"{base}{GENEALOGY}", timeout=2)
            except httpx.TransportError:
                return False
            return True

        wait_for(answers, timeout=120)
        return base

    yield run
    for child in children:
        child.terminate()
    for child in children:
        try:
            child.wait(timeout=20)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def test_changes_recorded_through_the_gateway_reach_a_subscriber_of_the_streams_process(
    start: Callable[..., str], environment: dict[str, str]
) -> None:
    gateway = httpx.Client(base_url=start("serve"), timeout=30)
    streams = httpx.Client(base_url=start("streams"), timeout=30)
    try:
        world = register_world(gateway)  # type: ignore[arg-type]
        settings = Settings(
            data_dir=Path(environment["LODESTONE_DATA_DIR"]),
            postgres_url=environment.get("LODESTONE_POSTGRES_URL"),
        )
        log = open_view(settings, REGISTRY["genealogy"])

        def last_change() -> int:
            """The last change id once the genealogy holds every recorded event."""

            def caught_up() -> bool:
                health = gateway.get("/health", headers=world.headers("admin")).json()
                return bool(health["genealogy_position"] >= health["recorded_position"])

            wait_for(caught_up)
            return int(log.changes(0, 0).last)

        world.extract("ORE-1", "10000")
        before = last_change()
        subscriber = Reader(World(streams, world.keys), "regulator", last=0)  # type: ignore[arg-type]
        world.extract("ORE-2", "500")
        end = last_change()

        got = subscriber.read_to(end)
        alone = gateway.get(f"{GENEALOGY}?after=0&until={end}", headers=world.headers("regulator"))
        assert shown(got) == shown(parse(alone.text))
        news = [e.data["row"]["initial_kg"] for e in got if e.id > before and e.event == "batches"]
        assert news == ["500"]  # recorded while subscribed
        log.close()
    finally:
        gateway.close()
        streams.close()
