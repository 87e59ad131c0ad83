"""Live subscriptions under load: --subscribers concurrent SSE streams of the genealogy
(GET /v1/streams/genealogy?table=batches) while events are ingested at --rate events/s.

    .venv/bin/python bench/streams.py            # 200 subscribers, 1,000 events/s, 30 s
    .venv/bin/python bench/streams.py --quick    # 20 subscribers, 200 events/s, 8 s

Processes, all real, all on 127.0.0.1, in a temporary directory removed afterwards:
- the gateway: ``lodestone serve`` (SQLite, embedded projector: event store -> the
  genealogy read model and its change log);
- the subscribers: one child process (this script with --subscribe) holding every
  stream on one asyncio loop (httpx), each a connection of its own, as an analyst (the
  gateway's shared reader redacts each change once for all of them); it notes when
  each change arrives on each stream, and a stream told to `resume` (it fell behind
  its bounded queue) reconnects with Last-Event-ID, counted;
- the load: bulk requests (POST /v1/events/bulk, --bulk-size OreExtracted each) paced
  open-loop by a few threads of this process, spread over --operators operators.

For each change delivered to each subscriber: lag = arrival (wall clock) - the change's
``recorded_at`` (the wall clock of the projector's commit, in the same machine). Printed:
deliveries, per-subscriber completeness, lag p50/p99/max against the goal (p99 < 1 s),
the achieved ingest rate, and the gateway's resident memory (VmRSS) sampled through the
run: at the start of the load, its peak, and at the end. Nothing asserts on timings:
this is a shared, noisy 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

from _common import (
    ORE,
    Operator,
    bearer,
    machine,
    now_utc,
    ok,
    pct,
    register_miners,
    server,
    table,
    temp_dir,
)

GOAL_P99_S = 1.0


# --- the subscribers (a child process) ------------------------------------------------


def subscribe(base: str, key: str, count: int, out: Path) -> None:
    """``count`` streams until SIGTERM; then {"arrivals": [[stream, seq, lag s], ...]}."""
    import httpx

    arrivals: list[tuple[int, int, float]] = []
    resumes: list[int] = []  # a stream reconnecting after a `resume` event (it fell behind)
    stop = asyncio.Event()

    async def stream(
        client: httpx.AsyncClient, n: int, ready: asyncio.Event, opened: list[int]
    ) -> None:
        seq: int | None = None
        while not stop.is_set():
            headers = bearer(key)
            if seq is not None:  # told to resume (or the stream ended): from the last id
                headers["Last-Event-ID"] = str(seq)
                resumes.append(n)
            async with client.stream(
                "GET", "/v1/streams/genealogy?table=batches", headers=headers
            ) as response:
                if seq is None:
                    opened.append(n)
                    if len(opened) == count:
                        ready.set()
                event = None
                async for line in response.aiter_lines():
                    if line.startswith("id:"):
                        seq = int(line[3:])
                    elif line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:") and event != "resume":
                        now = time.time()
                        recorded = json.loads(line[5:])["recorded_at"]
                        lag = now - datetime.fromisoformat(recorded).timestamp()
                        arrivals.append((n, seq or 0, lag))
                    elif line == "":
                        event = None
                    if stop.is_set():
                        return
            seq = seq or 0

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        limits = httpx.Limits(max_connections=count + 10, max_keepalive_connections=count + 10)
        timeout = httpx.Timeout(30, read=None)
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=timeout) as client:
            ready = asyncio.Event()
            opened: list[int] = []
            tasks = [asyncio.create_task(stream(client, n, ready, opened)) for n in range(count)]
            await ready.wait()
            out.with_suffix(".ready").touch()
            await stop.wait()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        out.write_text(json.dumps({"arrivals": arrivals, "resumes": len(resumes)}))

    asyncio.run(main())


# --- the load --------------------------------------------------------------------------


def ingest(
    port: int, ops: list[Operator], rate: float, per: int, duration: float
) -> tuple[int, float]:
    """Paced bulk requests; returns (events recorded, seconds taken)."""
    interval = per / rate
    start = time.monotonic()
    sent = [0]
    lock = threading.Lock()
    due = [0]

    def worker(w: int) -> None:
        op = ops[w % len(ops)]
        headers = {**bearer(op.key), "Content-Type": "application/json"}
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while True:
            with lock:
                k = due[0]
                due[0] += 1
            at = start + k * interval
            if at - start >= duration:
                return
            time.sleep(max(0.0, at - time.monotonic()))
            body = {
                "events": [
                    {
                        "type": "OreExtracted",
                        "facility": op.mine,
                        "quota": op.quota,
                        "lot_code": f"S{w}-{k}-{i}",
                        "mass_kg": "1000",
                        "composition": ORE,
                    }
                    for i in range(per)
                ]
            }
            conn.request("POST", "/v1/events/bulk", body=json.dumps(body), headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status == 201:
                with lock:
                    sent[0] += per

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(len(ops))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sent[0], time.monotonic() - start


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--subscribers", type=int, default=200)
    ap.add_argument("--rate", type=float, default=1000.0, help="events/s (default 1000)")
    ap.add_argument("--duration", type=float, default=30.0, help="seconds of load (default 30)")
    ap.add_argument("--bulk-size", type=int, default=50)
    ap.add_argument("--operators", type=int, default=4)
    ap.add_argument("--drain", type=float, default=20.0, help="seconds to wait for the tail")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument(
        "--subscribe", nargs=4, metavar=("BASE", "KEY", "COUNT", "OUT"), help=argparse.SUPPRESS
    )
    args = ap.parse_args()
    if args.subscribe:
        base, key, count, out = args.subscribe
        subscribe(base, key, int(count), Path(out))
        return
    if args.quick:
        args.subscribers, args.rate, args.duration = 20, 200.0, 8.0
    print(f"bench/streams.py  {now_utc()}  {machine()}")
    print(
        f"{args.subscribers} subscribers, {args.rate:.0f} events/s for {args.duration:.0f} s "
        f"(bulk {args.bulk_size}/request, {args.operators} operators)"
    )
    with (
        temp_dir("lodestone-bench-streams-") as tmp,
        server(tmp / "data", env={"LODESTONE_STREAM_PING": "5"}) as srv,
    ):
        ops = list(register_miners(srv.base, [f"SUB{i}" for i in range(args.operators)]).values())
        import httpx

        with httpx.Client(base_url=srv.base, headers=bearer(ops[0].key), timeout=30) as c:
            from _common import ADMIN_KEY

            analyst = ok(
                c.post(
                    "/v1/credentials",
                    json={"role": "analyst", "actor": None, "label": "bench"},
                    headers=bearer(ADMIN_KEY),
                )
            )["key"]
        out = tmp / "arrivals.json"
        child = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--subscribe",
                srv.base,
                analyst,
                str(args.subscribers),
                str(out),
            ],
            env=dict(os.environ),
        )
        try:
            deadline = time.monotonic() + 120
            while not out.with_suffix(".ready").exists():
                if child.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the subscribers did not connect")
                time.sleep(0.1)
            memory = [rss_mib(srv.pid)]
            sampling = threading.Event()

            def sample() -> None:
                while not sampling.wait(0.5):
                    memory.append(rss_mib(srv.pid))

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            events, took = ingest(srv.port, ops, args.rate, args.bulk_size, args.duration)
            time.sleep(min(args.drain, 5.0))
            sampling.set()
            sampler.join()
            memory.append(rss_mib(srv.pid))
        finally:
            child.send_signal(signal.SIGTERM)
            child.wait(timeout=60)
        result = json.loads(out.read_text())
        arrivals, resumes = result["arrivals"], result["resumes"]
    per_stream: dict[int, int] = {}
    for n, _, _ in arrivals:
        per_stream[n] = per_stream.get(n, 0) + 1
    lags = [lag for _, _, lag in arrivals]
    complete = sum(1 for n in range(args.subscribers) if per_stream.get(n, 0) >= events)
    p99 = pct(lags, 99)
    print(
        table(
            "Delivery",
            [
                "events recorded",
                "achieved ev/s",
                "deliveries",
                "streams complete",
                "resumes",
                "lag p50 s",
                "lag p99 s",
                "max s",
                "goal p99 < 1 s",
            ],
            [
                [
                    events,
                    events / took,
                    len(arrivals),
                    f"{complete}/{args.subscribers}",
                    resumes,
                    pct(lags, 50),
                    p99,
                    max(lags, default=float("nan")),
                    "met" if p99 < GOAL_P99_S else "not met",
                ]
            ],
        )
    )
    print(
        table(
            "Gateway memory (VmRSS, MiB)",
            ["at the start of the load", "peak", "at the end"],
            [[memory[0], max(memory), memory[-1]]],
        )
    )
    from _common import goal  # the goal lines bench/summary.py collects

    sustained = events / took >= 0.95 * args.rate
    load_text = f"{args.subscribers} subscribers, {args.rate:,.0f} events/s asked"
    goal(
        "streams.lag",
        f"SSE delivery lag p99, {load_text}",
        p99,
        "s",
        under=GOAL_P99_S,
        condition=sustained and complete == args.subscribers,
        note="; ".join(
            ([] if sustained else [f"ingest not sustained: {events / took:,.0f} events/s"])
            + ([] if complete == args.subscribers else [f"{complete} streams complete"])
        ),
    )
    # "Memory staying flat": the end of the load within 20 % of its start.
    goal(
        "streams.memory",
        f"gateway memory growth over the load, {load_text}",
        (memory[-1] / memory[0] - 1) * 100,
        "%",
        under=20,
    )


if __name__ == "__main__":
    main()
