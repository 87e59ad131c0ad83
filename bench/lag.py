"""End-to-end lag through Kafka: from the gateway's 201 to the batch row visible in the
Kafka-fed genealogy read model, at a steady 1,000 events/s.

    .venv/bin/python bench/lag.py            # 30 s per phase, ~3 minutes in all
    .venv/bin/python bench/lag.py --quick    # 8 s per phase, ~1.5 minutes

Processes, all real, all on 127.0.0.1, in a temporary directory removed afterwards:
- Kafka: a local Apache Kafka broker (lodestone.devtools.kafka_local.LocalKafka);
- the gateway: ``lodestone serve`` with LODESTONE_KAFKA_BOOTSTRAP_SERVERS set (it runs
  the relay in-process: event store -> topic lodestone.events.v1, 6 partitions) and
  LODESTONE_EMBEDDED_PROJECTOR=false;
- the projector: ``python -m lodestone.projector.main`` (consumer group
  lodestone.genealogy.v1) on the same data directory, writing read-models.sqlite;
- an observer (this script with --observe, a process of its own so that the load
  generator's threads do not delay its clock): it polls read-models.sqlite read-only
  every --poll-ms ms (``SELECT rowid, id FROM batches WHERE rowid > ?``: new rows only)
  and notes when each batch id first appears; unless --no-split, a plain kafka-python
  consumer (no project code) also notes when each batch's OreExtracted arrives on the
  topic, which splits the lag into "gateway -> Kafka" (the relay) and "Kafka -> visible"
  (the projector). Its clock is CLOCK_MONOTONIC, shared by every process.

Setup: --operators operators, each with a mine and a mining quota of its own
(bench/_common.register_miners), so concurrent requests do not fight over one quota;
then a warm-up (one event per operator, waited for until visible).

Phases (--mode), each --duration seconds at --rate events/s, paced open-loop by
--workers threads (each its own keep-alive connection, http.client): event k is due at
start + k/rate; a worker takes the next due event, waits for its time and posts it; when
every worker is busy, sends fall behind the schedule and the achieved rate says so
(nothing is sent after the phase's end: the phase lasts --duration seconds).
- single: POST /v1/events/ore-extracted, one event per request (the goal's case);
- bulk: POST /v1/events/bulk with --bulk-size OreExtracted per request, as many requests
  per second as make --rate events/s: the same pipeline load at fewer HTTP requests.
For every event: lag = (first seen in the read model) - (201 received by the client).
Printed per phase: achieved rate, HTTP latency, lag p50/p99/max and the goal (p99 <
500 ms), the split, and the CPU each process used. After the load the script waits up
to --drain seconds for the last rows; events never seen are counted, not hidden.
Nothing asserts on timings: this is a shared, noisy 2-core machine.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import itertools
import json
import os
import signal
import sqlite3
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import (
    ORE,
    Operator,
    Timer,
    clean_env,
    cpu_seconds,
    kafka_broker,
    load,
    machine,
    now_utc,
    pct,
    register_miners,
    revision,
    run_main,
    server,
    spawn,
    stop_child,
    table,
    temp_dir,
)

TOPIC = "lodestone.events.v1"
GOAL_P99_MS = 500.0

# --------------------------------------------------------------------------------------
# the observer (a child process): when does each batch become visible?
# --------------------------------------------------------------------------------------


def observe(read_model: Path, out: Path, poll: float, bootstrap: str | None, topic: str) -> None:
    """Poll the read model (and the topic, from its end) until SIGINT/SIGTERM; then write
    {"visible": {batch id: t}, "kafka": {batch id: t}} (t: time.monotonic()) to ``out``.
    ``out``.ready appears once both watches are in place."""
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    visible: dict[str, float] = {}
    on_kafka: dict[str, float] = {}
    consuming = threading.Event()

    def consume() -> None:
        from kafka import KafkaConsumer

        consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=f"bench-lag-observer-{os.getpid()}",
            client_id="bench-lag-observer",
            auto_offset_reset="latest",  # only what arrives from now on
            enable_auto_commit=False,
            isolation_level="read_committed",
        )
        consumer.subscribe([topic])
        try:
            while not consumer.assignment() and not stop.is_set():
                consumer.poll(timeout_ms=100)
            for tp in consumer.assignment():
                consumer.position(tp)  # fixes "latest" now, before the load starts
            consuming.set()
            while not stop.is_set():
                for records in consumer.poll(timeout_ms=100).values():
                    now = time.monotonic()
                    for r in records:
                        if r.headers and (
                            b"lodestone.Batch.OreExtracted" in (v for _, v in r.headers)
                        ):
                            on_kafka.setdefault(r.key.decode(), now)
        finally:
            consumer.close()

    thread = None
    if bootstrap:
        thread = threading.Thread(target=consume, daemon=True)
        thread.start()
    else:
        consuming.set()
    while not read_model.exists() and not stop.is_set():
        time.sleep(0.05)
    db = sqlite3.connect(f"file:{read_model}?mode=ro", uri=True, isolation_level=None)
    last = 0
    ready = out.with_suffix(".ready")
    while not stop.is_set():
        if not ready.exists() and consuming.is_set() and last:
            ready.touch()
        try:
            rows = db.execute(
                "SELECT rowid, id FROM batches WHERE rowid > ? ORDER BY rowid", (last,)
            ).fetchall()
        except sqlite3.OperationalError:  # no table yet, or busy: try again
            rows = []
        now = time.monotonic()
        for rowid, batch_id in rows:
            visible.setdefault(batch_id, now)
            last = rowid
        stop.wait(poll)
    if thread is not None:
        thread.join(10)
    db.close()
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps({"visible": visible, "kafka": on_kafka}))
    os.replace(tmp, out)


# --------------------------------------------------------------------------------------
# the load generator
# --------------------------------------------------------------------------------------


@dataclass
class Sent:
    due: float  # when the schedule wanted it sent
    sent: float
    answered: float  # the 201 (or error) received
    status: int
    batch_ids: list[str]


@dataclass
class Phase:
    name: str
    per_request: int
    rate: float  # events/s asked for
    duration: float
    sent: list[Sent] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    started: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    visible: dict[str, float] = field(default_factory=dict)
    on_kafka: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> list[Sent]:
        return [s for s in self.sent if s.status == 201]

    @property
    def events(self) -> int:
        return sum(len(s.batch_ids) for s in self.ok)

    @property
    def achieved(self) -> float:
        ok = self.ok
        if not ok:
            return 0.0
        return self.events / (max(s.answered for s in ok) - self.started)


def run_phase(phase: Phase, port: int, ops: list[Operator], workers: int, tag: str) -> None:
    per = phase.per_request
    path = "/v1/events/bulk" if per > 1 else "/v1/events/ore-extracted"
    slots = itertools.count()  # next() is atomic under the GIL
    interval = per / phase.rate
    lock = threading.Lock()
    ready = threading.Barrier(workers + 1)

    def body(op: Operator, k: int) -> bytes:
        def event(i: int) -> dict[str, Any]:
            return {
                "facility": op.mine,
                "quota": op.quota,
                "lot_code": f"{tag}-{k}-{i}",
                "mass_kg": "1000",
                "composition": ORE,
            }

        if per > 1:
            return json.dumps(
                {"events": [{"type": "OreExtracted", **event(i)} for i in range(per)]}
            ).encode()
        return json.dumps(event(0)).encode()

    def worker(w: int) -> None:
        op = ops[w % len(ops)]
        headers = {"Authorization": f"Bearer {op.key}", "Content-Type": "application/json"}
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        mine: list[Sent] = []
        try:
            conn.request("GET", "/v1/me", headers=headers)  # open the keep-alive connection
            conn.getresponse().read()
            ready.wait()
            while True:
                k = next(slots)
                due = phase.started + k * interval
                if due >= end or time.monotonic() >= end:
                    break  # bounded in time: events that fell behind past the end are not sent
                payload = body(op, k)
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                sent = time.monotonic()
                conn.request("POST", path, body=payload, headers=headers)
                response = conn.getresponse()
                data = response.read()
                answered = time.monotonic()
                ids: list[str] = []
                if response.status == 201:
                    answer = json.loads(data)
                    results = answer["results"] if per > 1 else [answer]
                    ids = [r["batch_id"] for r in results]
                else:
                    with lock:
                        if len(phase.errors) < 5:
                            phase.errors.append(f"{response.status} {data[:200]!r}")
                mine.append(Sent(due, sent, answered, response.status, ids))
        finally:
            conn.close()
            with lock:
                phase.sent.extend(mine)

    threads = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(workers)]
    end = float("inf")
    for t in threads:
        t.start()
    phase.started = time.monotonic() + 0.2
    end = phase.started + phase.duration
    ready.wait()
    for t in threads:
        t.join()


# --------------------------------------------------------------------------------------


class Observer:
    """The observer child: started, stopped, its findings read back."""

    def __init__(self, tmp: Path, read_model: Path, poll: float, bootstrap: str | None) -> None:
        self.out = tmp / f"observer-{time.monotonic_ns()}.json"
        argv = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--observe",
            str(read_model),
            "--out",
            str(self.out),
            "--poll-ms",
            str(poll * 1000),
        ]
        if bootstrap:
            argv += ["--bootstrap", bootstrap]
        self.proc = spawn(argv, env=clean_env(), log_path=tmp / "observer.log")
        self.log = tmp / "observer.log"

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.out.with_suffix(".ready").exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"the observer did not get ready:\n{self.log.read_text()[-2000:]}"
                )
            time.sleep(0.05)

    def finish(self) -> tuple[dict[str, float], dict[str, float]]:
        stop_child(self.proc, grace=30)
        data = json.loads(self.out.read_text())
        self.out.unlink()
        return data["visible"], data["kafka"]


def wait_visible(read_model: Path, ids: set[str], timeout: float) -> set[str]:
    """Wait until every id is in the read model; return those still missing."""
    deadline = time.monotonic() + timeout
    missing = set(ids)
    while missing and time.monotonic() < deadline:
        with contextlib.suppress(sqlite3.OperationalError):
            db = sqlite3.connect(f"file:{read_model}?mode=ro", uri=True)
            try:
                found = {r[0] for r in db.execute("SELECT id FROM batches")}
            finally:
                db.close()
            missing -= found
        if missing:
            time.sleep(0.2)
    return missing


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="8 s per phase")
    ap.add_argument("--rate", type=float, default=1000.0, help="events/s asked for (default 1,000)")
    ap.add_argument("--duration", type=float, help="seconds per phase (default 30, quick 8)")
    ap.add_argument("--mode", choices=("single", "bulk", "both"), default="both")
    ap.add_argument(
        "--bulk-size",
        type=int,
        default=50,
        help="events per bulk request (default 50: 20 requests/s)",
    )
    ap.add_argument(
        "--workers", type=int, default=32, help="client threads of the single phase (default 32)"
    )
    ap.add_argument(
        "--bulk-workers", type=int, default=4, help="client threads of the bulk phase (default 4)"
    )
    ap.add_argument(
        "--operators", type=int, default=32, help="operators, each with its own mine and quota"
    )
    ap.add_argument(
        "--poll-ms", type=float, default=5.0, help="observer poll interval of the read model"
    )
    ap.add_argument(
        "--drain", type=float, default=120.0, help="seconds to wait for the last rows after a phase"
    )
    ap.add_argument(
        "--relay",
        choices=("embedded", "process"),
        default="embedded",
        help="embedded: the relay thread in the gateway (default, the goal's setup); process: "
        "LODESTONE_EMBEDDED_RELAY=false and python -m lodestone.relay.main beside it",
    )
    ap.add_argument(
        "--no-split", action="store_true", help="no Kafka consumer in the observer (less load)"
    )
    # the observer child
    ap.add_argument("--observe", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--bootstrap", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.observe:
        observe(args.observe, args.out, args.poll_ms / 1000, args.bootstrap, TOPIC)
        return

    duration = args.duration or (8.0 if args.quick else 30.0)
    modes = ["single", "bulk"] if args.mode == "both" else [args.mode]
    total = Timer()
    print(f"Lodestone end-to-end lag benchmark, {now_utc()}, {revision()}, {machine()}, {load()}")
    print(
        f"rate={args.rate:,.0f} events/s, {duration:.0f} s per phase, phases: {', '.join(modes)}"
        f"{f' (bulk {args.bulk_size}/request, {args.bulk_workers} workers)' if 'bulk' in modes else ''}, workers={args.workers}, "
        f"operators={args.operators}, relay {args.relay}, observer poll {args.poll_ms:g} ms{' (quick)' if args.quick else ''}"
    )
    print(
        "event: OreExtracted of 1000 kg ore (stores 2 events: the batch's OreExtracted + the quota's Drawn)\n"
    )

    phases: list[Phase] = []
    with temp_dir("lodestone-bench-lag-") as tmp, kafka_broker() as kafka:
        bootstrap = kafka.bootstrap
        data = tmp / "data"
        read_model = data / "read-models.sqlite"
        env = {
            "LODESTONE_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "LODESTONE_EMBEDDED_PROJECTOR": "false",
        }
        if args.relay == "process":
            env["LODESTONE_EMBEDDED_RELAY"] = "false"
        with server(data, env=env) as srv:
            print(f"broker {bootstrap} (pid {kafka.pid}); gateway pid {srv.pid} on {srv.base}")
            relay = None
            if args.relay == "process":
                relay = spawn(
                    [sys.executable, "-m", "lodestone.relay.main"],
                    env=clean_env(
                        LODESTONE_DATA_DIR=str(data), LODESTONE_KAFKA_BOOTSTRAP_SERVERS=bootstrap
                    ),
                    log_path=tmp / "relay.log",
                )
                print(f"relay process pid {relay.pid} (python -m lodestone.relay.main)")
            # The gateway's relay thread creates the topic; the projector starts once it exists.
            deadline = time.monotonic() + 60
            from _common import end_offsets

            while not end_offsets(bootstrap, TOPIC):
                if time.monotonic() > deadline:
                    raise RuntimeError("the gateway's relay did not create the topic within 60 s")
                time.sleep(0.2)
            projector = spawn(
                [sys.executable, "-m", "lodestone.projector.main"],
                env=clean_env(
                    LODESTONE_DATA_DIR=str(data), LODESTONE_KAFKA_BOOTSTRAP_SERVERS=bootstrap
                ),
                log_path=tmp / "projector.log",
            )
            try:
                print(f"projector pid {projector.pid}")
                codes = [f"LAG{i:02d}" for i in range(args.operators)]
                timer = Timer()
                ops = register_miners(srv.base, codes)
                op_list = [ops[c] for c in codes]
                print(
                    f"registered {len(codes)} operators (actor, mine, quota, key) in {timer.elapsed():.1f} s"
                )
                # warm-up: one event per operator, sequentially, until visible
                timer = Timer()
                warm = Phase("warm-up", 1, 20.0, len(op_list) / 20.0)
                run_phase(warm, srv.port, op_list, min(args.workers, len(op_list)), "WARM")
                missing = wait_visible(read_model, {i for s in warm.ok for i in s.batch_ids}, 120)
                if missing or warm.errors:
                    raise RuntimeError(
                        f"warm-up: {len(missing)} rows never visible; errors {warm.errors}; projector log:\n{(tmp / 'projector.log').read_text()[-2000:]}"
                    )
                print(
                    f"warm-up: {warm.events} events visible through Kafka in {timer.elapsed():.1f} s\n"
                )

                pids = {
                    "gateway (+ relay)" if relay is None else "gateway": srv.pid,
                    "projector": projector.pid,
                    "broker": kafka.pid,
                }
                if relay is not None:
                    pids["relay process"] = relay.pid
                for mode in modes:
                    per = args.bulk_size if mode == "bulk" else 1
                    phase = Phase(
                        f"{mode}{f' {per}/request' if per > 1 else ''}", per, args.rate, duration
                    )
                    observer = Observer(
                        tmp, read_model, args.poll_ms / 1000, None if args.no_split else bootstrap
                    )
                    observer.wait_ready()
                    cpu0 = {k: cpu_seconds(p) for k, p in pids.items()}
                    obs0 = cpu_seconds(observer.proc.pid)
                    me0 = time.process_time()
                    run_phase(
                        phase,
                        srv.port,
                        op_list,
                        args.bulk_workers if per > 1 else args.workers,
                        f"{mode.upper()}",
                    )
                    load_end = time.monotonic()
                    ids = {i for s in phase.ok for i in s.batch_ids}
                    missing = wait_visible(read_model, ids, args.drain)
                    time.sleep(max(0.0, 2 * args.poll_ms / 1000))
                    phase.cpu = {k: cpu_seconds(p) - cpu0[k] for k, p in pids.items()}
                    phase.cpu["observer"] = cpu_seconds(observer.proc.pid) - obs0
                    phase.cpu["load generator (this process)"] = time.process_time() - me0
                    phase.visible, phase.on_kafka = observer.finish()
                    phases.append(phase)
                    lags = sorted(
                        phase.visible[i] - s.answered
                        for s in phase.ok
                        for i in s.batch_ids
                        if i in phase.visible
                    )
                    print(
                        f"  {phase.name}: {len(phase.sent):,} requests, {phase.events:,} events recorded, "
                        f"{phase.achieved:,.0f} events/s achieved; p99 lag {pct(lags, 99) * 1000:,.0f} ms; "
                        f"caught up {time.monotonic() - load_end:.1f} s after the load"
                        f"{f'; {len(missing)} NEVER visible' if missing else ''}",
                        flush=True,
                    )
            finally:
                stop_child(projector)
                if relay is not None:
                    stop_child(relay)

    # ---- report ------------------------------------------------------------------------
    print()
    rows = []
    for p in phases:
        ok = p.ok
        http_ms = [(s.answered - s.sent) * 1000 for s in ok]
        behind = [max(0.0, s.sent - s.due) * 1000 for s in p.sent]
        rows.append(
            [
                p.name,
                f"{p.rate:,.0f}",
                p.achieved,
                len(p.sent),
                len(p.sent) - len(ok),
                pct(http_ms, 50),
                pct(http_ms, 99),
                pct(behind, 50),
                pct(behind, 99),
            ]
        )
    print(
        table(
            "Load (HTTP latency: request sent -> response; 'behind': how late sends left against the schedule)",
            [
                "phase",
                "asked ev/s",
                "achieved ev/s",
                "requests",
                "errors",
                "HTTP p50 ms",
                "HTTP p99 ms",
                "behind p50 ms",
                "behind p99 ms",
            ],
            rows,
        )
    )
    for p in phases:
        if p.errors:
            print(f"  {p.name} errors (first {len(p.errors)}): {'; '.join(p.errors)}")
    print()
    rows = []
    for p in phases:
        pairs = [(s.answered, i) for s in p.ok for i in s.batch_ids]
        lag = [(p.visible[i] - t) * 1000 for t, i in pairs if i in p.visible]
        unseen = sum(1 for _, i in pairs if i not in p.visible)
        rows.append(
            [
                f"{p.name}: 201 -> visible in the read model",
                len(lag),
                pct(lag, 50),
                pct(lag, 99),
                max(lag, default=float("nan")),
                unseen,
            ]
        )
        if p.on_kafka:
            to_kafka = [(p.on_kafka[i] - t) * 1000 for t, i in pairs if i in p.on_kafka]
            to_view = [
                (p.visible[i] - p.on_kafka[i]) * 1000
                for _, i in pairs
                if i in p.on_kafka and i in p.visible
            ]
            rows.append(
                [
                    f"  201 -> on Kafka ({'relay in the gateway' if args.relay == 'embedded' else 'relay process'})",
                    len(to_kafka),
                    pct(to_kafka, 50),
                    pct(to_kafka, 99),
                    max(to_kafka, default=float("nan")),
                    len(pairs) - len(to_kafka),
                ]
            )
            rows.append(
                [
                    "  on Kafka -> visible (projector process)",
                    len(to_view),
                    pct(to_view, 50),
                    pct(to_view, 99),
                    max(to_view, default=float("nan")),
                    "-",
                ]
            )
    print(
        table(
            f"End-to-end lag per event, ms (observer polls every {args.poll_ms:g} ms: add up to that much)",
            ["series", "events", "p50", "p99", "max", "not seen"],
            rows,
        )
    )
    print()
    rows = []
    for p in phases:
        seconds = max((s.answered for s in p.ok), default=p.started) - p.started
        for who, cpu in p.cpu.items():
            rows.append(
                [
                    p.name,
                    who,
                    cpu / seconds * 100 if seconds else float("nan"),
                    cpu / p.events * 1000 if p.events else float("nan"),
                ]
            )
    print(
        table(
            "CPU during each phase (load + drain; % of one core over the load's duration, and ms per event)",
            ["phase", "process", "% of a core", "CPU ms/event"],
            rows,
        )
    )
    print()
    rows = []
    for p in phases:
        lag = [
            (p.visible[i] - s.answered) * 1000 for s in p.ok for i in s.batch_ids if i in p.visible
        ]
        p99 = pct(lag, 99)
        rate_ok = p.achieved >= 0.95 * p.rate
        verdict = (
            "met"
            if p99 < GOAL_P99_MS and rate_ok
            else (
                "NOT met"
                if rate_ok
                else f"rate NOT sustained ({p.achieved:,.0f}/s); lag p99 {'<' if p99 < GOAL_P99_MS else '>='} 500 ms at that rate"
            )
        )
        rows.append(
            [
                p.name,
                f"p99 < {GOAL_P99_MS:.0f} ms at {p.rate:,.0f} events/s",
                f"{p99:,.0f} ms at {p.achieved:,.0f}/s",
                verdict,
            ]
        )
    print(table("Goal", ["phase", "goal", "measured", ""], rows))
    print(f"\ntotal time {total.elapsed():.0f} s; {load()}")
    from _common import goal  # the goal lines bench/summary.py collects

    for p in phases:
        if p.per_request != 1:
            continue  # the goal is that of single-event requests
        lag = [
            (p.visible[i] - s.answered) * 1000 for s in p.ok for i in s.batch_ids if i in p.visible
        ]
        sustained = p.achieved >= 0.95 * p.rate
        goal(
            "lag.single",
            f"end-to-end lag p99, single-event requests, asked {p.rate:,.0f} events/s",
            pct(lag, 99),
            "ms",
            under=GOAL_P99_MS,
            condition=sustained,
            note="" if sustained else f"rate not sustained: {p.achieved:,.0f} events/s",
        )


if __name__ == "__main__":
    run_main(main)
