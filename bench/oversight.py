"""Oversight read models (issue 9): catch-up from position 0 with every read model, and
the analysts' and regulators' queries over HTTP.

1. Catch-up: each registered projection rebuilt from position 0 of a demo event store
   on SQLite, one after another in this process (each keeps its own positions), and the
   rate of all of them together (events / total seconds); then all at once, one thread
   each over one shared reader of the log, as the gateway runs them. Goal: at least 10,000 events/s
   with all read models running.
2. Queries: a gateway (``lodestone serve``) on a copy of the store, its read models caught
   up, then each query ``--reps`` times as a regulator: trade lines, totals by month,
   client, destination and element, the dashboards, inventory, licences, and the monthly
   declaration where that endpoint exists. p50 and p95 in ms. Goal: p95 under 100 ms on a
   1,000,000-event store.

The load average is printed beside every figure: measure with nothing else running.

    .venv/bin/python bench/oversight.py --quick          # ~100k events
    .venv/bin/python bench/oversight.py                  # ~1,000,000 events (long build)
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
from _common import (
    ADMIN_KEY,
    bearer,
    demo_store,
    load,
    median,
    pct,
    run_main,
    server,
    table,
    temp_dir,
)

QUERIES = [
    ("trade lines (100)", "/v1/trades?limit=100"),
    (
        "trade lines, one element and month",
        "/v1/trades?element=Dy&limit=100&from=2026-03&to=2026-03",
    ),
    ("totals by month", "/v1/trades/totals?by=month"),
    ("totals by client", "/v1/trades/totals?by=client"),
    ("totals by destination", "/v1/trades/totals?by=destination"),
    ("totals by element", "/v1/trades/totals?by=element"),
    ("dashboard: controlled exports", "/v1/dashboards/exports"),
    ("dashboard: top clients", "/v1/dashboards/top-clients"),
    ("inventory now", "/v1/inventory"),
    ("licences", "/v1/licences"),
]


def catch_up(store: Path, work: Path) -> list[list[Any]]:
    from lodestone.bootstrap.settings import Settings
    from lodestone.bootstrap.stores import build_ledger, open_view
    from lodestone.projections.registry import REGISTRY
    from lodestone.streaming.projector import log_projector

    data = work / "catch-up"
    data.mkdir()
    shutil.copy(store, data / "events.sqlite")
    settings = Settings(data_dir=data)
    ledger = build_ledger(settings)
    rows = []
    total_seconds = 0.0
    events = ledger.recorder.max_notification_id() or 0
    try:
        for entry in REGISTRY:
            view = open_view(settings, entry)
            try:
                started = time.perf_counter()
                applied = log_projector(ledger, entry.projection(), view).catch_up()
                seconds = time.perf_counter() - started
            finally:
                view.close()
            total_seconds += seconds
            rows.append([entry.name, applied, round(seconds, 1), round(applied / seconds), load()])
    finally:
        ledger.close()
    rows.append(
        [
            "all, one after another (sum)",
            events,
            round(total_seconds, 1),
            round(events / total_seconds),
            load(),
        ]
    )
    rows.append(all_at_once(store, work, events))
    return rows


def all_at_once(store: Path, work: Path, events: int) -> list[Any]:
    """Every read model from 0 to the end together, one projector thread each over one
    shared reader of the notification log, as the gateway runs them."""
    import threading

    from lodestone.bootstrap.settings import Settings
    from lodestone.bootstrap.stores import build_ledger, open_view
    from lodestone.projections.registry import REGISTRY
    from lodestone.streaming.projector import shared_log_projectors

    data = work / "at-once"
    data.mkdir()
    shutil.copy(store, data / "events.sqlite")
    settings = Settings(data_dir=data)
    ledger = build_ledger(settings)
    views = {entry.name: open_view(settings, entry) for entry in REGISTRY}
    try:
        projectors = shared_log_projectors(
            ledger, [(e.name, e.projection(), views[e.name]) for e in REGISTRY]
        )
        threads = [threading.Thread(target=p.catch_up) for p in projectors.values()]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - started
        for name, projector in projectors.items():
            assert projector.position() == events, (name, projector.position(), events)
    finally:
        for view in views.values():
            view.close()
        ledger.close()
    return ["all at once (threads)", events, round(seconds, 1), round(events / seconds), load()]


def queries(store: Path, work: Path, reps: int, month: str, actor: str) -> list[list[Any]]:
    data = work / "serve"
    data.mkdir()
    shutil.copy(store, data / "events.sqlite")
    wanted = [*QUERIES, ("monthly declaration (JSON)", f"/v1/declarations/{actor}/{month}")]
    rows = []
    with server(data, timeout=3600) as srv, httpx.Client(base_url=srv.base, timeout=600) as http:
        headers = bearer(ADMIN_KEY)
        # The first read of each model catches it up from position 0: done before timing.
        for _, path in wanted:
            http.get(path, headers=headers)
        for name, path in wanted:
            if http.get(path, headers=headers).status_code == 404:
                rows.append([name, "not served", "", "", load()])
                continue
            times = []
            for _ in range(reps):
                started = time.perf_counter()
                response = http.get(path, headers=headers)
                times.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, (path, response.text[:300])
            rows.append(
                [
                    name,
                    round(median(times), 1),
                    round(pct(times, 95), 1),
                    len(response.content),
                    load(),
                ]
            )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--quick", action="store_true", help="about 100,000 events instead of 1,000,000"
    )
    ap.add_argument("--events", type=int, help="about how many events the store holds")
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--month", default="2026-03", help="the declaration's month")
    ap.add_argument("--actor", default="NBMAG", help="the declaration's actor")
    args = ap.parse_args()
    target = args.events or (100_000 if args.quick else 1_000_000)
    print(f"load average before: {load()}")
    store = demo_store(target, seed=args.seed)
    print(f"store: {store.events:,} events ({store.path})")
    with temp_dir("lodestone-oversight-") as work:
        rows = catch_up(store.path, work)
        print(
            table(
                "Catch-up from position 0, SQLite (goal: all read models >= 10,000 events/s)",
                ["read model", "events", "seconds", "events/s", "load"],
                rows,
            )
        )
        import re

        from _common import goal  # the goal lines bench/summary.py collects

        events, _, rate = rows[-1][1:4]  # the row of all read models at once
        name = f"catch-up from 0, all read models, SQLite, {events:,} events"
        goal("oversight.catch-up", name, rate, "events/s", at_least=10_000)
        rows = queries(store.path, work, args.reps, args.month, args.actor)
        print(
            table(
                f"Queries over HTTP, {args.reps} each, as a regulator (goal: p95 < 100 ms)",
                ["query", "p50 ms", "p95 ms", "bytes", "load"],
                rows,
            )
        )
        for name, _, p95, *_ in rows:  # "not served": not measured, so not met
            key = "oversight." + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
            value = p95 if isinstance(p95, float) else None
            goal(key, f"{name} p95, {store.events:,} events", value, "ms", under=100)
    print(f"load average after: {load()}")


if __name__ == "__main__":
    run_main(main)
