"""Fault injection against the real stack: a gateway on PostgreSQL, the relay (event
store -> Kafka), a projector of every read model (Kafka -> PostgreSQL), a Kafka broker and
a PostgreSQL server, all real processes started by this package's launchers.

One run (:func:`run_once`): a fresh database and topic, the three Lodestone processes,
a small world registered over HTTP, then a bounded load of concurrent single and bulk
writes with idempotency keys (some built to be refused). At a random moment of the load
one victim (gateway, relay, projector, kafka or postgres) is SIGKILLed and, after a
short outage, started again. Clients retry a connection error or a 5xx with the same
body and the same idempotency key, as a real client does. Afterwards the run checks:

- every write answered 201 is in the event store, every refused one is not (lost);
- no (aggregate, version) is stored twice, no idempotent retry made a second event
  (doubled: a batch with more versions than its accepted writes made, a quota drawn
  more often than its accepted extractions);
- the topic, read to each partition's end offset, holds every stored (aggregate,
  version) and nothing else (a relay killed mid-batch publishes some again: counted
  as repeats, which the projectors drop by design);
- every read model of the registry equals a rebuild from position 0 of the event store
  (fingerprints);
- ``verify`` (hashes, chains, Merkle checkpoints, and the checkpoints published on
  Kafka) is clean.

The broker and the PostgreSQL server live across runs (:class:`Servers`); a run that
kills one of them restarts it on the same directory and port. Development only: product
code never imports this module (an import contract)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import sql

from lodestone.devtools.kafka_local import LocalKafka
from lodestone.devtools.postgres_local import LocalPostgres

VICTIMS: tuple[str, ...] = ("gateway", "relay", "projector", "kafka", "postgres")
ADMIN_KEY = "faults-admin-" + uuid.uuid4().hex[:12]
VALID_FROM = "2026-01-01T00:00:00Z"
VALID_UNTIL = "2030-12-31T00:00:00Z"
ORE = {"Nd": "0.030", "Pr": "0.010", "Dy": "0.002", "Tb": "0.0005", "Fe": "0.20"}
#: Fractions that sum above 1: refused by the composition rule whatever the state.
BAD_ORE = {"Nd": "0.70", "Fe": "0.60"}
PARTITIONS = 3
_PR_SET_PDEATHSIG = 1


# --- the servers that live across runs ---------------------------------------------------


class Servers:
    """A Kafka broker and a PostgreSQL server (durable settings: these get killed),
    started once and shared by the runs; each run makes its own database and topics."""

    def __init__(self) -> None:
        # Each in a temporary directory of its own (the server's account must reach
        # PostgreSQL's), removed by close().
        self.kafka = LocalKafka()
        self.postgres = LocalPostgres()
        self.bootstrap = ""
        self.url = ""

    def start(self) -> None:
        self.url = self.postgres.start()
        self.bootstrap = self.kafka.start()

    def kill(self, victim: str) -> None:
        if victim == "kafka":
            self.kafka.kill()
        elif victim == "postgres":
            self.postgres.kill()
        else:
            raise ValueError(victim)

    def restart(self, victim: str) -> None:
        """Back on the same directory and port: clients reconnect by themselves."""
        if victim == "kafka":
            self.kafka.start()
        elif victim == "postgres":
            self.postgres.start()
        else:
            raise ValueError(victim)

    def database(self, name: str) -> str:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url.rsplit("/", 1)[0] + f"/{name}"

    def drop(self, name: str) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def close(self) -> None:
        self.kafka.close()
        self.postgres.close()

    def __enter__(self) -> Servers:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


# --- the Lodestone processes of one run --------------------------------------------------


def _die_with_parent() -> None:  # in the child between fork and exec
    # No orphan outlives a harness that is itself killed.
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Stack:
    """The gateway, relay and projector of one run, as child processes of ours, on the
    run's database and topics. ``supervise()`` restarts any that exited (what systemd or
    Kubernetes would do) and counts it: a process that dies of another's outage."""

    servers: Servers
    name: str
    url: str
    data_dir: Path
    port: int = field(default_factory=_free_port)
    children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    exits: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def topic(self) -> str:
        return f"lodestone.events.{self.name}"

    @property
    def checkpoint_topic(self) -> str:
        return f"lodestone.checkpoints.{self.name}"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith("LODESTONE_")},
            "LODESTONE_DATA_DIR": str(self.data_dir),
            "LODESTONE_POSTGRES_URL": self.url,
            "LODESTONE_ADMIN_KEY": ADMIN_KEY,
            "LODESTONE_KAFKA_BOOTSTRAP_SERVERS": self.servers.bootstrap,
            "LODESTONE_KAFKA_TOPIC": self.topic,
            "LODESTONE_KAFKA_PARTITIONS": str(PARTITIONS),
            "LODESTONE_CHECKPOINT_TOPIC": self.checkpoint_topic,
            # Often, so that checkpoints are made (and published) while things die.
            "LODESTONE_CHECKPOINT_INTERVAL": "1",
            "LODESTONE_PROJECTOR_GROUP": f"genealogy.{self.name}",
            "LODESTONE_EMBEDDED_RELAY": "false",
            "LODESTONE_EMBEDDED_PROJECTOR": "false",
            # Change topics have a SIGKILL proof of their own (test_change_topics.py).
            "LODESTONE_PUBLISH_CHANGES": "false",
            # A process that hangs is sent SIGABRT (dump_stacks): its log shows where.
            "PYTHONFAULTHANDLER": "1",
        }

    def command(self, process: str) -> list[str]:
        """``gateway``, ``relay`` or ``projector:<read model>``."""
        if process == "gateway":
            return [sys.executable, "-m", "lodestone.cli.main", "serve", "--port", str(self.port)]
        if process == "relay":
            return [sys.executable, "-m", "lodestone.relay.main"]
        kind, _, projection = process.partition(":")
        if kind == "projector" and projection:
            return [sys.executable, "-m", "lodestone.projector.main", "--projection", projection]
        raise ValueError(process)

    def start(self, process: str) -> None:
        with (self.data_dir / f"{process}.log").open("ab") as log:
            self.children[process] = subprocess.Popen(
                self.command(process),
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )

    def kill(self, process: str) -> None:
        """SIGKILL to the process group: no clean-up, no flush, no goodbye."""
        with self._lock:
            child = self.children.pop(process)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=30)

    def supervise(self) -> None:
        with self._lock:
            for process, child in list(self.children.items()):
                if child.poll() is not None:
                    self.exits[process] += 1
                    self.start(process)

    def wait_gateway(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.supervise()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base}/health", timeout=2).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"gateway not up after {timeout} s:\n{self.log('gateway')}")

    def dump_stacks(self) -> None:
        """SIGABRT to every child: Python's fault handler writes each thread's stack to
        its log before it dies (the next supervise() restarts it)."""
        with self._lock:
            for child in self.children.values():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGABRT)

    def log(self, process: str) -> str:
        path = self.data_dir / f"{process}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def close(self) -> None:
        """A clean stop (SIGTERM: consumers leave their groups, which the next run's
        projectors join under the same names), SIGKILL after 30 s."""
        with self._lock:
            children, self.children = dict(self.children), {}
        for child in children.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGTERM)
        for child in children.values():
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGKILL)
                child.wait(timeout=30)


# --- the load ----------------------------------------------------------------------------


@dataclass
class Write:
    """One write a client makes: its path and body, whether it must be refused, the lots
    it creates and the lot it sells; what it saw."""

    path: str
    body: dict[str, Any]
    key: str
    refuse: bool
    lots: tuple[str, ...] = ()
    sells: str | None = None
    status: int | None = None
    attempts: int = 0
    replayed: bool = False

    @property
    def accepted(self) -> bool:
        return self.status == 201


@dataclass
class Client:
    actor: str
    key: str
    writes: list[Write] = field(default_factory=list)


def _ore(actor: str, lot: str, kg: str, composition: dict[str, str] = ORE) -> dict[str, Any]:
    return {
        "facility": f"{actor}-MINE",
        "quota": f"{actor}-MQ",
        "lot_code": lot,
        "mass_kg": kg,
        "composition": composition,
    }


def plan(actor: str, key: str, rng: random.Random, writes: int) -> Client:
    """What one client will send, in order: extractions one at a time and in bulk,
    sales of lots extracted before, and writes that break a rule (nothing of them may be
    stored). Sales are planned on lots of earlier writes; one whose lot was not
    accepted is refused, which the checks allow for."""
    client = Client(actor, key)
    made: list[str] = []
    for n in range(writes):
        kind = rng.choices(["single", "bulk", "sale", "refused"], [4, 2, 2, 1])[0]
        key_n = f"{actor}-{n}-{uuid.uuid4().hex[:8]}"
        if kind == "sale" and made:
            lot = made.pop(rng.randrange(len(made)))
            body = {"batch": lot, "buyer": "BUYER", "contract": f"C-{actor}-{n}", "price": "1000"}
            body["currency"] = "USD"
            client.writes.append(
                Write("/v1/events/custody-transferred", body, key_n, False, sells=lot)
            )
        elif kind == "bulk":
            lots = tuple(f"{actor}-B{n}-{i}" for i in range(rng.randint(3, 12)))
            events = [{"type": "OreExtracted", **_ore(actor, lot, "500")} for lot in lots]
            client.writes.append(Write("/v1/events/bulk", {"events": events}, key_n, False, lots))
            made.extend(lots)
        elif kind == "refused":
            if rng.random() < 0.5:
                lot = f"{actor}-X{n}"
                body = _ore(actor, lot, "500", BAD_ORE)
                client.writes.append(Write("/v1/events/ore-extracted", body, key_n, True, (lot,)))
            else:  # a bulk whose last event breaks the rule: stored whole or not at all
                lots = tuple(f"{actor}-XB{n}-{i}" for i in range(3))
                events = [{"type": "OreExtracted", **_ore(actor, lot, "500")} for lot in lots]
                events[-1]["composition"] = BAD_ORE
                client.writes.append(
                    Write("/v1/events/bulk", {"events": events}, key_n, True, lots)
                )
        else:
            lot = f"{actor}-S{n}"
            body = _ore(actor, lot, str(rng.randint(100, 5000)))
            client.writes.append(Write("/v1/events/ore-extracted", body, key_n, False, (lot,)))
            made.append(lot)
    return client


def send(http: httpx.Client, client: Client, write: Write, deadline: float) -> None:
    """Until answered with something other than a 5xx: the same body and idempotency key
    each time. A write still unanswered at ``deadline`` keeps ``status`` None."""
    headers = {"Authorization": f"Bearer {client.key}", "Idempotency-Key": write.key}
    pause = 0.1
    while time.monotonic() < deadline:
        write.attempts += 1
        try:
            response = http.post(write.path, json=write.body, headers=headers)
        except httpx.TransportError:
            time.sleep(pause)
            pause = min(pause * 2, 1.0)
            continue
        if response.status_code >= 500:
            time.sleep(pause)
            pause = min(pause * 2, 1.0)
            continue
        write.status = response.status_code
        write.replayed = response.headers.get("Idempotent-Replayed") == "true"
        return


def register(base: str, actors: Sequence[str]) -> dict[str, str]:
    """Per actor: the actor, a mine, a mining quota and an operator key; and the BUYER
    every client sells to. Answers the keys by actor."""
    keys = {}
    with httpx.Client(
        base_url=base, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30
    ) as http:

        def post(path: str, body: dict[str, Any]) -> Any:
            response = http.post(path, json=body)
            if response.status_code != 201:
                raise RuntimeError(f"{path}: {response.status_code} {response.text[:300]}")
            return response.json()

        post(
            "/v1/actors",
            {"code": "BUYER", "name": "Buyer Co", "country": "CN", "roles": ["separator"]},
        )
        for actor in actors:
            post(
                "/v1/actors",
                {"code": actor, "name": f"{actor} Mining", "country": "CN", "roles": ["miner"]},
            )
            post(
                "/v1/facilities",
                {
                    "code": f"{actor}-MINE",
                    "name": f"{actor} pit",
                    "kind": "mine",
                    "owner": actor,
                    "country": "CN",
                },
            )
            post(
                "/v1/licences",
                {
                    "number": f"{actor}-MQ",
                    "kind": "mining_quota",
                    "holder": actor,
                    "max_kg": "100000000",
                    "valid_from": VALID_FROM,
                    "valid_until": VALID_UNTIL,
                },
            )
            keys[actor] = post(
                "/v1/credentials", {"role": "operator", "actor": actor, "label": actor}
            )["key"]
    return keys


# --- one run -----------------------------------------------------------------------------


@dataclass
class RunResult:
    run: int
    victim: str
    kill_at: float = float("nan")  # seconds into the load
    kill_after: str = ""  # writes answered / planned, when the kill fell
    accepted: int = 0
    refused: int = 0
    retried: int = 0
    replayed: int = 0
    unanswered: int = 0
    lost: int = 0
    doubled: int = 0
    topic_missing: int = 0
    topic_repeats: int = 0
    models_equal: bool = False
    verify_ok: bool = False
    exits: str = ""  # other processes that died and were restarted
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)  # seconds each phase took
    logs: str = ""  # where the processes' logs were kept
    problems: list[str] = field(default_factory=list)

    def phase(self, name: str, since: float) -> float:
        now = time.monotonic()
        self.phases[name] = now - since
        return now

    @property
    def clean(self) -> bool:
        return (
            not self.problems
            and self.lost == 0
            and self.doubled == 0
            and self.topic_missing == 0
            and self.models_equal
            and self.verify_ok
        )


def run_once(
    servers: Servers,
    run: int,
    victim: str,
    seed: int,
    *,
    clients: int = 4,
    writes: int = 14,
    outage: tuple[float, float] = (0.5, 2.0),
    work_dir: Path | None = None,
    keep_logs: bool = False,
) -> RunResult:
    """One run; see the module's docstring. Never raises for what it finds: the result
    says it."""
    if victim not in VICTIMS:
        raise ValueError(f"victim {victim!r}: one of {', '.join(VICTIMS)}")
    rng = random.Random(seed)
    started = time.monotonic()
    result = RunResult(run, victim)
    name = f"f{uuid.uuid4().hex[:10]}"
    base = Path(tempfile.mkdtemp(prefix=f"faults-{name}-", dir=work_dir))
    url = servers.database(name)
    stack = Stack(servers, name, url, base)
    try:
        _run(stack, result, rng, victim, clients, writes, outage)
    except Exception as error:  # the run reports it; the next run goes on
        result.problems.append(f"{type(error).__name__}: {error}")
    finally:
        stack.close()
        with contextlib.suppress(psycopg.Error):
            servers.drop(name)
        if not result.clean:
            result.problems.append(f"logs kept in {base}")
        elif keep_logs:
            result.logs = str(base)
        else:
            shutil.rmtree(base, ignore_errors=True)
        result.exits = ", ".join(f"{p} {n}" for p, n in sorted(stack.exits.items()))
        result.seconds = time.monotonic() - started
    return result


def _run(
    stack: Stack,
    result: RunResult,
    rng: random.Random,
    victim: str,
    clients: int,
    writes: int,
    outage: tuple[float, float],
) -> None:
    from lodestone.projections.registry import REGISTRY

    since = time.monotonic()
    # One projector process per read model, every read model of the registry: a process
    # of all of them polls its five consumer groups one after another, so after a kill
    # (its own, or the broker's) it rejoins them one session timeout after another,
    # which made a run take minutes (see README, "Faults under load").
    projectors = [f"projector:{name}" for name in REGISTRY.names()]
    for process in ("gateway", "relay", *projectors):
        stack.start(process)
    stack.wait_gateway()
    actors = [f"M{c}" for c in range(clients)]
    keys = register(stack.base, actors)
    since = result.phase("start", since)
    plans = [plan(actor, keys[actor], rng, writes) for actor in actors]
    total = sum(len(p.writes) for p in plans)
    kill_after = rng.randint(max(1, total // 10), max(1, total * 7 // 10))
    downtime = rng.uniform(*outage)
    answered = threading.Semaphore(0)
    load_started = time.monotonic()
    deadline = load_started + 240.0

    def work(client: Client) -> None:
        with httpx.Client(base_url=stack.base, timeout=15) as http:
            for write in client.writes:
                send(http, client, write, deadline)
                answered.release()

    threads = [threading.Thread(target=work, args=(p,), daemon=True) for p in plans]
    for thread in threads:
        thread.start()
    for _ in range(kill_after):
        answered.acquire()
    time.sleep(rng.uniform(0.0, 0.3))  # not always right after an answer
    result.kill_at = time.monotonic() - load_started
    result.kill_after = f"{kill_after}/{total}"
    if victim in ("kafka", "postgres"):
        stack.servers.kill(victim)
        time.sleep(downtime)
        stack.servers.restart(victim)
    else:
        process = rng.choice(projectors) if victim == "projector" else victim
        result.victim = process
        stack.kill(process)
        time.sleep(downtime)
        stack.start(process)
    while any(thread.is_alive() for thread in threads):
        stack.supervise()
        time.sleep(0.2)
    result.phase("load", load_started)
    all_writes = [w for p in plans for w in p.writes]
    result.accepted = sum(w.accepted for w in all_writes)
    result.refused = sum(w.status is not None and not w.accepted for w in all_writes)
    result.retried = sum(w.attempts > 1 for w in all_writes)
    result.replayed = sum(w.replayed for w in all_writes)
    result.unanswered = sum(w.status is None for w in all_writes)
    if result.unanswered:
        result.problems.append(f"{result.unanswered} writes unanswered after 240 s")
    for write in all_writes:
        expected_refusal = write.refuse or (
            write.sells is not None and not _accepted_lot(plans, write.sells)
        )
        if write.status is not None and write.accepted == expected_refusal:
            result.problems.append(
                f"{write.path} {write.key} answered {write.status}, "
                f"expected {'a refusal' if expected_refusal else '201'}"
            )
    check(stack, result, plans)


def _accepted_lot(plans: Sequence[Client], lot: str) -> bool:
    return any(lot in w.lots and w.accepted for p in plans for w in p.writes)


# --- the checks --------------------------------------------------------------------------


def check(stack: Stack, result: RunResult, plans: Sequence[Client]) -> None:
    """Store, topic, read models, verify: see the module's docstring."""
    # Imported here: the harness's process needs the product only once a run checks.
    from lodestone.audit.verify import verify
    from lodestone.bootstrap.settings import Settings
    from lodestone.bootstrap.stores import build_ledger, build_ledger_tables, open_view
    from lodestone.domain import ids
    from lodestone.projections.registry import REGISTRY
    from lodestone.streaming.checkpoints import read_published
    from lodestone.streaming.feeds import NotificationLogFeed
    from lodestone.streaming.kafka_feed import source_name
    from lodestone.streaming.projector import Projector
    from lodestone.streaming.relay import Relay

    settings = Settings(
        data_dir=stack.data_dir,
        postgres_url=stack.url,
        kafka_bootstrap_servers=stack.servers.bootstrap,
        kafka_topic=stack.topic,
        checkpoint_topic=stack.checkpoint_topic,
    )
    ledger = build_ledger(settings)
    tables = build_ledger_tables(settings)
    try:
        # Everything recorded reaches the topic, and the projector consumes all of it.
        since = time.monotonic()
        top = ledger.recorder.max_notification_id() or 0
        _wait(lambda: tables.positions.get(Relay.name) >= top, stack, "the relay to catch up", 120)
        since = result.phase("relayed", since)
        stored = _stored(ledger)
        counts = Counter(stored)
        result.doubled += sum(n - 1 for n in counts.values() if n > 1)
        _check_writes(ledger, result, plans, ids)
        records, ends = records_to_end(stack.servers.bootstrap, stack.topic)
        on_topic = Counter(_pair(r) for r in records)
        result.topic_missing = len(set(counts) - set(on_topic))
        result.topic_repeats = sum(n - 1 for n in on_topic.values() if n > 1)
        strangers = set(on_topic) - set(counts)
        if strangers:
            result.problems.append(
                f"{len(strangers)} (aggregate, version) on the topic, not stored"
            )
        views = {entry.name: open_view(settings, entry) for entry in REGISTRY}
        try:

            def projected() -> bool:
                return all(
                    view.position(source_name(tp, partition)) >= end
                    for view in views.values()
                    for (tp, partition), end in ends.items()
                )

            def behind() -> str:
                # A failed run drops its database: what a diagnosis needs goes in the error.
                return "; ".join(
                    f"{name} {tp}:{partition} at {view.position(source_name(tp, partition))}"
                    f" of {end}"
                    for name, view in views.items()
                    for (tp, partition), end in sorted(ends.items())
                    if view.position(source_name(tp, partition)) < end
                )

            _wait(projected, stack, "the projector to consume the topic", 180, behind)
            since = result.phase("projected", since)
            equal = True
            for entry in REGISTRY:
                reference = entry.open(
                    postgres_url=stack.url,
                    sqlite_path=stack.data_dir / "unused.sqlite",
                    schema=f"{entry.name}_reference",
                )
                try:
                    feed = NotificationLogFeed(ledger.recorder, ledger.mapper)
                    Projector(entry.projection(), reference, feed).catch_up()
                    if reference.fingerprint() != views[entry.name].fingerprint():
                        equal = False
                        result.problems.append(f"read model {entry.name} differs from a rebuild")
                finally:
                    reference.close()
            result.models_equal = equal
            since = result.phase("rebuilt", since)
        finally:
            for view in views.values():
                view.close()
        published = read_published(stack.servers.bootstrap, stack.checkpoint_topic)
        report = verify(ledger.recorder, tables.checkpoints, published=published, rows=tables.rows)
        result.verify_ok = report.ok
        result.phase("verified", since)
        if not report.ok:
            first = report.problems[0]
            result.problems.append(f"verify: {len(report.problems)} problems, first {first}")
    finally:
        tables.close()
        ledger.close()


def _wait(
    condition: Callable[[], bool],
    stack: Stack,
    what: str,
    timeout: float,
    describe: Callable[[], str] | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            stack.dump_stacks()
            detail = f": {describe()}" if describe else ""
            raise TimeoutError(f"{what} within {timeout} s (stacks dumped to the logs){detail}")
        stack.supervise()
        time.sleep(0.1)


def _stored(ledger: Any) -> list[tuple[str, int]]:
    """Every (aggregate, version) of the notification log, repeats included."""
    pairs: list[tuple[str, int]] = []
    start = 1
    while True:
        page = ledger.recorder.select_notifications(start=start, limit=10_000)
        if not page:
            return pairs
        pairs.extend((str(n.originator_id), n.originator_version) for n in page)
        start = page[-1].id + 1


def _check_writes(ledger: Any, result: RunResult, plans: Sequence[Client], ids: Any) -> None:
    """Each lot of an accepted write stored with exactly the events its accepted writes
    made (1, +1 if a sale of it was accepted); each lot of a refused write not at all;
    each quota drawn exactly once per accepted extraction."""
    for client in plans:
        actor = ids.actor_id(client.actor)
        sold = {w.sells for w in client.writes if w.sells and w.accepted}
        extracted = 0
        for write in client.writes:
            for lot in write.lots:
                versions = [
                    e.originator_version
                    for e in ledger.recorder.select_events(ids.batch_id(actor, lot))
                ]
                expected = (1 + (lot in sold)) if write.accepted else 0
                extracted += 1 if write.accepted else 0
                if len(versions) < expected:
                    result.lost += expected - len(versions)
                    result.problems.append(f"{client.actor}/{lot}: {versions}, {expected} expected")
                elif len(versions) > expected:
                    result.doubled += len(versions) - expected
                    result.problems.append(f"{client.actor}/{lot}: {versions}, {expected} expected")
        draws = len(ledger.recorder.select_events(ids.licence_id(f"{client.actor}-MQ"))) - 1
        if draws != extracted:
            if draws < extracted:
                result.lost += extracted - draws
            else:
                result.doubled += draws - extracted
            result.problems.append(f"{client.actor}-MQ drawn {draws} times, {extracted} expected")


def _pair(record: Any) -> tuple[str, int]:
    headers = {k: v.decode() for k, v in record.headers}
    return headers["ce_subject"], int(headers["aggregate_version"])


def records_to_end(
    bootstrap: str, topic: str, timeout: float = 60.0
) -> tuple[list[Any], dict[tuple[str, int], int]]:
    """Every record of every partition of ``topic`` up to the end offsets taken when
    called (never a count of records: repeats would make it up early), by a plain
    consumer without a group; and those end offsets by (topic, partition)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        numbers = consumer.partitions_for_topic(topic) or set()
        partitions = [TopicPartition(topic, n) for n in sorted(numbers)]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        records: list[Any] = []
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {topic} to its end offsets")
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        return records, {(tp.topic, tp.partition): end for tp, end in ends.items()}
    finally:
        consumer.close()


# --- a series of runs --------------------------------------------------------------------


def victims(runs: int, rng: random.Random) -> list[str]:
    """Each victim equally often (shuffled), whatever the number of runs."""
    chosen = [VICTIMS[n % len(VICTIMS)] for n in range(runs)]
    rng.shuffle(chosen)
    return chosen


HEADERS = (
    "run",
    "victim",
    "kill at",
    "after",
    "accepted",
    "refused",
    "retried",
    "replayed",
    "lost",
    "doubled",
    "topic miss",
    "repeats",
    "models equal",
    "verify",
    "restarted",
    "s",
)


def row(r: RunResult) -> list[str]:
    return [
        str(r.run),
        r.victim,
        f"{r.kill_at:.1f}s",
        r.kill_after,
        str(r.accepted),
        str(r.refused),
        str(r.retried),
        str(r.replayed),
        str(r.lost),
        str(r.doubled),
        str(r.topic_missing),
        str(r.topic_repeats),
        "yes" if r.models_equal else "NO",
        "clean" if r.verify_ok else "BROKEN",
        r.exits or "-",
        f"{r.seconds:.0f}",
    ]


def summary(results: Sequence[RunResult]) -> str:
    lost = sum(r.lost + r.topic_missing for r in results)
    doubled = sum(r.doubled for r in results)
    line = f"{len(results)} runs: {lost} lost, {doubled} doubled"
    unequal = sum(not r.models_equal for r in results)
    broken = sum(not r.verify_ok for r in results)
    other = sum(bool(r.problems) for r in results)
    if unequal or broken or other:
        line += (
            f" ({unequal} with read models unequal, {broken} verify broken, {other} with problems)"
        )
    return line
