"""Ingest throughput: the gateway over HTTP beside the eventsourcing library alone.

    .venv/bin/python bench/ingest.py            # a few minutes at most
    .venv/bin/python bench/ingest.py --quick    # under a minute

Every figure is about OreExtracted events (ore leaves a mine under a mining quota).
One such event stores two rows: the new batch's OreExtracted and the quota's Drawn.
"events/s" counts submitted supply-chain events (one per command), not rows.

a) single-event requests, POST /v1/events/ore-extracted, N concurrent clients (threads,
   each its own httpx.Client with keep-alive):
   - "own quota": every client is its own operator with its own mine and quota;
   - "shared quota": all clients report for one operator, mine and quota (one hot
     aggregate: optimistic-concurrency conflicts are retried by the ledger, or 409);
   - "1 client": the same without concurrency, for the per-request cost.
b) bulk: POST /v1/events/bulk with --bulk-size events per request, one client.
c) the same events without HTTP or pydantic, on a SQLite file with the same settings
   (lodestone.infra.sqlite.database.sqlite_env):
   - raw: the domain builds them (lodestone.domain.chain.extract_ore) and
     Ledger.save(batch, quota) stores them, one command per save and --bulk-size
     commands per save ("save only" counts the time inside save);
   - Ledger.execute: the ledger's own command path (reference look-ups, invariants,
     save) without HTTP, to split the gateway's cost into ledger and web layers.
d) where the time goes: the gateway's per-request work (auth, pydantic, fingerprint,
   Ledger.execute and its steps, response, the embedded projector's catch-up) timed
   step by step in one thread on a fresh store, wall and CPU ms per event; the rest of
   the gateway's measured CPU per event is uvicorn, HTTP, FastAPI routing and threads.

Throughput figures are the median of --runs runs; latencies are over all requests of
all runs. "server CPU/event" is the gateway process's user+system CPU time over the
run divided by the events recorded (it includes the embedded genealogy projector).
Nothing here asserts on timings: this is a shared, noisy 2-core machine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from _common import (
    ORE,
    Measured,
    Operator,
    Timer,
    bearer,
    load,
    machine,
    now_utc,
    ore_event,
    paired,
    pct,
    register_miners,
    revision,
    server,
    table,
    temp_dir,
)
from _common import Series as _Series


@dataclass
class RunResult(Measured):
    latencies: list[float] = field(default_factory=list)
    conflicts: int = 0  # 409 answers
    errors: int = 0  # any other non-201
    server_cpu: float = float("nan")  # the gateway process; for in-process runs, this process
    client_cpu: float = float("nan")  # this benchmark process (the HTTP clients)


@dataclass
class Series(_Series[RunResult]):
    def latency(self, p: float) -> float:
        return pct([x for r in self.runs for x in r.latencies], p) * 1000

    @property
    def cpu_per_event_ms(self) -> float:
        ev = sum(r.events for r in self.runs)
        cpu = sum(r.server_cpu for r in self.runs)
        return cpu / ev * 1000 if ev else float("nan")

    @property
    def client_cpu_per_event_ms(self) -> float:
        ev = sum(r.events for r in self.runs)
        cpu = sum(r.client_cpu for r in self.runs)
        return cpu / ev * 1000 if ev else float("nan")

    @property
    def conflicts(self) -> int:
        return sum(r.conflicts for r in self.runs)

    @property
    def errors(self) -> int:
        return sum(r.errors for r in self.runs)


# --------------------------------------------------------------------------------------
# a) single-event requests
# --------------------------------------------------------------------------------------


def single_run(
    base: str, ops: list[Operator], tag: str, duration: float, cpu: Callable[[], float]
) -> RunResult:
    """len(ops) clients post ore-extracted until the deadline; client i reports for ops[i]."""
    n = len(ops)
    clients = [httpx.Client(base_url=base, headers=bearer(op.key), timeout=60) for op in ops]
    try:
        for c in clients:  # open the keep-alive connections
            c.get("/v1/me").raise_for_status()
        results: list[tuple[int, list[float], int, int]] = [(0, [], 0, 0)] * n
        start = threading.Barrier(n + 1)
        deadline = [0.0]

        def client(i: int) -> None:
            c, op = clients[i], ops[i]
            done, lat, conflicts, errors = 0, [], 0, 0
            start.wait()
            k = 0
            while time.perf_counter() < deadline[0]:
                body = ore_event(op, f"{tag}-C{i}-{k}")
                k += 1
                t = time.perf_counter()
                r = c.post("/v1/events/ore-extracted", json=body)
                lat.append(time.perf_counter() - t)
                if r.status_code == 201:
                    done += 1
                elif r.status_code == 409:
                    conflicts += 1
                else:
                    errors += 1
                    if errors == 1:
                        print(f"  client {i}: {r.status_code} {r.text[:300]}", file=sys.stderr)
            results[i] = (done, lat, conflicts, errors)

        threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(n)]
        for t in threads:
            t.start()
        cpu0, me0 = cpu(), time.process_time()
        t0 = time.perf_counter()
        deadline[0] = t0 + duration
        start.wait()
        for t in threads:
            t.join()
        seconds = time.perf_counter() - t0
        cpu1, me1 = cpu(), time.process_time()
    finally:
        for c in clients:
            c.close()
    return RunResult(
        events=sum(r[0] for r in results),
        seconds=seconds,
        latencies=[x for r in results for x in r[1]],
        conflicts=sum(r[2] for r in results),
        errors=sum(r[3] for r in results),
        server_cpu=cpu1 - cpu0,
        client_cpu=me1 - me0,
    )


# --------------------------------------------------------------------------------------
# b) bulk requests
# --------------------------------------------------------------------------------------


def bulk_bodies(op: Operator, tag: str, requests: int, size: int) -> list[bytes]:
    return [
        json.dumps(
            {
                "events": [
                    {"type": "OreExtracted", **ore_event(op, f"{tag}-{r}-{i}")} for i in range(size)
                ]
            }
        ).encode()
        for r in range(requests)
    ]


def bulk_run(
    base: str, op: Operator, bodies: list[bytes], size: int, cpu: Callable[[], float]
) -> RunResult:
    headers = {**bearer(op.key), "content-type": "application/json"}
    with httpx.Client(base_url=base, headers=headers, timeout=600) as c:
        c.get("/v1/me").raise_for_status()
        lat = []
        errors = 0
        cpu0, me0 = cpu(), time.process_time()
        t0 = time.perf_counter()
        for body in bodies:
            t = time.perf_counter()
            r = c.post("/v1/events/bulk", content=body)
            lat.append(time.perf_counter() - t)
            if r.status_code != 201:
                errors += 1
                print(f"  bulk: {r.status_code} {r.text[:300]}", file=sys.stderr)
        seconds = time.perf_counter() - t0
        cpu1, me1 = cpu(), time.process_time()
    return RunResult(
        events=size * (len(bodies) - errors),
        seconds=seconds,
        latencies=lat,
        errors=errors,
        server_cpu=cpu1 - cpu0,
        client_cpu=me1 - me0,
    )


# --------------------------------------------------------------------------------------
# c) in process, no HTTP
# --------------------------------------------------------------------------------------


class InProcess:
    """A Ledger on its own SQLite file (same env as the gateway's) and one registered
    miner: actor, mine, quota."""

    def __init__(self, path: Path, code: str) -> None:
        from lodestone.domain import ids
        from lodestone.domain.access import Principal, Role
        from lodestone.infra.sqlite.database import sqlite_env
        from lodestone.ledger import Ledger
        from lodestone.ledger import commands as c

        self.ledger = Ledger(sqlite_env(path))
        self.admin = Principal("admin:bench", Role.ADMIN)
        self.operator = Principal(f"key:{code}", Role.OPERATOR, ids.actor_id(code))
        self.code = code
        y = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2030, 12, 31, tzinfo=UTC))
        self.ledger.execute(
            self.admin,
            [
                c.RegisterActor(code, f"{code} Mining", "CN", ["miner"]),
                c.RegisterFacility(f"{code}-MINE", f"{code} pit", "mine", code, "CN"),
                c.IssueLicence(f"{code}-MQ", "mining_quota", code, Decimal("100000000"), *y),
            ],
        )
        self.actor_id = ids.actor_id(code)
        self.facility_id = ids.facility_id(f"{code}-MINE")
        self.quota_id = ids.licence_id(f"{code}-MQ")
        self.comp = {k: Decimal(v) for k, v in ORE.items()}

    def close(self) -> None:
        self.ledger.close()

    def raw(self, tag: str, commands: int, per_save: int) -> tuple[RunResult, float]:
        """Domain + Ledger.save, ``per_save`` commands per save. Returns the run and the
        seconds spent inside save."""
        from lodestone.domain import chain

        repo = self.ledger.repository
        actor = repo.get(self.actor_id)
        facility = repo.get(self.facility_id)
        quota = repo.get(self.quota_id)
        mass = Decimal("1000")
        in_save = 0.0
        t0, c0 = time.perf_counter(), time.process_time()
        done = 0
        while done < commands:
            now = datetime.now(UTC)
            step = chain.StepContext(self.admin, actor, now, now)
            batches = []
            for i in range(done, min(done + per_save, commands)):
                batches.append(
                    chain.extract_ore(step, facility, quota, f"{tag}-{i}", mass, self.comp)
                )
            t = time.perf_counter()
            self.ledger.save(*batches, quota)
            in_save += time.perf_counter() - t
            done += len(batches)
        return RunResult(
            events=done, seconds=time.perf_counter() - t0, server_cpu=time.process_time() - c0
        ), in_save

    def execute(self, tag: str, commands: int, per_call: int) -> RunResult:
        """Ledger.execute: the ledger's own command path, ``per_call`` commands per call."""
        from lodestone.ledger import commands as c

        mass = Decimal("1000")
        lat = []
        t0, c0 = time.perf_counter(), time.process_time()
        done = 0
        while done < commands:
            batch = [
                c.ExtractOre(
                    facility=f"{self.code}-MINE",
                    quota=f"{self.code}-MQ",
                    lot_code=f"{tag}-{i}",
                    mass_kg=mass,
                    composition=self.comp,
                )
                for i in range(done, min(done + per_call, commands))
            ]
            t = time.perf_counter()
            self.ledger.execute(self.operator, batch, bulk=per_call > 1)
            lat.append(time.perf_counter() - t)
            done += len(batch)
        return RunResult(
            events=done,
            seconds=time.perf_counter() - t0,
            latencies=lat,
            server_cpu=time.process_time() - c0,
        )


# --------------------------------------------------------------------------------------
# d) where the time goes: the gateway's per-request work, step by step, in one thread
# --------------------------------------------------------------------------------------


def _add(acc: dict[str, list[float]], label: str, wall: float, cpu: float) -> None:
    slot = acc.setdefault(label, [0.0, 0.0])
    slot[0] += wall
    slot[1] += cpu


@contextlib.contextmanager
def _timers(acc: dict[str, list[float]]) -> Iterator[None]:
    """Wrap the ledger's steps with timers for as long as the block runs (this process
    only; the classes are restored afterwards)."""
    from lodestone.domain import chain
    from lodestone.ledger import Ledger
    from lodestone.ledger.unit_of_work import UnitOfWork

    targets = [
        (UnitOfWork, "get", "ledger: uow.get (actor, facility, quota: repository.get)"),
        (UnitOfWork, "require_new", "ledger: require_new (is the new batch id free?)"),
        (chain, "extract_ore", "ledger: domain chain.extract_ore"),
        (Ledger, "_record", "ledger: save: serialize + INSERT + COMMIT"),
        (Ledger, "_take_snapshots", "ledger: save: snapshots (reload 200 events each)"),
    ]
    saved = []
    for owner, attr, label in targets:
        if not hasattr(owner, attr):  # the product changed: time what still exists
            continue
        saved.append((owner, attr, owner.__dict__.get(attr)))

        def wrapper(*a: Any, _f: Any = getattr(owner, attr), _label: str = label, **k: Any) -> Any:
            t, c = time.perf_counter(), time.thread_time()
            try:
                return _f(*a, **k)
            finally:
                _add(acc, _label, time.perf_counter() - t, time.thread_time() - c)

        setattr(owner, attr, wrapper)
    try:
        yield
    finally:
        for owner, attr, original in saved:
            if original is None:
                delattr(owner, attr)
            else:
                setattr(owner, attr, original)


def breakdown(path: Path, per_request: int, requests: int) -> dict[str, tuple[float, float]]:
    """The gateway's work for ``requests`` requests of ``per_request`` OreExtracted
    events, in one thread without HTTP: (wall ms, CPU ms) per event for each step."""
    from fastapi.responses import JSONResponse

    from lodestone.gateway.auth import hash_key
    from lodestone.gateway.schemas import events as schemas
    from lodestone.gateway.writes import fingerprint
    from lodestone.ledger import commands as c
    from lodestone.projections.genealogy.sqlite import SQLiteGenealogyView
    from lodestone.streaming.projector import genealogy_projector

    ip = InProcess(path / "events.sqlite", "BRK")
    view = SQLiteGenealogyView(path / "read-models.sqlite")
    try:
        ip.ledger.execute(
            ip.admin,
            [c.IssueCredential(key_hash=hash_key("bench-key"), role="operator", actor="BRK")],
        )
        projector = genealogy_projector(ip.ledger, view)
        projector.catch_up()
        bulk = per_request > 1
        path_ = "/v1/events/bulk" if bulk else "/v1/events/ore-extracted"

        def body(tag: str) -> bytes:
            events = [
                {
                    "type": "OreExtracted",
                    **ore_event(Operator("BRK", "BRK-MINE", "BRK-MQ", ""), f"{tag}-{i}"),
                }
                for i in range(per_request)
            ]
            return json.dumps(
                {"events": events} if bulk else {k: v for k, v in events[0].items() if k != "type"}
            ).encode()

        acc: dict[str, list[float]] = {}

        def step(label: str, f: Any) -> Any:
            t, c = time.perf_counter(), time.thread_time()
            try:
                return f()
            finally:
                _add(acc, label, time.perf_counter() - t, time.thread_time() - c)

        def request(tag: str) -> None:
            raw = body(tag)
            principal = step(
                "auth: credential lookup (repository.get)",
                lambda: ip.ledger.authenticate(hash_key("bench-key")),
            )
            data = step(
                "web: json.loads + pydantic validation",
                lambda: (schemas.BulkIn if bulk else schemas.OreExtracted).model_validate(
                    json.loads(raw)
                ),
            )
            cmds = step(
                "web: to_command",
                lambda: [e.to_command() for e in data.events] if bulk else [data.to_command()],
            )
            fp = step(
                "web: idempotency fingerprint (model_dump + json + sha256)",
                lambda: fingerprint(path_, data),
            )
            out = step(
                "ledger: Ledger.execute (total)",
                lambda: ip.ledger.execute(principal, cmds, fingerprint=fp, bulk=bulk),
            )
            step(
                "web: JSONResponse",
                lambda: JSONResponse({"results": out.results} if bulk else out.results[0]),
            )
            step("projector: catch-up of the new rows (same process)", projector.catch_up)

        for w in range(1 if bulk else 20):
            request(f"W{w}")
        acc.clear()
        with _timers(acc):
            for r in range(requests):
                request(f"R{r}")
        events = per_request * requests
        return {k: (w / events * 1000, c / events * 1000) for k, (w, c) in acc.items()}
    finally:
        view.close()
        ip.close()


# --------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="short runs (under a minute in all)")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument(
        "--duration", type=float, help="seconds per single-event run (default 6, quick 1)"
    )
    ap.add_argument("--bulk-size", type=int, default=1000)
    ap.add_argument("--bulk-requests", type=int, help="bulk requests per run (default 8, quick 1)")
    ap.add_argument(
        "--raw-commands",
        type=int,
        help="commands per raw one-per-save run (default 3000, quick 300)",
    )
    args = ap.parse_args()
    duration = args.duration or (1.0 if args.quick else 6.0)
    bulk_requests = args.bulk_requests or (1 if args.quick else 8)
    raw_commands = args.raw_commands or (300 if args.quick else 3000)
    bulk_commands = bulk_requests * args.bulk_size
    runs = args.runs
    total = Timer()

    print(f"Lodestone ingest benchmark, {now_utc()}, {revision()}, {machine()}, {load()}")
    print(
        f"clients={args.clients} runs={runs} duration={duration}s bulk={bulk_requests}x{args.bulk_size} "
        f"raw={raw_commands} commands{' (quick)' if args.quick else ''}"
    )
    print(
        "event: OreExtracted of 1000 kg ore (stores 2 rows: the batch's OreExtracted + the quota's Drawn)\n"
    )

    own = Series(f"own quota, {args.clients} clients")
    shared = Series(f"shared quota, {args.clients} clients")
    one = Series("own quota, 1 client")
    bulk = Series(f"bulk {args.bulk_size}/request, 1 client")
    raw1 = Series("raw: domain + save, 1 command/save")
    raw1_save = Series("raw: inside save only, 1/save")
    rawb = Series(f"raw: domain + save, {args.bulk_size} commands/save")
    rawb_save = Series(f"raw: inside save only, {args.bulk_size}/save")
    ex1 = Series("Ledger.execute, 1 command/call")
    exb = Series(f"Ledger.execute, {args.bulk_size} commands/call")
    memory: dict[str, int] = {}

    with temp_dir("lodestone-bench-ingest-") as tmp:
        (tmp / "raw").mkdir()
        inproc = InProcess(tmp / "raw" / "events.sqlite", "RAW")
        try:
            with server(tmp / "gateway") as srv:
                print(f"gateway: pid {srv.pid} on {srv.base}, data {srv.data_dir}")
                codes = [f"OP{i}" for i in range(args.clients)]
                ops = register_miners(srv.base, [*codes, "SHARED", "BULK"])
                own_ops = [ops[c] for c in codes]
                shared_ops = [ops["SHARED"]] * args.clients
                # warm-up: imports, caches, first snapshot paths
                single_run(srv.base, own_ops, "WARM", 0.5 if args.quick else 1.0, srv.cpu)
                bulk_run(
                    srv.base,
                    ops["BULK"],
                    bulk_bodies(ops["BULK"], "WARM", 1, min(200, args.bulk_size)),
                    min(200, args.bulk_size),
                    srv.cpu,
                )
                inproc.raw("WARM1", 200, 1)
                inproc.raw("WARMB", min(1000, args.bulk_size), args.bulk_size)
                inproc.execute("WARMX", 200, 1)

                # Runs interleave HTTP and in-process series, so that a burst of load from
                # other users of the machine hits both sides of a ratio alike.
                for r in range(runs):
                    for series, who in ((own, own_ops), (shared, shared_ops), (one, own_ops[:1])):
                        res = single_run(
                            srv.base,
                            who,
                            f"R{r}{series.name[:3].upper()}{len(who)}",
                            duration,
                            srv.cpu,
                        )
                        series.runs.append(res)
                        print(
                            f"  run {r + 1} {series.name:<34} {res.rate:8,.0f} events/s  ({res.events} events, {res.conflicts} x 409, {res.errors} errors)"
                        )
                    bodies = bulk_bodies(ops["BULK"], f"B{r}", bulk_requests, args.bulk_size)
                    res = bulk_run(srv.base, ops["BULK"], bodies, args.bulk_size, srv.cpu)
                    bulk.runs.append(res)
                    print(
                        f"  run {r + 1} {bulk.name:<34} {res.rate:8,.0f} events/s  ({res.events} events, {res.errors} errors)"
                    )
                    res, in_save = inproc.raw(f"R{r}", raw_commands, 1)
                    raw1.runs.append(res)
                    raw1_save.runs.append(RunResult(res.events, in_save))
                    res, in_save = inproc.raw(f"RB{r}", bulk_commands, args.bulk_size)
                    rawb.runs.append(res)
                    rawb_save.runs.append(RunResult(res.events, in_save))
                    ex1.runs.append(inproc.execute(f"X{r}", raw_commands // 2, 1))
                    exb.runs.append(inproc.execute(f"XB{r}", bulk_commands, args.bulk_size))
                    for series in (raw1, rawb, ex1, exb):
                        print(
                            f"  run {r + 1} {series.name:<34} {series.runs[-1].rate:8,.0f} events/s"
                        )
                memory = srv.memory()
        finally:
            inproc.close()

        # ---- d) where the time goes ------------------------------------------------------
        (tmp / "brk1").mkdir()
        (tmp / "brkb").mkdir()
        brk1 = breakdown(tmp / "brk1", 1, 60 if args.quick else 400)
        brkb = breakdown(tmp / "brkb", args.bulk_size, 1 if args.quick else 4)

    # ---- report -----------------------------------------------------------------------
    print()
    rows = []
    for x in (own, shared, one):
        rows.append(
            [
                f"HTTP single: {x.name}",
                x.rate,
                x.rates,
                x.latency(50),
                x.latency(99),
                x.cpu_per_event_ms,
                x.client_cpu_per_event_ms,
                f"{x.conflicts} / {x.errors}",
            ]
        )
    rows.append(
        [
            f"HTTP {bulk.name}",
            bulk.rate,
            bulk.rates,
            bulk.latency(50),
            bulk.latency(99),
            bulk.cpu_per_event_ms,
            bulk.client_cpu_per_event_ms,
            f"- / {bulk.errors}",
        ]
    )
    print(
        table(
            "Gateway over HTTP (events/s: median of runs; latency per request over all runs)",
            [
                "series",
                "events/s",
                "runs",
                "p50 ms",
                "p99 ms",
                "server CPU/ev ms",
                "client CPU/ev ms",
                "409 / errors",
            ],
            rows,
        )
    )
    print(f"gateway peak memory VmHWM {memory.get('VmHWM', 0) / 1024:.0f} MiB\n")
    rows = []
    for x in (raw1, raw1_save, rawb, rawb_save, ex1, exb):
        lat = x.latency(50) if x.runs[0].latencies else float("nan")
        cpu = x.cpu_per_event_ms if x.runs[0].server_cpu == x.runs[0].server_cpu else float("nan")
        rows.append([x.name, x.rate, x.rates, lat, cpu])
    print(
        table(
            "In process, no HTTP, same SQLite settings (events/s: median of runs)",
            ["series", "events/s", "runs", "p50 ms/call", "CPU/event ms"],
            rows,
        )
    )
    print()
    # (what, measured, reference): events/s ratio of their paired runs, CPU per event the
    # other way round
    compared = [
        ("HTTP single, own quota, 8 clients / raw 1 command per save", own, raw1),
        ("HTTP single, shared quota, 8 clients / raw 1 command per save", shared, raw1),
        ("HTTP single, own quota, 1 client / raw 1 command per save", one, raw1),
        ("HTTP single, own quota, 8 clients / Ledger.execute 1 per call", own, ex1),
        ("Ledger.execute 1 per call / raw 1 per save", ex1, raw1),
        (f"HTTP bulk / raw {args.bulk_size} per save", bulk, rawb),
        (f"HTTP bulk / Ledger.execute {args.bulk_size} per call", bulk, exb),
        (f"Ledger.execute {args.bulk_size} per call / raw {args.bulk_size} per save", exb, rawb),
    ]
    ratios = [
        (what, paired(a, b), b.cpu_per_event_ms / a.cpu_per_event_ms) for what, a, b in compared
    ]
    print(
        table(
            "Ratios, gateway / reference (1.0 = no cost over the reference)",
            [
                "ratio",
                "events/s ratio (median of paired runs)",
                "CPU/event ratio (reference / gateway)",
            ],
            [[a, f"{b:.3f}", f"{c:.3f}"] for a, b, c in ratios],
        )
    )
    print()
    goals = [
        [
            f"single-event, {args.clients} clients, own quota",
            ">= 1,000 events/s",
            f"{own.rate:,.0f}",
            "met" if own.rate >= 1000 else "NOT met",
        ],
        [
            f"bulk {args.bulk_size}/request",
            ">= 10,000 events/s",
            f"{bulk.rate:,.0f}",
            "met" if bulk.rate >= 10000 else "NOT met",
        ],
    ]
    print(table("Goals", ["figure", "goal", "measured", ""], goals))
    print()
    labels = list(dict.fromkeys([*brk1, *brkb]))
    top = [
        k for k in labels if not k.startswith("ledger: ") or k.startswith("ledger: Ledger.execute")
    ]
    nested = [
        k for k in labels if k.startswith("ledger: ") and not k.startswith("ledger: Ledger.execute")
    ]
    nan2 = (float("nan"), float("nan"))
    rows = []
    for k in top:
        rows.append([k, *brk1.get(k, nan2), *brkb.get(k, nan2)])
        if k.startswith("ledger: Ledger.execute"):
            rows += [
                [
                    "    of which " + n.removeprefix("ledger: "),
                    *brk1.get(n, nan2),
                    *brkb.get(n, nan2),
                ]
                for n in nested
            ]
    sums = [sum(d.get(k, nan2)[i] for k in top) for d in (brk1, brkb) for i in (0, 1)]
    rows.append(["sum of the steps above (one thread, no HTTP)", *sums])
    nan = float("nan")
    rows.append(
        [
            "gateway server CPU/event measured over HTTP (1 client / bulk)",
            nan,
            one.cpu_per_event_ms,
            nan,
            bulk.cpu_per_event_ms,
        ]
    )
    rows.append(
        [
            "rest (CPU): uvicorn, HTTP, FastAPI routing + dependencies, threads",
            nan,
            one.cpu_per_event_ms - sums[1],
            nan,
            bulk.cpu_per_event_ms - sums[3],
        ]
    )
    print(
        table(
            "Where the time goes: the gateway's work per OreExtracted, step by step in one thread (ms per event; wall includes waiting for fsync)",
            [
                "step",
                "1/req wall",
                "1/req CPU",
                f"{args.bulk_size}/req wall",
                f"{args.bulk_size}/req CPU",
            ],
            [[r[0], *(f"{x:.3f}" if x == x else "-" for x in r[1:])] for r in rows],
        )
    )
    print(f"\ntotal time {total.elapsed():.0f} s; {load()}")
    from _common import goal  # the goal lines bench/summary.py collects

    goal(
        "ingest.single",
        f"single-event requests, {args.clients} clients, own quotas",
        own.rate,
        "events/s",
        at_least=1000,
    )
    goal(
        "ingest.bulk",
        f"bulk endpoint, {args.bulk_size:,} events per request",
        bulk.rate,
        "events/s",
        at_least=10000,
    )


if __name__ == "__main__":
    main()
