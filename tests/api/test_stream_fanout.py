"""Live streams served by their read model's shared reader (gateway.fanout), over a real
server: many subscribers get the same sequence; a reconnect behind the reader catches up
by itself, joins, and misses nothing nor gets anything twice; a subscriber that never
reads is dropped at its queue's bound and told to resume; each role's live stream
carries exactly what the same role's stream read alone (the redaction per subscriber)
carries."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import httpx
import pytest

from tests.api import test_streams
from tests.api.conftest import ore
from tests.api.test_streams import Event, Serve, Served, chain

pytestmark = pytest.mark.timeout(180)

#: The running gateway of test_streams (a fixture: pytest finds it by this name).
serve = test_streams.serve

GENEALOGY = "/v1/streams/genealogy"


class Parser:
    """SSE lines to events; an event with an id and no data (the id moves on) is kept."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._current = Event()

    def feed(self, line: str) -> None:
        current = self._current
        if line.startswith(":"):
            current.comments.append(line[1:].strip())
        elif line.startswith("id:"):
            current.id = int(line[3:].strip())
        elif line.startswith("event:"):
            current.event = line[6:].strip()
        elif line.startswith("data:"):
            current.data = json.loads(line[5:].strip())
        elif line == "" and (current.id is not None or current.data is not None):
            self.events.append(current)
            self._current = Event()


def parse(text: str) -> list[Event]:
    parser = Parser()
    for line in text.splitlines():
        parser.feed(line)
    return parser.events


class Reader:
    """One stream held open by a thread, read until an event at or past an end id."""

    def __init__(self, world: Served, who: str, path: str = GENEALOGY, last: int | None = None):
        self.headers = world.headers(who)
        if last is not None:
            self.headers["Last-Event-ID"] = str(last)
        self.parser = Parser()
        self.end: int | None = None
        self.ended = False  # the server ended the stream
        self._client = world.client
        self._path = path
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    @property
    def events(self) -> list[Event]:
        return self.parser.events

    def _reached(self) -> bool:
        events = self.parser.events
        return self.end is not None and bool(events) and (events[-1].id or 0) >= self.end

    def _read(self) -> None:
        with self._client.stream("GET", self._path, headers=self.headers) as response:  # type: ignore[attr-defined]
            assert response.status_code == 200, response.read()
            for line in response.iter_lines():  # heartbeats: a line at least every ping
                self.parser.feed(line)
                if self._reached():
                    return
        self.ended = True

    def read_to(self, end: int, timeout: float = 60) -> list[Event]:
        self.end = end
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"the stream did not reach id {end}"
        assert self._reached(), "the stream ended before reaching its end id"
        return self.events


def wait_for(what: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def caught_up(world: Served) -> int:
    """The genealogy's last change id once the read model holds every recorded event
    (its changes commit with its position)."""
    health = world.client.get  # type: ignore[attr-defined]
    wait_for(
        lambda: (
            health("/health", headers=world.headers("admin")).json()["genealogy_position"]
            >= world.recorded()
        )
    )
    return int(world.runtime.change_source("genealogy").changes(0, 0).last)


def joined(world: Served, count: int) -> None:
    """Wait until ``count`` streams are served by the genealogy's shared reader."""
    fanout = world.runtime.fanout("genealogy")
    wait_for(lambda: len(fanout.subscribers()) == count)


def bulk(world: Served, lots: Iterable[int]) -> None:
    events = [{"type": "OreExtracted", **ore(f"B-{n}", "10")} for n in lots]
    world.report("bulk", {"events": events})


def shown(events: list[Event]) -> list[tuple[Any, ...]]:
    return [(e.id, e.event, e.data) for e in events if e.data is not None]


def test_many_live_subscribers_get_identical_sequences(serve: Serve) -> None:
    world = serve(stream_ping=0.2)
    start = caught_up(world)
    readers = [Reader(world, "analyst") for _ in range(12)]
    joined(world, 12)

    chain(world)
    bulk(world, range(300))
    end = caught_up(world)

    sequences = [[(e.id, e.event, e.data) for e in r.read_to(end)] for r in readers]
    assert all(sequence == sequences[0] for sequence in sequences)
    ids = [id for id, _, _ in sequences[0]]
    assert ids == sorted(set(ids)) and ids[0] > start and ids[-1] == end
    assert len(shown(readers[0].events)) > 300


def test_a_reconnect_behind_the_shared_reader_gets_every_missed_change_once_then_joins(
    serve: Serve,
) -> None:
    world = serve(stream_ping=0.2, stream_page=20)
    start = caught_up(world)
    keeper = Reader(world, "admin")  # keeps the shared reader moving on while B is away
    first = Reader(world, "admin")
    joined(world, 2)
    bulk(world, range(50))
    seen = first.read_to(caught_up(world))

    bulk(world, range(50, 150))  # missed: B is away
    behind = caught_up(world)
    wait_for(lambda: world.runtime.fanout("genealogy").head >= behind)
    again = Reader(world, "admin", last=seen[-1].id)  # behind the reader: reads alone
    joined(world, 2)  # ... then served by the shared reader, beside the keeper
    bulk(world, range(150, 200))
    end = caught_up(world)

    resumed = again.read_to(end)
    ids = [e.id for e in seen + resumed]
    assert ids == list(range(start + 1, end + 1))
    assert shown(seen + resumed) == shown(keeper.read_to(end))


def test_a_subscriber_that_never_reads_is_dropped_at_its_bound_and_told_to_resume(
    serve: Serve,
) -> None:
    world = serve(stream_ping=0.5, stream_page=20, stream_queue=40)
    start = caught_up(world)
    fanout = world.runtime.fanout("genealogy")
    url = httpx.URL(str(world.client.base_url))  # type: ignore[attr-defined]
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before the window
    stalled.connect((url.host, url.port))
    stalled.sendall(
        f"GET {GENEALOGY} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        f"{world.keys['admin']}\r\n\r\n".encode()
    )
    try:
        joined(world, 1)
        (inbox,) = fanout.subscribers()
        lots = 0
        while fanout.dropped == 0:  # until the stalled stream's queue would overflow
            assert lots < 5_000, "the stalled stream was never dropped"
            bulk(world, range(lots, lots + 100))
            lots += 100
            caught_up(world)
        end = caught_up(world)

        assert inbox not in fanout.subscribers()
        assert inbox.queued == 0  # its queue let go at once
        assert 0 < inbox.peak <= inbox.bound == 40

        response = http.client.HTTPResponse(stalled)
        response.begin()
        got = parse(response.read().decode())  # to the end of the stream
    finally:
        stalled.close()
    *sent, notice = got
    assert notice.event == "resume" and "Last-Event-ID" in notice.data["action"]
    assert [e.id for e in sent] == list(range(start + 1, notice.id + 1))  # type: ignore[operator]
    rest = Reader(world, "admin", last=notice.id).read_to(end)
    assert [e.id for e in rest] == list(range(notice.id + 1, end + 1))  # type: ignore[operator]


ROLES = ["mine", "magnets", "other", "auto", "auditor", "analyst", "regulator", "admin"]


def test_each_roles_live_stream_carries_what_its_stream_read_alone_carries(
    serve: Serve,
) -> None:
    world = serve(stream_ping=0.2)
    start = caught_up(world)
    live = {who: Reader(world, who) for who in ROLES}
    dysprosium = Reader(world, "analyst", f"{GENEALOGY}?element=Dy&table=batches")
    joined(world, len(ROLES) + 1)

    chain(world)
    bulk(world, range(40))
    end = caught_up(world)

    for who, reader in live.items():
        alone = world.get(f"{GENEALOGY}?after={start}&until={end}", who=who)
        assert shown(reader.read_to(end)) == shown(parse(alone.text)), who
    alone = world.get(f"{GENEALOGY}?after={start}&until={end}&element=Dy&table=batches", "analyst")
    assert shown(dysprosium.read_to(end)) == shown(parse(alone.text)) != []
    redacted = shown(live["analyst"].events)
    assert redacted != shown(live["admin"].events)  # the roles do see different rows
