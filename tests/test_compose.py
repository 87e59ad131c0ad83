"""docker-compose.yml describes the full stack, and every command it runs exists in
the code (no Docker engine is needed to check that)."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.main import get_command

from lodestone.cli.main import app

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_runs_kafka_postgres_gateway_relay_and_projectors() -> None:
    services = COMPOSE["services"]

    assert {"kafka", "postgres", "gateway", "relay", "projector-1", "projector-2"} <= set(services)
    assert services["kafka"]["image"].startswith("apache/kafka:4.")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"


def test_every_service_has_a_health_check_or_waits_for_healthy_dependencies() -> None:
    for name, service in COMPOSE["services"].items():
        waits = all(
            d.get("condition") == "service_healthy"
            for d in (service.get("depends_on") or {}).values()
        )
        assert "healthcheck" in service or (service.get("depends_on") and waits), name


def test_stateful_services_keep_their_data_in_named_volumes() -> None:
    named = set(COMPOSE["volumes"])
    for name in ("kafka", "postgres"):
        volumes = COMPOSE["services"][name]["volumes"]
        assert any(v.split(":")[0] in named for v in volumes), name


def test_every_lodestone_command_in_compose_exists_in_the_cli() -> None:
    commands = set(get_command(app).commands)  # type: ignore[attr-defined]
    for name, service in COMPOSE["services"].items():
        command = service.get("command")
        if command and command[0] == "lodestone":
            assert command[1] in commands, f"{name}: lodestone {command[1]}"


def test_the_image_the_services_build_exists() -> None:
    dockerfile = ROOT / COMPOSE["x-lodestone"]["build"]["dockerfile"]

    assert dockerfile.is_file()
    assert "lodestone" in dockerfile.read_text()
