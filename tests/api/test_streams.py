"""Live subscriptions over a real server (uvicorn on a loopback port, httpx streaming):
every change once and in order, resumed with Last-Event-ID, a reset when the id is older
than what is kept, heartbeats, filters, the same redaction as the endpoints, each role;
a stalled subscriber holds back neither the projector nor other subscribers."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from lodestone.bootstrap.settings import Settings
from lodestone.gateway import create_app
from tests.api.conftest import (
    ADMIN_KEY,
    PROBLEM,
    TEMPLATE_DB,
    World,
    _recreate,
    beneficiation,
    export,
    receipt,
    sale,
)
from tests.integration.postgres_fixture import with_database

pytestmark = pytest.mark.timeout(120)


@dataclass
class Event:
    id: int | None = None
    event: str | None = None
    data: Any = None
    comments: list[str] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running(app: Any) -> Iterator[str]:
    """The gateway ``app`` served by uvicorn in a thread, on a free loopback port."""
    port = _free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="test-gateway", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the gateway did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@dataclass
class Served(World):
    """A world served by a running gateway, whose runtime a test may look into."""

    app: Any = None

    @property
    def runtime(self) -> Any:
        return self.app.state.runtime


Serve = Callable[..., Served]


#: The database each PostgreSQL test's gateway serves, cloned from the world's template.
STREAMS_DB = "api_streams_fresh"


@pytest.fixture
def serve(
    store: str,
    world_template: tuple[Path, dict[str, str]],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[Serve]:
    """``serve(**settings)``: a running gateway on a copy of ``world``'s registered data
    (the template's data directory, or its database cloned)."""
    template_dir, keys = world_template
    opened: list[Any] = []

    def start(**overrides: Any) -> Served:
        data_dir = tmp_path / "data"
        if store == "sqlite":
            shutil.copytree(template_dir, data_dir)
            base = Settings(data_dir=data_dir, admin_key=ADMIN_KEY)
        else:
            server = request.getfixturevalue("postgres_url")
            _recreate(server, STREAMS_DB, template=TEMPLATE_DB)
            url = with_database(server, STREAMS_DB)
            base = Settings(data_dir=data_dir, admin_key=ADMIN_KEY, postgres_url=url)
        settings = base.model_copy(update={"stream_poll_interval": 0.05, **overrides})
        app = create_app(settings)
        context = running(app)
        url = context.__enter__()
        opened.append(context)
        client = httpx.Client(base_url=url, timeout=30)
        opened.append(client)
        return Served(client, dict(keys), app)  # type: ignore[arg-type]

    yield start
    for thing in reversed(opened):
        if isinstance(thing, httpx.Client):
            thing.close()
        else:
            thing.__exit__(None, None, None)


def events(
    world: World,
    who: str,
    path: str = "/v1/streams/genealogy?after=0",
    *,
    last_event_id: int | None = None,
    count: int | None = None,
    quiet: float = 1.0,
    pings: bool = False,
) -> list[Event]:
    """The events of one subscription: until ``count`` events came, or (with neither
    ``count`` nor ``pings``) until the stream has gone past the last change the read
    model's log held when called (every stream sends at least the id of a page's last
    change: no clock decides when it is over), or none for ``quiet`` seconds on a world
    not served here; with ``pings``, until a heartbeat."""
    headers = world.headers(who)
    target = None
    runtime = getattr(world, "app", None) and world.runtime  # type: ignore[attr-defined]
    if count is None and not pings and runtime is not None:
        model = path.split("/v1/streams/", 1)[1].split("?", 1)[0]
        target = runtime.change_source(model).changes(0, 1).last or None  # 0: nothing yet
        if target is not None:
            quiet = 60.0  # only if the stream never gets there: the assertions then say so
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    found: list[Event] = []
    box: dict[str, Any] = {}

    def read() -> None:
        with world.client.stream("GET", path, headers=headers) as response:  # type: ignore[attr-defined]
            box["status"] = response.status_code
            box["last"] = time.monotonic()  # quiet is counted from the stream's opening
            assert response.status_code == 200, response.read()
            assert response.headers["content-type"].startswith("text/event-stream")
            current = Event()
            for line in response.iter_lines():
                if box.get("stop"):
                    return
                if line.startswith(":"):  # a heartbeat: not news
                    current.comments.append(line[1:].strip())
                    if pings:
                        found.append(current)
                        return
                elif line.startswith("id:"):
                    current.id = int(line[3:].strip())
                    if target is not None and current.id >= target:
                        box["through"] = True  # this event ends the read
                elif line.startswith("event:"):
                    current.event = line[6:].strip()
                elif line.startswith("data:"):
                    current.data = json.loads(line[5:].strip())
                elif line == "" and (current.id is not None or current.data is not None):
                    if current.data is not None:  # not an id-only event (no news)
                        found.append(current)
                        box["last"] = time.monotonic()
                    current = Event()
                    if count is not None and len(found) >= count:
                        return
                    if box.get("through"):
                        return

    thread = threading.Thread(target=read, daemon=True)
    box["last"] = time.monotonic()
    thread.start()
    while thread.is_alive():
        thread.join(0.1)
        if count is None and not pings and time.monotonic() - box["last"] > quiet:
            box["stop"] = True  # the next line (a heartbeat at the latest) ends it
            break
    thread.join(timeout=30)
    return [e for e in found if e.data is not None or pings]


def settled(world: World) -> None:
    """Wait until the read model holds every recorded event: a trace reads it caught up
    (the projector thread would get there a moment later by itself)."""
    assert world.get("/v1/batches/MINECO/ORE-1/upstream").status_code == 200


def chain(world: World) -> None:
    """Ore to concentrate, sold to MAGCO; an ore lot exported to AUTOCO and received."""
    world.extract("ORE-1", "10000")
    world.report("batch-transformed", beneficiation())
    world.report("custody-transferred", sale("CON-1"))
    world.extract("ORE-2", "5000")
    world.report("shipment-exported", export("ORE-2"))
    world.report("shipment-received", receipt("MINECO/ORE-2"), who="auto")
    settled(world)


def test_every_change_is_an_event_with_its_sequence_number_and_table(serve: Serve) -> None:
    world = serve(stream_ping=0.5)
    chain(world)

    found = events(world, "admin")

    assert [e.id for e in found] == list(range(1, len(found) + 1))
    assert {e.event for e in found} >= {"names", "batches", "edges", "trades"}
    batch = next(e for e in found if e.event == "batches")
    assert {"key", "row", "recorded_at"} <= set(batch.data)
    assert batch.data["row"]["id"] == batch.data["key"]


def test_a_reconnect_with_the_last_id_gets_every_missed_change_and_none_twice(
    serve: Serve,
) -> None:
    world = serve(stream_ping=0.5)
    world.extract("ORE-1", "10000")
    settled(world)
    first = events(world, "admin", count=5)
    world.report("batch-transformed", beneficiation())
    world.report("custody-transferred", sale("CON-1"))
    settled(world)

    missed = events(world, "admin", "/v1/streams/genealogy", last_event_id=first[-1].id)

    every = events(world, "admin")
    assert [e.id for e in first + missed] == [e.id for e in every]
    assert len(missed) > 3 and missed[0].id == first[-1].id + 1  # type: ignore[operator]


def test_an_id_older_than_the_kept_changes_is_told_to_re_read_the_model(serve: Serve) -> None:
    world = serve(change_retention=5, stream_ping=0.5)
    chain(world)

    found = events(world, "admin", "/v1/streams/genealogy", last_event_id=1, count=6)

    assert found[0].event == "reset"
    assert "re-read" in found[0].data["action"]
    assert [e.id for e in found[1:]] == list(range(found[0].id + 1, found[0].id + 6))  # type: ignore[operator]


def test_an_idle_stream_gets_heartbeats(serve: Serve) -> None:
    world = serve(stream_ping=0.2)

    found = events(world, "analyst", "/v1/streams/genealogy", pings=True)

    assert any("ping" in c for c in found[0].comments)


def test_a_stream_filtered_by_element_carries_only_rows_holding_it(serve: Serve) -> None:
    world = serve(stream_ping=0.5)
    chain(world)

    found = events(world, "regulator", "/v1/streams/genealogy?after=0&element=Dy")
    everything = events(world, "regulator")

    assert found and len(found) < len(everything)
    assert all("Dy" in e.data["row"]["element"] for e in found)


def test_filters_by_table_and_country_combine(serve: Serve) -> None:
    world = serve(stream_ping=0.5)
    chain(world)

    found = events(world, "regulator", "/v1/streams/genealogy?after=0&table=trades&country=DE")

    assert [(e.event, e.data["row"]["kind"]) for e in found] == [("trades", "export")]


def test_an_unknown_filter_is_refused_naming_the_field(serve: Serve) -> None:
    world = serve()

    response = world.get("/v1/streams/genealogy?colour=red", who="analyst")

    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert (response.json()["field"], response.json()["rule"]) == ("colour", "filter")


def test_an_unknown_read_model_is_not_found(serve: Serve) -> None:
    world = serve()

    response = world.get("/v1/streams/nothing", who="admin")

    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM


def test_a_stream_needs_a_key(serve: Serve) -> None:
    world = serve()

    response = world.client.get("/v1/streams/genealogy")

    assert response.status_code == 401


def _companies(world: World) -> dict[str, str]:
    """Code and name of every company of the world."""
    found = {}
    for code in ("MINECO", "MAGCO", "OTHER", "AUTOCO"):
        actor = world.get(f"/v1/actors/{code}", who="admin").json()
        found[code] = actor["name"]
    return found


def test_an_analysts_stream_holds_no_company_its_upstream_answer_hides(serve: Serve) -> None:
    world = serve(stream_ping=0.5)
    chain(world)
    shown = world.get("/v1/batches/MINECO/CON-1/upstream", who="analyst").text
    full = world.get("/v1/batches/MINECO/CON-1/upstream", who="admin").text
    hidden = [
        word
        for code, name in _companies(world).items()
        for word in (code, name)
        if word in full and word not in shown
    ]
    assert hidden  # the endpoint does hide companies from an analyst

    stream = json.dumps([e.data for e in events(world, "analyst")])

    assert '"material": "concentrate"' in stream  # the stream did carry the batch
    assert [word for word in hidden if word in stream] == []
    assert '"contract": {"redacted": true}' in stream


def test_an_analyst_sees_no_company_at_all_in_the_stream(serve: Serve) -> None:
    world = serve(stream_ping=0.5)
    chain(world)

    stream = json.dumps([e.data for e in events(world, "analyst")])

    for code, name in _companies(world).items():
        assert code not in stream and name not in stream


def test_an_operator_sees_its_own_batches_and_not_those_of_others(serve: Serve) -> None:
    world = serve(stream_ping=0.5)
    chain(world)

    found = events(world, "other", "/v1/streams/genealogy?after=0&table=batches")

    assert found
    assert all(e.data["row"]["batch"] is None for e in found)
    assert all(e.data["row"]["custodian"] == {"redacted": True} for e in found)
    mine = events(world, "mine", "/v1/streams/genealogy?after=0&table=batches")
    assert any(e.data["row"]["batch"] == "MINECO/ORE-1" for e in mine)


@pytest.mark.parametrize("who", ["mine", "auditor", "analyst", "regulator", "admin"])
def test_every_role_may_subscribe_to_the_genealogy(serve: Serve, who: str) -> None:
    world = serve(stream_ping=0.5)
    world.extract("ORE-1", "10000")
    settled(world)

    found = events(world, who, "/v1/streams/genealogy?after=0&table=batches")

    assert [e.data["row"]["material"] for e in found] == ["ore"]


def test_regulators_see_client_names_contracts_and_parties(serve: Serve) -> None:
    world = serve(stream_ping=0.5)
    chain(world)

    found = events(world, "regulator", "/v1/streams/genealogy?after=0&table=trades")

    sold = next(e for e in found if e.data["row"]["kind"] == "sale")
    assert sold.data["row"]["contract"] == "C-2026-077"
    assert sold.data["row"]["to"] != {"redacted": True}


def test_a_subscriber_that_stops_reading_holds_back_neither_the_projector_nor_others(
    serve: Serve,
) -> None:
    world = serve(stream_ping=0.5, stream_page=50)
    for lot in range(40):
        world.extract(f"ORE-{lot}", "100")
    url = httpx.URL(str(world.client.base_url))  # type: ignore[attr-defined]
    stalled = socket.create_connection((url.host, url.port))
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    token = world.keys["admin"]
    stalled.sendall(
        f"GET /v1/streams/genealogy?after=0 HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {token}\r\n\r\n".encode()
    )
    try:
        before = world.recorded()
        for lot in range(40, 60):
            world.extract(f"ORE-{lot}", "100")
        deadline = time.monotonic() + 20
        while (
            world.client.get("/health", headers=world.headers("admin")).json()["genealogy_position"]
            < world.recorded()
        ):
            assert time.monotonic() < deadline, "the projector fell behind"
            time.sleep(0.05)

        fresh = events(world, "admin", "/v1/streams/genealogy", last_event_id=0, count=1)
        assert fresh and world.recorded() > before
    finally:
        stalled.close()


def test_a_change_recorded_while_subscribed_arrives_on_the_open_stream(serve: Serve) -> None:
    world = serve(stream_ping=0.2)
    world.extract("ORE-1", "10000")
    settled(world)
    subscribed = threading.Event()
    got: list[Any] = []

    def read() -> None:
        path = "/v1/streams/genealogy?table=batches"
        with world.client.stream("GET", path, headers=world.headers("analyst")) as response:  # type: ignore[attr-defined]
            for line in response.iter_lines():
                if line.startswith(":"):
                    subscribed.set()  # streaming from now: ORE-1 is not news
                elif line.startswith("data:"):
                    got.append(json.loads(line[5:]))
                    return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert subscribed.wait(timeout=20)

    world.extract("ORE-2", "500")

    reader.join(timeout=20)
    assert [data["row"]["initial_kg"] for data in got] == ["500"]


def test_until_ends_the_stream_once_past_that_id(serve: Serve) -> None:
    world = serve(stream_ping=0.5)
    chain(world)

    response = world.get("/v1/streams/genealogy?after=2&until=6", who="admin")

    assert response.status_code == 200
    ids = [int(line[3:]) for line in response.text.splitlines() if line.startswith("id:")]
    assert ids == [3, 4, 5, 6]
