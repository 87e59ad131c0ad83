"""Relay throughput: events/s from the event store to acknowledged on Kafka, beside
kafka-python's raw produce rate of the very same messages.

    .venv/bin/python bench/relay.py            # ~200k events; ~10 min (+ a one-time store build)
    .venv/bin/python bench/relay.py --quick    # ~20k events; ~2 min

Setup: a real local Apache Kafka broker (lodestone.devtools.kafka_local.LocalKafka) in a
temporary directory, and a copy of a cached demo event store (bench/_common.demo_store:
the deterministic demo chain, mines to end clients, ~2.25 stored events per command;
built once into bench/.data/). Every series writes to a fresh topic of --partitions
partitions (the project default, 6) on the same broker, with a fresh producer made by
the product's own factory (lodestone.infra.kafka.producers.producer: acks=all, idempotence,
linger 5 ms, 256 KiB batches, 5 in flight).

Series, interleaved run by run (so a burst of load from other users of this shared
machine hits all of them alike), --runs runs each, figure = median:

- relay: lodestone.streaming.relay.Relay.run_once in a loop until it returns 0 (caught
  up): read 2,000 notifications after the recorded position, encode each
  (lodestone.streaming.codec.encode), send, flush, wait for every acknowledgement,
  record the position (in events.sqlite, as lodestone.bootstrap.stores does). The position
  is reset to 0 before each run.
- raw: the same encoded records (key, value, the 9 headers), encoded once before the
  runs, sent with KafkaProducer.send in one go, then flush and every future checked:
  kafka-python's ceiling for these messages.
- raw, flush every 2,000: the same, but in the relay's rhythm (send 2,000, flush, check
  the futures): the relay minus reading and encoding.

Then, without Kafka, on the same store: the read (select_notifications, 2,000 per
call) and the encode alone, and within the encode the full event deserialisation
(mapper.to_domain_event) it performs. With these, the relay's time per event is split
into read + encode + produce. CPU figures are this process's (the producer's I/O
thread included) and the broker JVM's, per event.

Each run checks that the topic's end offsets add up to the store's event count. Nothing
asserts on timings: this is a shared, noisy 2-core machine; the figures are printed.
"""

from __future__ import annotations

import argparse
import inspect
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import (
    Measured,
    Timer,
    cpu_seconds,
    demo_store,
    end_offsets,
    kafka_broker,
    load,
    machine,
    median,
    now_utc,
    paired,
    revision,
    run_main,
    table,
    temp_dir,
)
from _common import Series as _Series


@dataclass
class Run(Measured):
    cpu: float  # this process (main thread + the producer's I/O thread)
    broker_cpu: float
    on_topic: int
    requests: int = 0  # produce requests sent (one broker: one per send of the I/O thread)
    batches: int = 0  # partition batches in them


@dataclass
class Series(_Series[Run]):
    def per_event_us(self, attr: str) -> float:
        return median([getattr(r, attr) / r.events * 1e6 for r in self.runs])


def fresh_topic(bootstrap: str, name: str, partitions: int) -> None:
    from lodestone.infra.kafka.topics import create_topic

    if not create_topic(bootstrap, name, partitions):
        raise RuntimeError(f"topic {name} already exists on a fresh broker")


def new_producer(bootstrap: str, topic: str) -> tuple[Any, list[int]]:
    """The relay's own producer factory; the topic's metadata fetched before timing.
    Also returns [produce requests, partition batches] sent, counted from the I/O
    thread's own metrics hook (instrumentation only: nothing else changes)."""
    from lodestone.infra.kafka.producers import producer

    kafka = producer(bootstrap)
    kafka.partitions_for(topic)
    counts = [0, 0]
    sensors = kafka._sender._sensors
    if sensors is not None:
        original = sensors.update_produce_request_metrics

        def counting(batches_by_node: Any) -> None:
            counts[0] += len(batches_by_node)
            counts[1] += sum(len(b) for b in batches_by_node.values())
            original(batches_by_node)

        sensors.update_produce_request_metrics = counting
    return kafka, counts


def relay_run(
    ledger: Any, positions: Any, bootstrap: str, topic: str, broker_pid: int, events: int
) -> Run:
    from lodestone.streaming.relay import Relay

    kafka, counts = new_producer(bootstrap, topic)
    try:
        positions.set(Relay.name, 0)
        relay = Relay(ledger.recorder, ledger.mapper, kafka, positions, topic=topic)
        cpu0, b0 = time.process_time(), cpu_seconds(broker_pid)
        t0 = time.perf_counter()
        relayed = 0
        while n := relay.run_once():
            relayed += n
        seconds = time.perf_counter() - t0
        cpu, bcpu = time.process_time() - cpu0, cpu_seconds(broker_pid) - b0
        if relayed != events or relay.position != events:
            raise RuntimeError(f"relayed {relayed}, position {relay.position}, store {events}")
    finally:
        kafka.close()
    return Run(relayed, seconds, cpu, bcpu, sum(end_offsets(bootstrap, topic).values()), *counts)


def raw_run(
    records: list[Any], bootstrap: str, topic: str, broker_pid: int, flush_every: int | None
) -> Run:
    kafka, counts = new_producer(bootstrap, topic)
    try:
        step = flush_every or len(records)
        cpu0, b0 = time.process_time(), cpu_seconds(broker_pid)
        t0 = time.perf_counter()
        for start in range(0, len(records), step):
            futures = [
                kafka.send(topic, key=r.key, value=r.value, headers=r.headers)
                for r in records[start : start + step]
            ]
            kafka.flush(timeout=60)
            for future in futures:
                future.get(timeout=60)
        seconds = time.perf_counter() - t0
        cpu, bcpu = time.process_time() - cpu0, cpu_seconds(broker_pid) - b0
    finally:
        kafka.close()
    return Run(
        len(records), seconds, cpu, bcpu, sum(end_offsets(bootstrap, topic).values()), *counts
    )


def stages(ledger: Any, events: int, batch: int) -> tuple[list[Any], dict[str, float]]:
    """Read, encode and deserialise every event without Kafka: (records, seconds per stage)."""
    from lodestone.streaming import codec

    recorder, mapper = ledger.recorder, ledger.mapper
    t0 = time.perf_counter()
    notifications: list[Any] = []
    after = 0
    while chunk := recorder.select_notifications(
        start=after, limit=batch, inclusive_of_start=False
    ):
        notifications.extend(chunk)
        after = chunk[-1].id
    read = time.perf_counter() - t0
    t0 = time.perf_counter()
    records = [codec.encode(n, mapper) for n in notifications]
    encode = time.perf_counter() - t0
    t0 = time.perf_counter()
    for n in notifications:
        mapper.to_domain_event(n)
    deserialise = time.perf_counter() - t0
    if len(records) != events:
        raise RuntimeError(f"read {len(records)} events, the store has {events}")
    return records, {"read": read, "encode": encode, "deserialise": deserialise}


def profile_relay(ledger: Any, positions: Any, bootstrap: str, topic: str) -> str:
    """pyinstrument over one relay pass (main thread only: the producer's I/O thread,
    which does the network work, is not in it)."""
    from pyinstrument import Profiler

    from lodestone.streaming.relay import Relay

    kafka, _ = new_producer(bootstrap, topic)
    try:
        positions.set(Relay.name, 0)
        relay = Relay(ledger.recorder, ledger.mapper, kafka, positions, topic=topic)
        profiler = Profiler(interval=0.001)
        profiler.start()
        while relay.run_once():
            pass
        profiler.stop()
    finally:
        kafka.close()
    return str(profiler.output_text(unicode=False, color=False, show_all=False))


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="a ~20k-event store (about 2 minutes)")
    ap.add_argument(
        "--events",
        type=int,
        help="about how many events the store holds (default 200,000; quick 20,000)",
    )
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument(
        "--partitions",
        type=int,
        default=6,
        help="partitions of each fresh topic (project default 6)",
    )
    ap.add_argument("--seed", type=int, default=7, help="demo seed")
    ap.add_argument(
        "--profile", action="store_true", help="also print a pyinstrument profile of one relay pass"
    )
    args = ap.parse_args()
    target = args.events or (20_000 if args.quick else 200_000)
    total = Timer()

    print(f"Lodestone relay benchmark, {now_utc()}, {revision()}, {machine()}, {load()}")
    store = demo_store(target, seed=args.seed)
    print(
        f"store: demo seed {store.meta['seed']}, {store.meta['commands']:,} commands, {store.events:,} events "
        f"(built {store.meta['built']} in {store.meta['build_seconds']:.0f} s; {store.home})"
    )
    print(
        f"runs={args.runs}, partitions={args.partitions}, relay batch 2,000 (Relay's default){' (quick)' if args.quick else ''}\n"
    )

    from lodestone.infra.sqlite.database import sqlite_env
    from lodestone.infra.sqlite.stores import SQLitePositionStore
    from lodestone.ledger import Ledger
    from lodestone.streaming.relay import Relay

    relay_s = Series("relay (Relay.run_once until caught up)")
    raw_s = Series("raw kafka-python, one flush at the end")
    rawb_s = Series("raw kafka-python, flush every 2,000")
    with temp_dir("lodestone-bench-relay-") as tmp:
        for suffix in ("", "-wal", "-shm"):
            source = Path(f"{store.path}{suffix}")
            if source.exists():
                shutil.copyfile(source, tmp / f"events.sqlite{suffix}")
        ledger = Ledger(sqlite_env(tmp / "events.sqlite"))
        positions = SQLitePositionStore(tmp / "events.sqlite")  # where build_ledger_tables puts it
        try:
            events = ledger.recorder.max_notification_id() or 0
            # Stages without Kafka; the records encoded here are what the raw series send.
            batch = inspect.signature(Relay).parameters["batch_size"].default
            records, stage = stages(ledger, events, batch)
            value_bytes = sum(len(r.value) for r in records)
            key_bytes = sum(len(r.key) for r in records)
            header_bytes = sum(len(k) + len(v) for r in records for k, v in r.headers)
            print(
                f"messages: {events:,}; value {value_bytes / events:.0f} B, key {key_bytes / events:.0f} B, "
                f"{len(records[0].headers)} headers {header_bytes / events:.0f} B per message on average"
            )
            timer = Timer()
            with kafka_broker() as kafka:
                bootstrap, pid = kafka.bootstrap, kafka.pid
                print(f"broker: Kafka at {bootstrap} (pid {pid}), up in {timer.elapsed():.0f} s\n")
                # warm-up: connections, imports, the JIT of the broker's request path
                fresh_topic(bootstrap, "bench.warmup", args.partitions)
                raw_run(records[: min(5000, len(records))], bootstrap, "bench.warmup", pid, None)
                for r in range(args.runs):
                    for tag, series, run in (
                        (
                            "relay",
                            relay_s,
                            lambda t: relay_run(ledger, positions, bootstrap, t, pid, events),
                        ),
                        ("raw", raw_s, lambda t: raw_run(records, bootstrap, t, pid, None)),
                        ("rawb", rawb_s, lambda t: raw_run(records, bootstrap, t, pid, batch)),
                    ):
                        topic = f"bench.relay.r{r}.{tag}"
                        fresh_topic(bootstrap, topic, args.partitions)
                        res = run(topic)
                        series.runs.append(res)
                        check = (
                            "ok"
                            if res.on_topic == events
                            else f"MISMATCH: {res.on_topic:,} on the topic"
                        )
                        print(
                            f"  run {r + 1} {series.name:<40} {res.rate:8,.0f} events/s  {res.seconds:6.1f} s  (topic holds {check})",
                            flush=True,
                        )
                profile = None
                if args.profile:
                    fresh_topic(bootstrap, "bench.relay.profile", args.partitions)
                    profile = profile_relay(ledger, positions, bootstrap, "bench.relay.profile")
        finally:
            positions.close()
            ledger.close()

    # ---- report ------------------------------------------------------------------------
    mb = (value_bytes + header_bytes + key_bytes) / events / 1e6
    print()
    rows = []
    for s in (relay_s, raw_s, rawb_s):
        rows.append(
            [
                s.name,
                s.rate,
                s.rates,
                s.rate * mb,
                s.per_event_us("cpu"),
                s.per_event_us("broker_cpu"),
                median([r.events / r.requests if r.requests else float("nan") for r in s.runs]),
                median([r.events / r.batches if r.batches else float("nan") for r in s.runs]),
            ]
        )
    print(
        table(
            f"Event store -> acknowledged on Kafka, {events:,} events (events/s: median of {args.runs} runs)",
            [
                "series",
                "events/s",
                "runs",
                "MB/s",
                "bench CPU us/event",
                "broker CPU us/event",
                "records/request",
                "records/partition batch",
            ],
            rows,
        )
    )
    print()
    print(
        table(
            "Ratios (median of paired runs; 1.0 = the relay costs nothing over kafka-python)",
            ["ratio", "events/s"],
            [
                ["relay / raw (one flush)", f"{paired(relay_s, raw_s):.3f}"],
                ["relay / raw (flush every 2,000)", f"{paired(relay_s, rawb_s):.3f}"],
                ["raw (flush every 2,000) / raw (one flush)", f"{paired(rawb_s, raw_s):.3f}"],
            ],
        )
    )
    print()
    us = {k: v / events * 1e6 for k, v in stage.items()}
    relay_us = 1e6 / relay_s.rate
    raw_us = 1e6 / raw_s.rate
    rawb_us = 1e6 / rawb_s.rate
    rows = [
        ["relay, wall per event (median run)", relay_us],
        ["  read: select_notifications, 2,000 per call (alone, no Kafka)", us["read"]],
        ["  encode: codec.encode (alone, no Kafka)", us["encode"]],
        [
            "    of which mapper.to_domain_event, only to read event.timestamp for ce_time",
            us["deserialise"],
        ],
        ["  send + flush + acks, relay rhythm (raw, flush every 2,000)", rawb_us],
        [
            "  rest (position write, GIL contention with the producer thread, noise)",
            relay_us - us["read"] - us["encode"] - rawb_us,
        ],
        ["raw kafka-python, one flush (the ceiling for these messages)", raw_us],
    ]
    print(
        table(
            "Where the relay's time goes (microseconds per event, wall; stages measured apart)",
            ["step", "us/event"],
            rows,
        )
    )
    if profile:
        print("\npyinstrument, one relay pass (main thread):\n" + profile)
    print(f"\ntotal time {total.elapsed():.0f} s; {load()}")


if __name__ == "__main__":
    run_main(main)
