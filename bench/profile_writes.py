"""Where a single-event write spends its time: pyinstrument over an in-process gateway
under N concurrent clients.

    .venv/bin/python bench/profile_writes.py --clients 8 --seconds 10

The gateway runs in this process (uvicorn in a thread of its own) so that every thread
that serves a request can be sampled: pyinstrument samples one thread per profiler, so
each call FastAPI hands to its thread pool (the routes and their dependencies) runs under
a profiler of its own, and the sessions are combined into one tree; so does each group
the ledger's writer thread commits (``GroupWriter.write_group``), in a tree of its own.
The event loop's thread (HTTP parsing, routing, the JSON answer) and the clients
(threads of this process too) are in neither. Figures printed by a profiled run mean nothing as throughput.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import anyio.to_thread
import httpx
import uvicorn
from _common import ADMIN_KEY, bearer, free_port, ore_event, register_miners
from pyinstrument import Profiler
from pyinstrument.session import Session

from lodestone.bootstrap.settings import Settings
from lodestone.gateway import create_app
from lodestone.ledger.group import GroupWriter


def _profiled_threadpool(sessions: list[Session], lock: threading.Lock) -> Any:
    original = anyio.to_thread.run_sync

    async def run_sync(func: Any, *args: Any, **kwargs: Any) -> Any:
        def profiled(*a: Any) -> Any:
            profiler = Profiler(interval=0.0005, async_mode="disabled")
            profiler.start()
            try:
                return func(*a)
            finally:
                session = profiler.stop()
                with lock:
                    sessions.append(session)

        return await original(profiled, *args, **kwargs)

    return run_sync


def _profiled_groups(sessions: list[Session]) -> Any:
    original = GroupWriter.write_group

    def write_group(self: GroupWriter, jobs: Any) -> None:
        profiler = Profiler(interval=0.0005, async_mode="disabled")
        profiler.start()
        try:
            original(self, jobs)
        finally:
            sessions.append(profiler.stop())

    return write_group


def _tree(sessions: list[Session]) -> str:
    combined = sessions[0]
    for s in sessions[1:]:
        combined = Session.combine(combined, s)
    profiler = Profiler(async_mode="disabled")
    profiler._last_session = combined
    return profiler.output_text(unicode=False, color=False, show_all=False)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="lodestone-profile-"))
    port = free_port()
    settings = Settings(data_dir=data_dir, admin_key=ADMIN_KEY, port=port)  # type: ignore[arg-type]
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="uvicorn")
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("gateway did not start")
            time.sleep(0.1)
        ops = list(register_miners(base, [f"P{i}" for i in range(args.clients)]).values())

        sessions: list[Session] = []
        lock = threading.Lock()
        groups: list[Session] = []
        anyio.to_thread.run_sync = _profiled_threadpool(sessions, lock)  # type: ignore[assignment]
        GroupWriter.write_group = _profiled_groups(groups)  # type: ignore[method-assign]
        counts = [0] * len(ops)
        writer = app.state.runtime.writer
        groups_before = writer.groups
        stop = time.monotonic() + args.seconds

        def client(i: int) -> None:
            with httpx.Client(base_url=base, headers=bearer(ops[i].key), timeout=60) as c:
                n = 0
                while time.monotonic() < stop:
                    r = c.post("/v1/events/ore-extracted", json=ore_event(ops[i], f"L{i}-{n}"))
                    r.raise_for_status()
                    n += 1
                counts[i] = n

        clients = [threading.Thread(target=client, args=(i,)) for i in range(len(ops))]
        started = time.monotonic()
        for t in clients:
            t.start()
        for t in clients:
            t.join()
        elapsed = time.monotonic() - started
        events = sum(counts)
        print(
            f"{events} events in {elapsed:.1f} s under the profiler "
            f"(load {os.getloadavg()[0]:.2f}; not a throughput figure)"
        )
        committed = writer.groups - groups_before
        print(
            f"groups: {committed}, requests per group: mean {events / max(committed, 1):.1f}, "
            f"max {max(writer.group_sizes)}"
        )
        print("== the request threads ==")
        print(_tree(sessions))
        print("== the writer thread, per group ==")
        print(_tree(groups))
    finally:
        server.should_exit = True
        thread.join(timeout=30)


if __name__ == "__main__":
    main()
