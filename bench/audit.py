"""Audit: a batch's history and its state as of a moment over HTTP, and verification of
a 1,000,000-event ledger.

    .venv/bin/python bench/audit.py            # both parts (first run builds the stores)
    .venv/bin/python bench/audit.py --quick    # 30 requests per query, 100,000-event ledger
    options: --part history|verify|both --requests N --events N --runs N --split-events N

Part 1, history and as-of (goal: p95 < 50 ms for a batch with 1,000 events and 1,000
ancestors):

1. Builds (once, cached in bench/.data/audit-<key>/) a store directly on the SQLite file
   with ``Ledger.execute(admin, chunk, bulk=True)``, every invariant checked by the ledger:
   - 4 mines (3 CN, 1 MM) x 250 ore lots under mining quotas -> beneficiation at each
     mine, 25 ore lots per concentrate (40 concentrates) -> a merge per mine -> sold to
     the processor PROCO (PRO-1) -> merged into the target ``PROCO/FEED-0001``: 1,044
     ancestors (1,000 ore lots, 40 concentrates, 4 mine merges);
   - then 100 cycles of 10 steps on the target, one ``execute`` per cycle (so 100
     transactions, 100 record times): move to PRO-2, quarantine, release (an admin),
     split off a 1 kg part, move back to PRO-1, sale to the trader TRADCO (to the
     warehouse WH-1), TRADCO moves it to WH-2, sale back to PROCO (to PRO-1), quarantine,
     release: the target has 1,001 events (its creation + 1,000 steps), each step dated an
     hour after the one before;
   - the genealogy read model caught up and the store checkpointed (``Checkpointer``), so
     the server finds nothing to do at start-up.
2. Starts ``lodestone serve`` on it and measures, one client with keep-alive and an
   auditor's key, --requests requests each after 3 warm-up requests:
     GET /v1/batches/PROCO/FEED-0001/history
     GET /v1/batches/PROCO/FEED-0001/history?lineage=upstream
     GET /v1/batches/PROCO/FEED-0001/as-of?version=500
     GET /v1/batches/PROCO/FEED-0001/as-of?known_at=<record time of version 501>
     GET /v1/batches/PROCO/FEED-0001/as-of?happened_at=<event time of version 501>
   p50 / p95 / max, body size, a sanity summary, the server's VmHWM.
3. Where the time goes: the query layer's own calls that routes/audit.py makes
   (lodestone.reads.history.batch_history and batch_as_of), run in this process with
   the rows and view behind timing proxies and the functions they call timed one by one
   (the lineage, the SQL, the hash checks, plain entries, reporter labels; as_of and its
   repository reads, the batch state, trace and provenance), then FastAPI's response
   validation and JSON encoding through the route's own response field, median ms.

Part 2, verification (goal: >= 50,000 events/s):

1. The deterministic demo store of >= --events events (bench/_common.demo_store: ~15
   minutes the first time, cached), copied to a temporary directory.
2. A child process makes its checkpoints with ``Checkpointer(recorder, store).make()``
   (events/s, CPU us/event, VmHWM).
3. --runs child processes each time ``verify(recorder, store, progress, rows=...)`` as the CLI wires
   it (``build_ledger`` / ``build_checkpoint_store`` on the data directory): events/s,
   CPU us/event, peak memory (VmHWM of the child at the end, also sampled by the parent)
   and the report (ok, events, aggregates, checkpoints). Runs 1, 3, ... show a Rich
   progress bar fed by verify's ``progress`` callback (on this terminal, from the child,
   as ``lodestone verify`` will); runs 2, 4, ... pass no callback. The headline is the
   median of the runs without the bar; the bar's runs are reported beside it.
4. Where the time goes: the store read once more page by page (verify's page size), each
   part of verify's work timed apart in this process: reading rows (the library's
   ``EventRows.scan``; the library's ``select_notifications`` beside it), the hash
   recompute (``integrity.check_stored``), the Merkle leaves and roots.

Nothing asserts on timings: this is a shared, noisy 2-core machine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from _common import (
    MINES,
    Steps,
    StoreBuilder,
    Timed,
    Timer,
    bearer,
    beneficiation,
    build_cached,
    cache_home,
    child_result,
    clean_env,
    demo_store,
    load,
    machine,
    median,
    mine_merges,
    mine_registry,
    now_utc,
    ore_lots,
    pct,
    proc_status,
    revision,
    run_main,
    server,
    source_digest,
    spawn,
    spread,
    step_medians,
    table,
    temp_dir,
    timed,
)

BUILD_VERSION = 1  # bump when the build below changes what it records
D = Decimal
TARGET = "PROCO/FEED-0001"
#: What the recorded events depend on besides the domain and the ledger.
SOURCES = ("lodestone.integrity",)
HISTORY_GOAL_MS = 50.0
VERIFY_GOAL = 50_000.0


# --------------------------------------------------------------------------------------
# part 1: the store with a 1,001-event batch and 1,044 ancestors
# --------------------------------------------------------------------------------------


class Builder(StoreBuilder):
    def build(self, ore: int, group: int, cycles: int) -> None:
        from lodestone.gateway.auth import hash_key
        from lodestone.ledger import commands as c

        # Every step is dated on a timeline that starts a year before the build and
        # ends well before now (a report may not be dated in the future).
        base = (datetime.now(UTC) - timedelta(days=365)).replace(
            hour=0, minute=0, second=0, microsecond=0
        )

        reg: list[Any] = []
        for code, country, _ in MINES:
            reg += mine_registry(code, f"Mine {code}", country)
        reg += [
            c.RegisterActor("PROCO", "Processing Co", "CN", ["separator"]),
            c.RegisterFacility("PRO-1", "Plant one", "separation_plant", "PROCO", "CN"),
            c.RegisterFacility("PRO-2", "Plant two", "separation_plant", "PROCO", "CN"),
            c.RegisterActor("TRADCO", "Trading Co", "CN", ["trader"]),
            c.RegisterActor("LOGCO", "Logistics Co", "CN", ["logistics"]),
            c.RegisterFacility("WH-1", "Warehouse one", "warehouse", "LOGCO", "CN"),
            c.RegisterFacility("WH-2", "Warehouse two", "warehouse", "LOGCO", "CN"),
            c.IssueCredential(
                key_hash=hash_key(self.auditor_key), role="auditor", label="bench auditor"
            ),
        ]
        self.run("registry", reg)

        cmds, ores = ore_lots(ore // len(MINES), start=base)
        self.run("ore lots", cmds)

        # beneficiation: `group` ore lots -> one concentrate (95 % recovery, 60 % RE)
        cmds, cons = beneficiation(ores, group, start=base + timedelta(days=30))
        self.run("beneficiation", cmds)

        # a merge per mine, sold to PROCO at PRO-1; PROCO merges the four: the target
        at = base + timedelta(days=40)
        cmds, merged = mine_merges(cons, "PROCO", "PRO-1", start=at)
        cmds.append(
            c.Merge(
                lot_code=TARGET.split("/")[1],
                inputs=[(x.ref, x.kg) for x in merged],
                actor="PROCO",
                occurred_at=at + timedelta(days=5),
            )
        )
        self.run("merges, sales, the target merge", cmds)

        # cycles of 10 steps on the target, one execute (transaction) per cycle
        at = base + timedelta(days=60)
        cmds = []
        k = 0

        def when() -> datetime:
            nonlocal k
            k += 1
            return at + timedelta(hours=k)

        for n in range(cycles):
            cmds += [
                c.MoveBatch(batch=TARGET, to_facility="PRO-2", actor="PROCO", occurred_at=when()),
                c.Quarantine(batch=TARGET, reason=f"assay check {n}", occurred_at=when()),
                c.Release(batch=TARGET, reason=f"assay {n} within limits", occurred_at=when()),
                c.Split(
                    batch=TARGET,
                    parts=[(f"FEED-0001-S{n:03d}", D(1))],
                    actor="PROCO",
                    occurred_at=when(),
                ),
                c.MoveBatch(batch=TARGET, to_facility="PRO-1", actor="PROCO", occurred_at=when()),
                c.TransferCustody(
                    batch=TARGET,
                    buyer="TRADCO",
                    contract=f"K-T-{n:03d}",
                    to_facility="WH-1",
                    price=D("1000000"),
                    currency="USD",
                    actor="PROCO",
                    occurred_at=when(),
                ),
                c.MoveBatch(batch=TARGET, to_facility="WH-2", actor="TRADCO", occurred_at=when()),
                c.TransferCustody(
                    batch=TARGET,
                    buyer="PROCO",
                    contract=f"K-P-{n:03d}",
                    to_facility="PRO-1",
                    price=D("1010000"),
                    currency="USD",
                    actor="TRADCO",
                    occurred_at=when(),
                ),
                c.Quarantine(batch=TARGET, reason=f"customs query {n}", occurred_at=when()),
                c.Release(batch=TARGET, reason=f"customs query {n} answered", occurred_at=when()),
            ]
        self.run(f"{cycles} cycles of 10 steps on the target", cmds, per_call=10)


def finish_store(data_dir: Path) -> dict[str, Any]:
    """Catch the genealogy read model up, checkpoint every event, and read the facts the
    queries need: the target's events, its ancestors, the middle version's two times."""
    from lodestone.audit.checkpointer import Checkpointer
    from lodestone.bootstrap.settings import Settings
    from lodestone.bootstrap.stores import (
        build_checkpoint_store,
        build_genealogy_view,
        build_ledger,
    )
    from lodestone.projections import genealogy
    from lodestone.streaming.projector import genealogy_projector

    settings = Settings(data_dir=data_dir)
    ledger = build_ledger(settings)
    view = build_genealogy_view(settings)
    store = build_checkpoint_store(settings)
    try:
        applied = genealogy_projector(ledger, view).catch_up()
        made = Checkpointer(ledger.recorder, store).make()
        target = ledger.batch(TARGET)
        ancestors = len(set(genealogy.upstream(view, target.id).batches) - {target.id})
        middle = target.version // 2 + 1
        with sqlite3.connect(data_dir / "events.sqlite") as db:
            (state,) = db.execute(
                "SELECT state FROM stored_events WHERE originator_id = ? AND originator_version = ?",
                (target.id.hex, middle),
            ).fetchone()
            events = db.execute("SELECT MAX(rowid) FROM stored_events").fetchone()[0]
        stored = json.loads(state)
        return {
            "projected": applied,
            "checkpoints": len(made),
            "events": events,
            "target_id": str(target.id),
            "target_events": target.version,
            "ancestors": ancestors,
            "middle_version": middle,
            "middle_known_at": stored["timestamp"]["_data_"],
            "middle_happened_at": stored["occurred_at"]["_data_"],
        }
    finally:
        store.close()
        view.close()
        ledger.close()


def history_store(ore: int, group: int, cycles: int, rebuild: bool) -> tuple[Path, dict[str, Any]]:
    params = {"v": BUILD_VERSION, "ore": ore, "group": group, "cycles": cycles}
    key, home = cache_home("audit", params)
    meta_path = home / "meta.json"
    print(f"store: {params} -> {home}")
    if meta_path.exists() and not rebuild:
        meta = json.loads(meta_path.read_text())
        print(f"reusing the store built {meta['built']} by {meta['revision']}")
        if meta.get("code") != source_digest(*SOURCES):
            print(
                "note: the domain, ledger or integrity code changed since; pass --rebuild to record the store again"
            )
        return home / "data", meta
    auditor_key = "bench-auditor-" + key
    print(f"building the store ({ore:,} ore lots, {cycles} cycles of 10 steps on {TARGET}) ...")

    def build(building: Path) -> dict[str, Any]:
        (building / "data").mkdir()
        b = Builder(building / "data", auditor_key)
        try:
            b.build(ore, group, cycles)
        finally:
            b.close()
        facts = finish_store(building / "data")
        return {
            "params": params,
            "code": source_digest(*SOURCES),
            "revision": revision(),
            "auditor_key": auditor_key,
            "built": now_utc(),
            "phases": b.phases,
            **facts,
        }

    return home / "data", build_cached(home, build)


# --------------------------------------------------------------------------------------
# part 1: queries over HTTP
# --------------------------------------------------------------------------------------


@dataclass
class Query:
    name: str
    path: str
    params: dict[str, str]
    latencies: list[float] = field(default_factory=list)
    server_cpu: float = 0.0  # seconds, over the measured requests
    size: int = 0
    summary: str = ""


def summarise(body: dict[str, Any]) -> str:
    if "events" in body:
        events = body["events"]
        batches = len({e["aggregate_id"] for e in events})
        intact = sum(1 for e in events if e["intact"])
        return f"{len(events):,} events of {batches:,} batches, {intact:,} intact"
    parts = [
        f"version {body['version']}",
        f"{body['events_after']} events after",
        f"status {body['state']['status'] if body.get('state') else '-'}",
    ]
    if "upstream" in body:
        summary = body["upstream"].get("summary", {})
        parts.append(
            "upstream "
            + ", ".join(f"{k} {len(v) if isinstance(v, list) else v}" for k, v in summary.items())
        )
    if "provenance" in body:
        parts.append(f"provenance of {len(body['provenance'].get('elements', {}))} elements")
    return "; ".join(parts)


def measure(
    base: str,
    key: str,
    queries: list[Query],
    requests: int,
    warmup: int,
    server_cpu: Callable[[], float],
) -> None:
    with httpx.Client(base_url=base, headers=bearer(key), timeout=120) as c:
        for q in queries:
            for _ in range(warmup):
                c.get(q.path, params=q.params).raise_for_status()
            cpu0 = server_cpu()
            for _ in range(requests):
                t = time.perf_counter()
                r = c.get(q.path, params=q.params)
                q.latencies.append(time.perf_counter() - t)
                if r.status_code != 200:
                    raise RuntimeError(f"GET {q.path} {q.params}: {r.status_code} {r.text[:300]}")
            q.server_cpu = server_cpu() - cpu0
            q.size = len(r.content)
            q.summary = summarise(r.json())
            print(
                f"  {q.name}: p50 {pct(q.latencies, 50) * 1000:.1f} ms, p95 {pct(q.latencies, 95) * 1000:.1f} ms",
                flush=True,
            )


@contextlib.contextmanager
def stand_ins(module: Any, **values: Any) -> Iterator[None]:
    """Module globals replaced by ``values`` (timed stand-ins) for the duration, in this
    process only."""
    real = {name: getattr(module, name) for name in values}
    for name, value in values.items():
        setattr(module, name, value)
    try:
        yield
    finally:
        for name, value in real.items():
            setattr(module, name, value)


VIEW = "view queries (ancestors CTE, batches, names, trades)"
VIEW_LABELS = {m: VIEW for m in ("ancestors", "descendants", "batches", "names", "trades")}
BATCH_ID = "ledger.batch(ref) -> id (repository.get)"
SQL = "rows.for_aggregates (SQL, Row objects)"
ENTRIES = "plain_entries"
CHECK = "entries: integrity.check_stored (hash recompute)"
LINEAGE = "lineage_ids: genealogy.upstream"
REPO = "repository.get(id, version=N) (snapshot + replay)"
BATCHES_LABELS = {
    "state": "reads: batches.state",
    "present_trace": "reads: batches.present_trace",
    "present_provenance": "reads: batches.present_provenance",
}
GENEALOGY_LABELS = {
    "upstream": "reads: genealogy.upstream",
    "provenance": "reads: genealogy.provenance",
}

#: (label, indent) in print order; "rest" lines are the parent minus its timed parts.
HISTORY_ROWS = [
    (BATCH_ID, 0),
    ("fresh_view (projector catch-up)", 0),
    ("history.history", 0),
    (LINEAGE, 1),
    (VIEW, 2),
    (SQL, 1),
    (CHECK, 1),
    ("plain_entries: the rest (json.loads, dicts)", 1),
    ("reads: reporter labels", 0),
    ("FastAPI: response validation (TypeAdapter)", 0),
    ("FastAPI: JSON encoding (serialize_json)", 0),
    ("total in process", 0),
    ("total in process, CPU time", 0),
]
AS_OF_ROWS = [
    (BATCH_ID, 0),
    ("history.as_of", 0),
    (SQL, 1),
    ("times of each own event (json.loads of the state)", 1),
    (REPO, 1),
    ("reads: batches.state", 0),
    ("fresh_view (projector catch-up)", 0),
    ("reads: genealogy.upstream", 0),
    (VIEW, 1),
    ("reads: batches.present_trace", 0),
    ("reads: genealogy.provenance", 0),
    ("reads: batches.present_provenance", 0),
    ("FastAPI: response validation (TypeAdapter)", 0),
    ("FastAPI: JSON encoding (serialize_json)", 0),
    ("total in process", 0),
    ("total in process, CPU time", 0),
]


def breakdown(
    data_dir: Path, meta: dict[str, Any], reps: int
) -> list[tuple[str, dict[str, float]]]:
    """The work of each query, step by step in one thread, without HTTP: the query
    layer's calls routes/audit.py makes (reads.history.batch_history and batch_as_of,
    given the rows and view behind timing proxies; the functions they call by module
    global replaced by timed stand-ins), then FastAPI's response validation and JSON
    encoding through the route's own response field. Median ms per step over ``reps``
    runs."""
    from fastapi.routing import iter_route_contexts

    from lodestone.bootstrap.settings import Settings
    from lodestone.domain.access import Principal, Role
    from lodestone.gateway.app import create_app
    from lodestone.gateway.runtime import Runtime
    from lodestone.projections import genealogy
    from lodestone.reads import batches
    from lodestone.reads import history as hist

    settings = Settings(data_dir=data_dir)
    # The routes' own response fields: FastAPI validates the returned dict with it and
    # encodes it to JSON bytes (serialize_json) since no response class is set. The app
    # holds its routers as included-router entries: iter_route_contexts walks into them
    # (as FastAPI's OpenAPI generation does), each with its full path.
    fields = {
        r.path: r.response_field
        for r in iter_route_contexts(create_app(settings).routes)
        if getattr(r, "response_field", None) is not None
    }
    runtime = Runtime(settings)
    auditor = Principal("bench-auditor", Role.AUDITOR)
    actor, lot = TARGET.split("/")
    cases: list[tuple[str, dict[str, Any]]] = [
        ("history", {}),
        ("history?lineage=upstream", {"lineage": "upstream"}),
        ("as-of?version=500", {"version": 500}),
        ("as-of?known_at=<middle>", {"known_at": datetime.fromisoformat(meta["middle_known_at"])}),
        (
            "as-of?happened_at=<middle>",
            {"happened_at": datetime.fromisoformat(meta["middle_happened_at"])},
        ),
    ]
    hist_as_of = hist.as_of
    out = []
    try:
        for name, args in cases:
            runs: list[dict[str, float]] = []
            for _ in range(reps + 2):
                acc: dict[str, float] = {}
                step = Steps(acc)
                rows = Timed(runtime.rows, {"for_aggregates": SQL}, acc)

                def view(acc: dict[str, float] = acc) -> Any:
                    fresh = timed(runtime.fresh_view, "fresh_view (projector catch-up)", acc)
                    return Timed(fresh(), VIEW_LABELS, acc)

                def as_of(
                    ledger: Any, rows: Any, id: Any, acc: dict[str, float] = acc, **moment: Any
                ) -> Any:
                    # Only as_of's own repository reads: batches.state reads the
                    # parents' references through the same ledger.
                    repository = Timed(ledger, {}, acc, {"repository": {"get": REPO}})
                    return timed(hist_as_of, "history.as_of", acc)(repository, rows, id, **moment)

                with stand_ins(
                    hist,
                    batch_id=timed(batches.batch_id, BATCH_ID, acc),
                    lineage_ids=timed(hist.lineage_ids, LINEAGE, acc),
                    plain_entries=timed(hist.plain_entries, ENTRIES, acc),
                    label_reporters=timed(hist.label_reporters, "reads: reporter labels", acc),
                    as_of=as_of,
                    integrity=Timed(hist.integrity, {"check_stored": CHECK}, acc),
                    batches=Timed(batches, BATCHES_LABELS, acc),
                    genealogy=Timed(genealogy, GENEALOGY_LABELS, acc),
                ):
                    t0, c0 = time.perf_counter(), time.process_time()
                    body: Any
                    if name.startswith("history"):
                        body = hist.batch_history(
                            runtime.ledger, rows, view, actor, lot, args.get("lineage", "none")
                        )
                        path = "/v1/batches/{actor}/{lot}/history"
                    else:
                        body = hist.batch_as_of(
                            runtime.ledger, rows, view, actor, lot, auditor, **args
                        )
                        path = "/v1/batches/{actor}/{lot}/as-of"
                    rf = fields[path]
                    value, errors = step(
                        "FastAPI: response validation (TypeAdapter)",
                        rf.validate,
                        body,
                        {},
                        loc=("response",),
                    )
                    assert not errors, errors
                    step("FastAPI: JSON encoding (serialize_json)", rf.serialize_json, value)
                    acc["total in process"] = time.perf_counter() - t0
                    acc["total in process, CPU time"] = time.process_time() - c0
                if name.startswith("history"):
                    # lineage_ids, the rows' SQL and plain_entries, each called apart
                    acc["history.history"] = acc.get(LINEAGE, 0.0) + acc[SQL] + acc[ENTRIES]
                    acc["plain_entries: the rest (json.loads, dicts)"] = acc[ENTRIES] - acc[CHECK]
                else:
                    acc["times of each own event (json.loads of the state)"] = (
                        acc["history.as_of"] - acc[SQL] - acc.get(REPO, 0.0)
                    )
                runs.append(acc)
            out.append((name, step_medians(runs, warmup=2)))
    finally:
        runtime.stop()
    return out


def print_breakdown(
    parts: list[tuple[str, dict[str, float]]], http: dict[str, tuple[float, float]]
) -> None:
    for title, order, names in (
        ("history", HISTORY_ROWS, [n for n, _ in parts if n.startswith("history")]),
        ("as-of", AS_OF_ROWS, [n for n, _ in parts if n.startswith("as-of")]),
    ):
        data = dict(parts)
        rows = [
            ["  " * indent + label, *(data[n].get(label.strip(), float("nan")) for n in names)]
            for label, indent in order
        ]
        rows.append(["HTTP p50 (measured above)", *(http[n][0] for n in names)])
        rows.append(["server CPU per request (measured above)", *(http[n][1] for n in names)])
        print(
            table(
                f"Where the time goes, {title}: the route's steps in one thread, no HTTP "
                "(median ms; indented = part of the line above)",
                ["step", *names],
                rows,
            )
        )
        print()


def part_history(args: argparse.Namespace) -> list[str]:
    print("\n== Part 1: history and as-of of a batch with 1,000 events and 1,000 ancestors ==")
    data_dir, meta = history_store(args.ore, args.group, args.cycles, args.rebuild)
    rows = [[n, k, s, k / s if s else float("nan")] for n, k, s in meta["phases"]]
    print(
        table(
            "Build: Ledger.execute(admin, commands, bulk=True) (figures from the build)",
            ["phase", "commands", "seconds", "commands/s"],
            rows,
        )
    )
    print(
        f"store: {meta['events']:,} stored events; {TARGET}: {meta['target_events']:,} events, "
        f"{meta['ancestors']:,} ancestors; {meta['checkpoints']} checkpoints; middle version "
        f"{meta['middle_version']}: recorded {meta['middle_known_at']}, happened {meta['middle_happened_at']}"
    )
    base = f"/v1/batches/{TARGET}"
    queries = [
        Query("history", f"{base}/history", {}),
        Query("history?lineage=upstream", f"{base}/history", {"lineage": "upstream"}),
        Query("as-of?version=500", f"{base}/as-of", {"version": "500"}),
        Query("as-of?known_at=<middle>", f"{base}/as-of", {"known_at": meta["middle_known_at"]}),
        Query(
            "as-of?happened_at=<middle>",
            f"{base}/as-of",
            {"happened_at": meta["middle_happened_at"]},
        ),
    ]
    with server(data_dir) as srv:
        started = srv.memory()
        print(
            f"\nserver pid {srv.pid} on {srv.base}: VmHWM after start-up {started.get('VmHWM', 0) / 1024:.0f} MiB; {load()}"
        )
        measure(srv.base, meta["auditor_key"], queries, args.requests, 3, srv.cpu)
        after = srv.memory()
    print()
    lines = []
    rows = []
    for q in queries:
        p50, p95 = pct(q.latencies, 50) * 1000, pct(q.latencies, 95) * 1000
        verdict = "met" if p95 < HISTORY_GOAL_MS else "NOT met"
        rows.append(
            [
                q.name,
                len(q.latencies),
                p50,
                p95,
                max(q.latencies) * 1000,
                q.server_cpu / len(q.latencies) * 1000,
                q.size / 1024,
                verdict,
            ]
        )
        lines.append(f"{q.name}: p50 {p50:.0f} ms, p95 {p95:.0f} ms ({verdict})")
    print(
        table(
            f"GET over HTTP, one client, keep-alive, auditor key (goal: p95 < {HISTORY_GOAL_MS:.0f} ms)",
            [
                "query",
                "requests",
                "p50 ms",
                "p95 ms",
                "max ms",
                "server CPU ms/request",
                "body KiB",
                "goal",
            ],
            rows,
        )
    )
    for q in queries:
        print(f"  {q.name}: {q.summary}")
    print(
        f"\nserver VmHWM: {started.get('VmHWM', 0) / 1024:.0f} MiB after start-up, "
        f"{after.get('VmHWM', 0) / 1024:.0f} MiB after the queries; {load()}"
    )
    print()
    parts = breakdown(data_dir, meta, args.reps)
    print_breakdown(
        parts,
        {
            q.name: (pct(q.latencies, 50) * 1000, q.server_cpu / len(q.latencies) * 1000)
            for q in queries
        },
    )
    from _common import goal  # the goal lines bench/summary.py collects

    for q in queries:
        if q.name != "history?lineage=upstream":  # the lineage has no goal of its own
            goal(
                f"audit.{q.name.split('=')[0]}",
                f"{q.name} p95, {meta['target_events']:,} events, {meta['ancestors']:,} ancestors",
                pct(q.latencies, 95) * 1000,
                "ms",
                under=HISTORY_GOAL_MS,
            )
    return lines


# --------------------------------------------------------------------------------------
# part 2: verification of a 1,000,000-event ledger
# --------------------------------------------------------------------------------------


def child(kind: str, data_dir: Path, out: Path, show_progress: bool) -> None:
    """Runs in a child process: the checkpointer or verify, as the CLI wires them."""
    from lodestone.audit.checkpointer import Checkpointer
    from lodestone.audit.verify import verify
    from lodestone.bootstrap.settings import Settings
    from lodestone.bootstrap.stores import build_checkpoint_store, build_event_rows, build_ledger

    settings = Settings(data_dir=data_dir)
    ledger = build_ledger(settings)
    store = build_checkpoint_store(settings)
    rows = build_event_rows(settings)
    top = ledger.recorder.max_notification_id() or 0
    before = proc_status(os.getpid())
    samples: list[tuple[float, int]] = []
    result: dict[str, Any] = {}
    timer = Timer()
    cpu0 = time.process_time()
    if kind == "checkpoint":
        made = Checkpointer(ledger.recorder, store).make()
        result = {"checkpoints": len(made), "events": sum(c["count"] for c in made)}
    else:
        done = [0, 0.0]

        def sample(n: int) -> None:
            done[0] += n
            if timer.elapsed() - done[1] >= 2:
                done[1] = timer.elapsed()
                samples.append((round(done[1], 2), done[0]))

        if show_progress:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            columns = (
                TextColumn("verify"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]} events/s"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
            )
            with Progress(*columns, console=Console(stderr=True)) as bar:
                task = bar.add_task("verify", total=top, rate="-")

                def progress(n: int) -> None:
                    sample(n)
                    bar.update(task, advance=n, rate=f"{done[0] / max(timer.elapsed(), 1e-9):,.0f}")

                report = verify(ledger.recorder, store, progress=progress, rows=rows)
        else:
            report = verify(ledger.recorder, store, rows=rows)
        result = {
            "ok": report.ok,
            "events": report.events,
            "aggregates": report.aggregates,
            "checkpoints": report.checkpoints,
            "covered_up_to": report.covered_up_to,
            "uncovered_events": report.uncovered_events,
            "first_problem": report.as_dict()["first_problem"],
        }
    seconds = timer.elapsed()
    cpu = time.process_time() - cpu0
    after = proc_status(os.getpid())
    result |= {
        "seconds": seconds,
        "cpu": cpu,
        "vmhwm_kb": after.get("VmHWM", 0),
        "vmhwm_before_kb": before.get("VmHWM", 0),
        "samples": samples,
        "top": top,
    }
    out.write_text(json.dumps(result))
    store.close()
    ledger.close()


def run_child(
    kind: str, data_dir: Path, tmp: Path, run: int, show_progress: bool, timeout: float
) -> dict[str, Any]:
    out = tmp / f"{kind}{run}.json"
    log = tmp / f"{kind}{run}.log"
    argv = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        kind,
        "--data-dir",
        str(data_dir),
        "--out",
        str(out),
    ]
    if show_progress:
        argv.append("--show-progress")
    proc = spawn(argv, env=clean_env(), log_path=log, stderr_to_parent=show_progress)
    return child_result(proc, kind, out, log, timeout, poll=0.2)


PARTS = ("read", "sqlite", "hash", "leaf", "root")


class Clock:
    """Wall and CPU time per part: ``with clock("part"): ...``."""

    def __init__(self) -> None:
        self.wall = dict.fromkeys(PARTS, 0.0)
        self.cpu = dict.fromkeys(PARTS, 0.0)
        self._part = ""

    def __call__(self, part: str) -> Clock:
        self._part = part
        return self

    def __enter__(self) -> None:
        self._t, self._c = time.perf_counter(), time.process_time()

    def __exit__(self, *_: object) -> None:
        self.wall[self._part] += time.perf_counter() - self._t
        self.cpu[self._part] += time.process_time() - self._c


def split(data_dir: Path, limit: int | None) -> tuple[int, Clock]:
    """verify's work, part by part, over the store in verify's pages (this process):
    each part timed over a whole page (or a whole checkpoint for the roots)."""
    from lodestone import integrity
    from lodestone.audit.verify import PAGE
    from lodestone.bootstrap.settings import Settings
    from lodestone.bootstrap.stores import build_checkpoint_store, build_event_rows, build_ledger

    settings = Settings(data_dir=data_dir)
    ledger = build_ledger(settings)
    store = build_checkpoint_store(settings)
    rows = build_event_rows(settings)
    recorder = ledger.recorder
    top = recorder.max_notification_id() or 0
    if limit:
        top = min(top, limit)
    ends = [cp["last_position"] for cp in store.list()]
    clock = Clock()
    count = 0
    position = 1
    pending: list[tuple[int, bytes]] = []  # (position, leaf) not yet under a root
    end_iter = iter(ends)
    end = next(end_iter, None)
    try:
        while position <= top:
            with clock("read"):
                page = rows.scan(position, PAGE, top)
            if not page:
                break
            with clock("sqlite"):
                recorder.select_notifications(position, PAGE, stop=top)
            with clock("hash"):
                digests = [integrity.check_stored(i, v, t, st)[0] for _, i, v, t, st in page]
            with clock("leaf"):
                pending += [
                    (r[0], integrity.leaf_hash(r[0], d or ""))
                    for r, d in zip(page, digests, strict=True)
                ]
            while end is not None and pending and pending[-1][0] >= end:
                cut = sum(1 for p, _ in pending if p <= end)
                with clock("root"):
                    integrity.merkle_root([leaf for _, leaf in pending[:cut]])
                pending = pending[cut:]
                end = next(end_iter, None)
            count += len(page)
            position = page[-1][0] + 1
        if pending:
            with clock("root"):
                integrity.merkle_root([leaf for _, leaf in pending])
    finally:
        rows.close()
        store.close()
        ledger.close()
    return count, clock


def part_verify(args: argparse.Namespace) -> list[str]:
    print(f"\n== Part 2: verification of a {args.events:,}-event ledger ==")
    store = demo_store(args.events, seed=args.seed)
    print(
        f"event store: demo seed {store.meta['seed']}, {store.meta['commands']:,} commands, {store.events:,} events, "
        f"built {store.meta['built']} in {store.meta['build_seconds']:.0f} s ({store.home})"
    )
    lines: list[str] = []
    with temp_dir("lodestone-bench-audit-") as tmp:
        data_dir = tmp / "data"
        data_dir.mkdir()
        t = Timer()
        shutil.copyfile(store.path, data_dir / "events.sqlite")
        print(
            f"copied events.sqlite ({store.path.stat().st_size / 2**20:,.0f} MiB) in {t.elapsed():.1f} s; {load()}"
        )

        cp = run_child("checkpoint", data_dir, tmp, 0, False, args.timeout)
        print(
            f"checkpoints: {cp['checkpoints']:,} made over {cp['events']:,} events in {cp['seconds']:.1f} s = "
            f"{cp['events'] / cp['seconds']:,.0f} events/s, CPU {cp['cpu'] / cp['events'] * 1e6:.1f} us/event, "
            f"VmHWM {cp['vmhwm_kb'] / 1024:.0f} MiB; {load()}",
            flush=True,
        )
        results = []
        for r in range(args.runs):
            show = r % 2 == 0  # alternate: bar, none, bar, none ...
            res = run_child("verify", data_dir, tmp, r, show, args.timeout)
            res["progress"] = "Rich bar" if show else "none"
            results.append(res)
            print(
                f"  verify run {r + 1} (progress: {res['progress']}): {res['events']:,} events in {res['seconds']:.1f} s = "
                f"{res['events'] / res['seconds']:,.0f} events/s, VmHWM {res['vmhwm_kb'] / 1024:.0f} MiB, "
                f"report ok={res['ok']}; {load()}",
                flush=True,
            )
        limit = args.split_events
        print(
            f"  the parts apart over {'all' if not limit else f'the first {limit:,}'} events ...",
            flush=True,
        )
        parts = split(data_dir, limit)

    print()
    rows = [
        [
            "checkpoints (Checkpointer.make)",
            cp["events"],
            cp["seconds"],
            cp["events"] / cp["seconds"],
            cp["cpu"] / cp["events"] * 1e6,
            cp["vmhwm_kb"] / 1024,
            cp["vmhwm_before_kb"] / 1024,
            f"{cp['checkpoints']:,} checkpoints",
        ]
    ]
    for r, res in enumerate(results):
        rows.append(
            [
                f"verify run {r + 1} (progress: {res['progress']})",
                res["events"],
                res["seconds"],
                res["events"] / res["seconds"],
                res["cpu"] / res["events"] * 1e6,
                res["vmhwm_kb"] / 1024,
                res["vmhwm_before_kb"] / 1024,
                f"ok={res['ok']}, {res['aggregates']:,} aggregates, {res['checkpoints']:,} checkpoints, "
                f"covered to {res['covered_up_to']:,}, {res['uncovered_events']} uncovered",
            ]
        )
    print(
        table(
            f"Child processes on a copy of the {store.events:,}-event store",
            [
                "run",
                "events",
                "seconds",
                "events/s",
                "CPU us/event",
                "VmHWM MiB",
                "VmHWM before MiB",
                "result",
            ],
            rows,
        )
    )
    for res in results:
        if not res["ok"]:
            print(f"  first problem: {res['first_problem']}")
    samples = results[0]["samples"] if results else []
    if samples:
        print(
            "  progress (run 1, from verify's callback): "
            + ", ".join(f"{t:.0f} s: {n:,}" for t, n in spread(samples))
        )
    # The headline is the median of the runs without the bar (all runs if only one).
    plain = [res for res in results if res["progress"] == "none"] or results
    rate = median([res["events"] / res["seconds"] for res in plain])
    cpu_us = median([res["cpu"] / res["events"] * 1e6 for res in plain])
    barred = [res for res in results if res["progress"] != "none"]
    bar_rate = median([res["events"] / res["seconds"] for res in barred])
    bar_cpu = median([res["cpu"] / res["events"] * 1e6 for res in barred])
    peak = max(max(res["vmhwm_kb"], res["sampled_vmhwm_kb"]) for res in results) / 1024

    n, clock = parts
    wall = {k: clock.wall[k] / n * 1e6 for k in PARTS}
    cpu = {k: clock.cpu[k] / n * 1e6 for k in PARTS}
    summed = [k for k in PARTS if k != "sqlite"]
    wall_sum, cpu_sum = sum(wall[k] for k in summed), sum(cpu[k] for k in summed)
    verify_wall = 1e6 / rate
    labels = {
        "read": "  read: EventRows.scan, plain tuples (pages of 10,000)",
        "sqlite": "    beside it: the same rows through recorder.select_notifications",
        "hash": "  hash recompute: integrity.check_stored",
        "leaf": "  Merkle: integrity.leaf_hash per event",
        "root": "  Merkle: integrity.merkle_root per checkpoint",
    }
    rows = [
        ["verify (median of the runs without the bar, child process)", verify_wall, cpu_us, rate]
    ]
    rows += [
        [labels[k], wall[k], cpu[k], 1e6 / wall[k] if wall[k] else float("nan")] for k in PARTS
    ]
    rows += [
        ["  sum of the parts (without the recorder read)", wall_sum, cpu_sum, 1e6 / wall_sum],
        [
            "  the rest of verify (chains, versions, checks): verify minus the sum",
            verify_wall - wall_sum,
            cpu_us - cpu_sum,
            float("nan"),
        ],
    ]
    print()
    print(
        table(
            f"Where the time goes (parts apart, {n:,} events, this process; us per event)",
            ["part", "wall us/event", "CPU us/event", "events/s (wall)"],
            rows,
        )
    )
    print(
        "  (the parts are measured in a separate pass: on a busy machine compare the CPU "
        "column, which other processes disturb much less)"
    )
    met = "met" if rate >= VERIFY_GOAL else "NOT met"
    lines.append(
        f"verify {store.events:,} events: {rate:,.0f} events/s (median of {len(plain)} runs without the bar; {met}), "
        f"CPU {cpu_us:.1f} us/event, peak memory {peak:,.0f} MiB; with the Rich bar "
        f"{bar_rate:,.0f} events/s, {bar_cpu:.1f} us/event (median of {len(barred)}); "
        f"checkpoints {cp['events'] / cp['seconds']:,.0f} events/s, {cp['cpu'] / cp['events'] * 1e6:.1f} us/event"
    )
    print()
    print(
        table(
            "Goal",
            ["figure", "goal", "measured", ""],
            [
                [
                    "verify (median of the runs without the bar)",
                    f">= {VERIFY_GOAL:,.0f} events/s",
                    f"{rate:,.0f} events/s",
                    met,
                ],
                ["peak memory of the verifying process (VmHWM)", "-", f"{peak:,.0f} MiB", ""],
            ],
        )
    )
    from _common import goal  # the goal lines bench/summary.py collects

    goal("audit.verify", f"verify, {store.events:,} events", rate, "events/s", at_least=VERIFY_GOAL)
    return lines


# --------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--quick", action="store_true", help="30 requests per query, a 100,000-event ledger"
    )
    ap.add_argument("--part", choices=("history", "verify", "both"), default="both")
    ap.add_argument("--requests", type=int, help="requests per query (default 200; quick 30)")
    ap.add_argument(
        "--reps", type=int, help="in-process repetitions per query (default 30; quick 10)"
    )
    ap.add_argument(
        "--ore",
        type=int,
        default=1000,
        help="ore lots upstream of the target (multiple of 4 x --group)",
    )
    ap.add_argument("--group", type=int, default=25, help="ore lots per concentrate")
    ap.add_argument("--cycles", type=int, default=100, help="cycles of 10 steps on the target")
    ap.add_argument("--rebuild", action="store_true", help="build the history store again")
    ap.add_argument(
        "--events",
        type=int,
        help="events of the verified ledger (default 1,000,000; quick 100,000)",
    )
    ap.add_argument(
        "--runs",
        type=int,
        help="verify runs, every other one with the progress bar (default 4; quick 2)",
    )
    ap.add_argument(
        "--split-events", type=int, default=0, help="cap the where-the-time-goes pass (0: all)"
    )
    ap.add_argument("--seed", type=int, default=7, help="demo seed")
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds allowed per child")
    ap.add_argument("--child", choices=("checkpoint", "verify"), help=argparse.SUPPRESS)
    ap.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--show-progress", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.data_dir, args.out, args.show_progress)
        return
    if args.ore % (args.group * len(MINES)):
        ap.error(f"--ore must be a multiple of {args.group * len(MINES)}")
    args.requests = args.requests or (30 if args.quick else 200)
    args.reps = args.reps or (10 if args.quick else 30)
    args.events = args.events or (100_000 if args.quick else 1_000_000)
    args.runs = args.runs or (2 if args.quick else 4)

    total = Timer()
    print(f"Lodestone audit benchmark, {now_utc()}, {revision()}, {machine()}, {load()}")
    lines = []
    if args.part in ("history", "both"):
        lines += part_history(args)
    if args.part in ("verify", "both"):
        lines += part_verify(args)
    print("\nHeadline:")
    for line in lines:
        print(f"  {line}")
    print(f"\ntotal time {total.elapsed():.0f} s; {load()}")


if __name__ == "__main__":
    run_main(main)
