"""Fault injection under load against the real stack (issue 12): ``--runs`` runs, each
SIGKILLing one of gateway, relay, projector, Kafka broker, PostgreSQL at a random moment
of a bounded load and restarting it, then checking store, topic, read models and
``verify`` (lodestone.devtools.faults has the whole story). Prints a table of runs and a
final line ``N runs: L lost, D doubled``; exits 1 unless every run was clean.

    .venv/bin/python bench/faults.py --runs 100 --seed 7

A run's figures (seconds, retries) depend on the machine; what it counts (lost, doubled,
read models equal, verify) must not.
"""

from __future__ import annotations

import argparse
import random
import signal
import sys
from typing import Any

from lodestone.devtools import faults


def _on_signal(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds every finally: processes and servers stop


def main() -> int:
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--seed", type=int, default=None, help="default: a random one")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients per run")
    parser.add_argument("--writes", type=int, default=14, help="writes per client per run")
    parser.add_argument(
        "--victim", choices=faults.VICTIMS, action="append", help="only these (repeatable)"
    )
    parser.add_argument("--verbose", action="store_true", help="seconds per phase of each run")
    parser.add_argument("--keep-logs", action="store_true", help="keep every run's logs")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(10**6)
    rng = random.Random(seed)
    chosen = (
        [args.victim[n % len(args.victim)] for n in range(args.runs)]
        if args.victim
        else faults.victims(args.runs, rng)
    )
    print(f"fault injection: {args.runs} runs, seed {seed}", flush=True)
    widths = [max(len(h), 6) for h in faults.HEADERS]
    print("  ".join(h.rjust(w) for h, w in zip(faults.HEADERS, widths, strict=True)), flush=True)
    results = []
    with faults.Servers() as servers:
        for run, victim in enumerate(chosen, 1):
            result = faults.run_once(
                servers,
                run,
                victim,
                rng.randrange(2**32),
                clients=args.clients,
                writes=args.writes,
                keep_logs=args.keep_logs,
            )
            results.append(result)
            cells = faults.row(result)
            print("  ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True)), flush=True)
            if args.verbose:
                phases = ", ".join(f"{k} {v:.1f}s" for k, v in result.phases.items())
                print(f"    {phases} {result.logs}".rstrip(), flush=True)
            for problem in result.problems:
                print(f"    run {run}: {problem}", flush=True)
    print(faults.summary(results), flush=True)
    return 0 if all(r.clean for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
