"""One command for all figures: every benchmark in bench/, one after another, each in a
process of its own, and one line per goal at the end.

    .venv/bin/python bench/summary.py --quick     # small stores, short runs: a few minutes
    .venv/bin/python bench/summary.py             # the goals' own sizes (an hour or more)
    options: --only ingest.py (repeatable), --logs DIR, --timeout S

Each benchmark prints its tables as it always has (kept in ``--logs``, one file per
script) and, at the end, its goals as lines starting ``GOAL<TAB>`` followed by JSON
(``_common.goal``). This collects them and prints, in order,

    <figure>: <measured> <unit> (goal <goal>) met|NOT met

with the load average before and after, and last ``N of M goals met``. A goal a
benchmark should have reported and did not (it failed, timed out, or the figure was not
measured) is printed as not measured and counted as not met. The goals: issue 10 (ingest,
trace, Kafka rebuild, end-to-end lag, history and as-of), issue 9 (oversight queries and
catch-up, live subscriptions) and the earlier ones the README lists (downstream trace,
verify). ``--quick`` runs every benchmark at a fraction of the sizes its goal names, so
its figures say whether things work and roughly how fast, not whether a goal is met:
measure with nothing else running (the load average is printed for that).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _common import GOAL_PREFIX, load

BENCH = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Bench:
    script: str
    quick: list[str]
    full: list[str]
    goals: list[str]  # the keys of the goals it reports (``_common.goal``)


OVERSIGHT_QUERIES = [
    "trade-lines-100",
    "trade-lines-one-element-and-month",
    "totals-by-month",
    "totals-by-client",
    "totals-by-destination",
    "totals-by-element",
    "dashboard-controlled-exports",
    "dashboard-top-clients",
    "inventory-now",
    "licences",
    "monthly-declaration-json",
]

#: In the order they run: those without Kafka first. The quick sizes keep the whole run
#: to a few minutes on an idle 2-core machine once the cached stores exist (bench/.data;
#: a fresh clone builds them first, about a minute more).
BENCHES = [
    Bench(
        "ingest.py",
        ["--quick", "--runs", "1"],
        [],
        ["ingest.single", "ingest.bulk"],
    ),
    Bench(
        "trace.py",
        ["--quick", "--filler", "2000", "--filler-mines", "4", "--requests", "20"],
        [],
        ["trace.upstream", "trace.provenance", "trace.downstream"],
    ),
    Bench(
        "audit.py",
        ["--quick", "--events", "20000", "--requests", "20", "--reps", "3"],
        [],
        [
            "audit.history",
            "audit.as-of?version",
            "audit.as-of?known_at",
            "audit.as-of?happened_at",
            "audit.verify",
        ],
    ),
    Bench(
        "oversight.py",
        ["--events", "20000", "--reps", "10"],
        [],
        ["oversight.catch-up", *(f"oversight.{q}" for q in OVERSIGHT_QUERIES)],
    ),
    Bench(
        "streams.py",
        ["--quick", "--duration", "4", "--drain", "3"],
        [],
        ["streams.lag", "streams.memory"],
    ),
    Bench("relay.py", ["--events", "5000", "--runs", "1"], [], []),
    Bench("lag.py", ["--duration", "3", "--mode", "single"], [], ["lag.single"]),
    Bench("rebuild.py", ["--events", "20000", "--runs", "1"], [], ["rebuild.kafka"]),
]


@dataclass
class Ran:
    bench: Bench
    command: list[str]
    seconds: float = 0.0
    status: str = ""
    goals: list[dict[str, Any]] = field(default_factory=list)


def run(bench: Bench, args: list[str], log: Path, timeout: float) -> Ran:
    """Run one benchmark, its output into ``log``; its goal lines parsed as they come."""
    command = [sys.executable, str(BENCH / bench.script), *args]
    ran = Ran(bench, command)
    started = time.monotonic()
    with log.open("w") as out:
        out.write(f"$ {' '.join(command)}\n")
        out.flush()
        # A session of its own: on a timeout the benchmark and everything it started
        # (gateway, broker, children) get the signal together.
        child = subprocess.Popen(
            command,
            cwd=BENCH.parent,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        assert child.stdout is not None
        timed_out = threading.Event()

        def expire() -> None:
            timed_out.set()
            _stop(child)

        # A watchdog, not a check between lines: a benchmark may hang without printing.
        watchdog = threading.Timer(timeout, expire)
        watchdog.daemon = True
        watchdog.start()
        try:
            for line in child.stdout:
                out.write(line)
                out.flush()
                if line.startswith(GOAL_PREFIX):
                    ran.goals.append(json.loads(line[len(GOAL_PREFIX) :]))
            code = child.wait()
        finally:
            watchdog.cancel()
            if child.poll() is None:  # interrupted (Ctrl-C): take the benchmark down too
                _stop(child)
    ran.seconds = time.monotonic() - started
    ran.status = f"timed out after {timeout:.0f} s" if timed_out.is_set() else f"exit {code}"
    return ran


def _stop(child: subprocess.Popen[str]) -> None:
    """SIGTERM (the benchmarks clean up their children and directories on it), then
    SIGKILL if it is still there after 30 s."""
    try:
        os.killpg(child.pid, signal.SIGTERM)
        child.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def measured_text(value: float | None) -> str:
    if value is None:
        return "not measured"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def goal_line(goal: dict[str, Any]) -> str:
    verdict = "met" if goal["met"] else "NOT met"
    line = (
        f"{goal['figure']}: {measured_text(goal['measured'])} {goal['unit']} "
        f"(goal {goal['goal']}) {verdict}"
    )
    return line + (f" [{goal['note']}]" if goal.get("note") else "")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="small sizes, short runs")
    ap.add_argument(
        "--only",
        action="append",
        choices=[b.script for b in BENCHES],
        help="run this benchmark only (repeatable)",
    )
    ap.add_argument("--logs", type=Path, help="where each benchmark's output is kept")
    ap.add_argument(
        "--timeout", type=float, help="seconds allowed per benchmark (quick 600, full 7200)"
    )
    args = ap.parse_args()
    timeout = args.timeout or (600.0 if args.quick else 7200.0)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    logs: Path = args.logs or BENCH / ".data" / f"summary-{stamp}"
    logs.mkdir(parents=True, exist_ok=True)
    chosen = [b for b in BENCHES if not args.only or b.script in args.only]

    total = time.monotonic()
    before = load()
    print(f"bench/summary.py{' --quick' if args.quick else ''}, {stamp}; logs in {logs}")
    print(f"{before} before", flush=True)
    runs: list[Ran] = []
    for n, bench in enumerate(chosen, 1):
        params = bench.quick if args.quick else bench.full
        print(f"[{n}/{len(chosen)}] {bench.script} {' '.join(params)}", end=" ", flush=True)
        ran = run(bench, params, logs / f"{bench.script.removesuffix('.py')}.log", timeout)
        runs.append(ran)
        print(f"-> {ran.status}, {ran.seconds:.0f} s, {len(ran.goals)} goal lines", flush=True)
    after = load()

    print()
    met = counted = 0
    for ran in runs:
        reported = {g["key"] for g in ran.goals}
        for goal in ran.goals:
            print(goal_line(goal))
            counted += 1
            met += bool(goal["met"])
        for key in ran.bench.goals:
            if key not in reported:
                print(f"{key}: not measured ({ran.bench.script} {ran.status}) NOT met")
                counted += 1
    print()
    print(f"{before} before, {after} after; {time.monotonic() - total:.0f} s in all")
    print(f"{met} of {counted} goals met")


if __name__ == "__main__":
    main()
