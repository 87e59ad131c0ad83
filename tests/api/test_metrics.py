"""The gateway's /metrics: Prometheus's text format, request latency by route template
(never by a request's own values), events by kind, who may read it, the embedded
projectors' lag, stream subscribers; and no company name anywhere in it.

The instruments are the process's (the client library's default registry), shared by
every app a test session builds: each test compares two scrapes, never absolute counts.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from lodestone.gateway import create_app
from tests.api.conftest import ADMIN_KEY, PROBLEM, World, _settings, bearer, register_world
from tests.api.test_streams import Serve, chain, serve  # noqa: F401  (the fixture)

LATENCY = "lodestone_http_request_duration_seconds"
Configured = Callable[..., TestClient]


def scrape(client: TestClient | httpx.Client, key: str = ADMIN_KEY) -> str:
    response = client.get("/metrics", headers=bearer(key))
    assert response.status_code == 200, response.text
    return response.text


def value(text: str, name: str, **labels: str) -> float:
    """The sum of the samples called ``name`` whose labels include ``labels``."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                total += sample.value
    return total


def _templates(routes: Iterable[Any]) -> set[str]:
    """The path templates of an app's routes (FastAPI keeps included routers nested)."""
    found: set[str] = set()
    for route in routes:
        if isinstance(getattr(route, "path", None), str):
            found.add(route.path)
        nested = getattr(route, "original_router", None)
        if nested is not None:
            found |= _templates(nested.routes)
    return found


def test_metrics_answer_in_the_prometheus_text_format(world: World) -> None:
    response = world.client.get("/metrics", headers=world.headers("admin"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert {
        LATENCY,
        "lodestone_events_recorded",
        "lodestone_group_commit_commands",
        "lodestone_stream_subscribers",
        "lodestone_store_position",
        "lodestone_projector_lag_events",
    } <= names


def test_a_request_moves_the_histogram_of_its_route_template(world: World) -> None:
    world.extract("ORE-1")
    route = {"route": "/v1/batches/{actor}/{lot}", "method": "GET", "status": "200"}
    before = value(scrape(world.client), f"{LATENCY}_count", **route)
    assert world.get("/v1/batches/MINECO/ORE-1").status_code == 200
    after = scrape(world.client)
    assert value(after, f"{LATENCY}_count", **route) == before + 1
    assert value(after, f"{LATENCY}_bucket", **route, le="+Inf") == before + 1


def test_labels_never_hold_a_value_from_the_request(world: World) -> None:
    world.extract("LOT-SECRETQX")
    world.get("/v1/batches/MINECO/LOT-SECRETQX")
    world.get("/v1/batches/MINECO/LOT-SECRETQX/upstream")
    world.get("/v1/batches?id=6f1f2a52-abcd-4000-8000-00000000beef")
    world.get("/v1/no-such-place/LOT-SECRETQX")
    world.client.request("BREW", "/v1/batches/MINECO/LOT-SECRETQX")
    text = scrape(world.client)
    # Letters never occur in a sample's value: anywhere in the text is in a label.
    for carried in ("SECRETQX", "beef", "no-such-place", "BREW"):
        assert carried not in text, carried
    templates = _templates(world.client.app.routes)  # type: ignore[attr-defined]
    routes = {
        sample.labels["route"]
        for family in text_string_to_metric_families(text)
        if family.name == LATENCY
        for sample in family.samples
    }
    assert routes <= templates | {"unmatched"}, routes - templates


def test_metrics_name_no_company_and_no_contract(world: World) -> None:
    chain(world)
    text = scrape(world.client)
    # Every name, code and contract the world registered or the chain reported.
    for secret in (
        "Bayan",
        "Ningbo",
        "Auto Motors",
        "MINECO",
        "MAGCO",
        "AUTOCO",
        "MINE-1",
        "C-2026-01",
        "CON-1",
        "ORE-2",
        "EX-1",
    ):
        assert secret not in text, secret
    assert not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-", text), "an id in the metrics"


def test_recorded_events_are_counted_by_kind_and_a_replay_is_not(world: World) -> None:
    before = value(scrape(world.client), "lodestone_events_recorded_total", kind="OreExtracted")
    body = {
        "facility": "MINE-1",
        "quota": "MQ-1",
        "lot_code": "ORE-9",
        "mass_kg": "10",
        "composition": {"Nd": "0.03"},
    }
    first = world.event("ore-extracted", body, **{"Idempotency-Key": "k-9"})
    again = world.event("ore-extracted", body, **{"Idempotency-Key": "k-9"})
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    after = value(scrape(world.client), "lodestone_events_recorded_total", kind="OreExtracted")
    assert after == before + 1


def test_each_commit_of_the_write_path_is_observed_with_the_commands_it_saved(
    world: World,
) -> None:
    name = "lodestone_group_commit_commands"
    text = scrape(world.client)
    commits, commands = value(text, f"{name}_count"), value(text, f"{name}_sum")

    world.extract("ORE-7")

    text = scrape(world.client)
    assert value(text, f"{name}_count") == commits + 1
    assert value(text, f"{name}_sum") == commands + 1


def test_an_operator_key_is_refused_the_metrics(world: World) -> None:
    response = world.get("/metrics", who="mine")
    assert response.status_code == 403
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["rule"] == "role"


def test_metrics_without_a_key_are_refused(world: World) -> None:
    response = world.client.get("/metrics")
    assert response.status_code == 401
    assert response.json()["rule"] == "authentication"


@pytest.fixture
def configured(store: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Configured]:
    """``configured(**settings)``: a client of a gateway with those settings."""
    opened: list[TestClient] = []

    def make(**overrides: object) -> TestClient:
        base = _settings(store, tmp_path / f"data{len(opened)}", request)
        client = TestClient(create_app(base.model_copy(update=overrides)))
        opened.append(client)
        return client.__enter__()

    yield make
    for client in opened:
        client.__exit__(None, None, None)


def test_the_metrics_token_reads_the_metrics_and_nothing_else(configured: Configured) -> None:
    client = configured(metrics_token=SecretStr("scrape-token-1"))
    assert client.get("/metrics", headers=bearer("scrape-token-1")).status_code == 200
    assert client.get("/metrics", headers=bearer("scrape-token-2")).status_code == 401
    refused = client.get("/v1/batches/MINECO/ORE-1", headers=bearer("scrape-token-1"))
    assert refused.status_code == 401


def test_public_metrics_are_served_without_a_key(configured: Configured) -> None:
    client = configured(metrics_public=True)
    response = client.get("/metrics")
    assert response.status_code == 200
    assert LATENCY in response.text


def test_an_embedded_projector_shows_its_lag_until_it_catches_up(configured: Configured) -> None:
    # The projector threads poll once at start-up, then not for an hour: what is recorded
    # after that waits for a read to catch the read model up.
    client = configured(projector_interval=3600.0)
    world = register_world(client)
    genealogy = {"projection": "genealogy", "source": "ledger"}
    behind = scrape(client)
    assert value(behind, "lodestone_projector_lag_events", **genealogy) > 0
    store = value(behind, "lodestone_store_position")
    position = value(behind, "lodestone_projector_position", **genealogy)
    assert value(behind, "lodestone_projector_lag_events", **genealogy) == store - position
    world.extract("ORE-1")
    assert world.get("/v1/batches/MINECO/ORE-1/upstream").status_code == 200  # catches up
    caught_up = scrape(client)
    assert value(caught_up, "lodestone_projector_lag_events", **genealogy) == 0
    assert value(caught_up, "lodestone_projector_position", **genealogy) == value(
        caught_up, "lodestone_store_position"
    )


def test_a_stream_counts_as_a_subscriber_while_it_is_open(serve: Serve) -> None:  # noqa: F811
    world = serve()
    gauge = {"projection": "genealogy"}
    before = value(scrape(world.client), "lodestone_stream_subscribers", **gauge)
    opened = threading.Event()
    done = threading.Event()

    def subscribe() -> None:
        with world.client.stream(  # type: ignore[attr-defined]
            "GET", "/v1/streams/genealogy", headers=world.headers("auditor")
        ) as response:
            assert response.status_code == 200
            opened.set()
            done.wait(30)

    reader = threading.Thread(target=subscribe, daemon=True)
    reader.start()
    assert opened.wait(30)
    deadline = time.monotonic() + 10
    while value(scrape(world.client), "lodestone_stream_subscribers", **gauge) != before + 1:
        assert time.monotonic() < deadline, "the subscriber was not counted"
        time.sleep(0.05)
    done.set()
    reader.join(timeout=30)
    deadline = time.monotonic() + 30
    while value(scrape(world.client), "lodestone_stream_subscribers", **gauge) != before:
        assert time.monotonic() < deadline, "the subscriber was still counted after leaving"
        time.sleep(0.1)
