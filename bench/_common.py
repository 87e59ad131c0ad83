"""Shared helpers for the benchmarks: a real gateway process on a free port, a world
registered over HTTP, statistics and tables.

Nothing here is product code and nothing here asserts on timings: benchmarks print
figures.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import hashlib
import importlib
import json
import math
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Generic, TypeVar

import httpx

ROOT = Path(__file__).resolve().parent.parent
ADMIN_KEY = "bench-admin-" + os.urandom(6).hex()
VALID_FROM = "2026-01-01T00:00:00Z"
VALID_UNTIL = "2030-12-31T00:00:00Z"
#: A rock ore (3-8 % REO class), fractions exact to 9 places.
ORE = {"Nd": "0.030", "Pr": "0.010", "Dy": "0.002", "Tb": "0.0005", "Fe": "0.20"}

# --------------------------------------------------------------------------------------
# process hygiene: every server we start is stopped whatever happens
# --------------------------------------------------------------------------------------

_CHILDREN: list[subprocess.Popen[bytes]] = []
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _stop(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)  # uvicorn: graceful shutdown, lifespan stop
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(5)
    if proc in _CHILDREN:
        _CHILDREN.remove(proc)


def _stop_all() -> None:
    for proc in list(_CHILDREN):
        _stop(proc, grace=3.0)


def _on_signal(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds every finally: servers stop, temp dirs go


atexit.register(_stop_all)
signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGHUP, _on_signal)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proc_status(pid: int) -> dict[str, int]:
    """VmHWM / VmRSS (kB) of a live process."""
    out: dict[str, int] = {}
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                out[key] = int(value.split()[0])
    return out


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process so far (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def lodestone_cmd() -> list[str]:
    script = Path(sys.executable).parent / "lodestone"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "lodestone.cli.main"]


@dataclass
class Server:
    data_dir: Path
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def memory(self) -> dict[str, int]:
        return proc_status(self.pid)

    def cpu(self) -> float:
        return cpu_seconds(self.pid)


@contextlib.contextmanager
def server(
    data_dir: Path, *, timeout: float = 60.0, env: dict[str, str] | None = None
) -> Iterator[Server]:
    """``lodestone serve --data-dir D --port P`` on 127.0.0.1, stopped on exit."""
    port = free_port()
    fd, log_name = tempfile.mkstemp(prefix=f"lodestone-bench-server-{port}-", suffix=".log")
    os.close(fd)
    log_path = Path(log_name)
    penv = dict(os.environ)
    penv["LODESTONE_ADMIN_KEY"] = ADMIN_KEY
    penv.update(env or {})
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [*lodestone_cmd(), "serve", "--data-dir", str(data_dir), "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=penv,
            cwd=str(ROOT),
            preexec_fn=_die_with_parent,
            start_new_session=True,  # a Ctrl-C reaches us; we stop it in order
        )
    _CHILDREN.append(proc)
    srv = Server(data_dir, port, proc, log_path)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"server exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}"
                )
            try:
                if httpx.get(f"{srv.base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server did not start in {timeout} s")
            time.sleep(0.1)
        yield srv
    finally:
        _stop(proc)
        log_path.unlink(missing_ok=True)


@contextlib.contextmanager
def temp_dir(prefix: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def run_main(main: Callable[[], None]) -> None:
    """``main()``; Ctrl-C ends it with the shell's code for SIGINT, without a traceback
    (the ``finally`` blocks have stopped the servers by then)."""
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)


# --------------------------------------------------------------------------------------
# HTTP world
# --------------------------------------------------------------------------------------


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def ok(response: httpx.Response) -> Any:
    if response.status_code not in (200, 201):
        raise RuntimeError(
            f"{response.request.method} {response.request.url}: {response.status_code} {response.text[:500]}"
        )
    return response.json()


@dataclass
class Operator:
    actor: str
    mine: str
    quota: str
    key: str


def register_miners(
    base: str, codes: Sequence[str], quota_kg: str = "100000000"
) -> dict[str, Operator]:
    """Per code: an actor, a mine, a mining quota and an operator key, over HTTP with the
    bootstrap admin key (what tests/api/conftest.py does)."""
    out = {}
    with httpx.Client(base_url=base, headers=bearer(ADMIN_KEY), timeout=30) as c:
        for code in codes:
            ok(
                c.post(
                    "/v1/actors",
                    json={
                        "code": code,
                        "name": f"{code} Mining",
                        "country": "CN",
                        "roles": ["miner"],
                    },
                )
            )
            ok(
                c.post(
                    "/v1/facilities",
                    json={
                        "code": f"{code}-MINE",
                        "name": f"{code} pit",
                        "kind": "mine",
                        "owner": code,
                        "country": "CN",
                    },
                )
            )
            ok(
                c.post(
                    "/v1/licences",
                    json={
                        "number": f"{code}-MQ",
                        "kind": "mining_quota",
                        "holder": code,
                        "max_kg": quota_kg,
                        "valid_from": VALID_FROM,
                        "valid_until": VALID_UNTIL,
                    },
                )
            )
            key = ok(
                c.post("/v1/credentials", json={"role": "operator", "actor": code, "label": code})
            )["key"]
            out[code] = Operator(code, f"{code}-MINE", f"{code}-MQ", key)
    return out


def ore_event(op: Operator, lot: str, kg: str = "1000") -> dict[str, Any]:
    return {
        "facility": op.mine,
        "quota": op.quota,
        "lot_code": lot,
        "mass_kg": kg,
        "composition": ORE,
    }


# --------------------------------------------------------------------------------------
# figures
# --------------------------------------------------------------------------------------


def pct(values: Sequence[float], p: float) -> float:
    """Percentile by linear interpolation (p in 0..100)."""
    if not values:
        return float("nan")
    xs = sorted(values)
    k = (len(xs) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [[_fmt(v) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = [title, "-" * len(title)]
    for n, r in enumerate(cells):
        lines.append(
            "  ".join(
                c.rjust(w) if i else c.ljust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if v != v:
            return "-"
        if abs(v) >= 100:
            return f"{v:,.0f}"
        if abs(v) >= 10:
            return f"{v:.1f}"
        return f"{v:.2f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def machine() -> str:
    return f"{platform.node()}: {os.cpu_count()} CPUs, {platform.python_implementation()} {platform.python_version()}, {platform.machine()}"


def revision() -> str:
    """The product code measured: git commit, "+changes" if libs/ or services/ differ."""
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "libs", "services"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown revision"
    return f"commit {head or '?'}{' +changes' if dirty else ''}"


def load() -> str:
    """The 1/5/15-minute load averages: how busy the shared machine was."""
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def now_utc() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


@dataclass
class Timer:
    started: float = field(default_factory=time.perf_counter)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started


@dataclass
class Measured:
    """One run of a series: ``events`` in ``seconds``."""

    events: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else float("nan")


RunT = TypeVar("RunT", bound=Measured)


@dataclass
class Series(Generic[RunT]):
    """Runs of one kind, interleaved with those of the series it is compared with."""

    name: str
    runs: list[RunT] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return median([r.rate for r in self.runs])

    @property
    def rates(self) -> str:
        return " / ".join(f"{r.rate:,.0f}" for r in self.runs)


def paired(a: Series[Any], b: Series[Any]) -> float:
    """The median of a's rate over b's, run by run: a burst of load from other users of
    the machine falls on both runs of a pair."""
    return median([x.rate / y.rate for x, y in zip(a.runs, b.runs, strict=True)])


def spread(samples: Sequence[Any], points: int = 6) -> list[Any]:
    """At most ``points`` of ``samples``, evenly spaced, the first and the last included."""
    if len(samples) <= points:
        return list(samples)
    return [samples[int(i * (len(samples) - 1) / (points - 1))] for i in range(points)]


def floor9(x: Decimal) -> Decimal:
    """Round a fraction DOWN to 9 places (the domain's fraction precision)."""
    from decimal import ROUND_DOWN

    return x.quantize(Decimal("0.000000001"), rounding=ROUND_DOWN)


def floor6(x: Decimal) -> Decimal:
    from decimal import ROUND_DOWN

    return x.quantize(Decimal("0.000001"), rounding=ROUND_DOWN)


# --------------------------------------------------------------------------------------
# Kafka benchmarks (relay.py, lag.py, rebuild.py): child processes, a local broker,
# cached demo stores
# --------------------------------------------------------------------------------------

#: Expensive builds, kept between runs (git-ignored with the rest of bench/.data).
CACHE = ROOT / "bench" / ".data"


def spawn(
    argv: Sequence[str],
    *,
    env: dict[str, str],
    log_path: Path,
    stderr_to_parent: bool = False,
) -> subprocess.Popen[bytes]:
    """A child process (stdout and stderr to ``log_path``; with ``stderr_to_parent`` its
    stderr is ours, e.g. for a progress bar on the terminal) that dies with us (SIGKILL
    when this process dies, whatever the cause) and is stopped at exit if still running.
    Stop it with ``stop_child``."""
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            list(argv),
            stdout=log,
            stderr=None if stderr_to_parent else subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=str(ROOT),
            preexec_fn=_die_with_parent,
            start_new_session=True,
        )
    _CHILDREN.append(proc)
    return proc


def stop_child(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGINT (the lodestone processes finish their batch and close), SIGKILL after
    ``grace`` seconds."""
    _stop(proc, grace)


def child_result(
    proc: subprocess.Popen[bytes],
    name: str,
    out: Path,
    log: Path,
    timeout: float,
    poll: float = 0.5,
) -> dict[str, Any]:
    """Waits for a measuring child (killed after ``timeout`` seconds), sampling its peak
    memory every ``poll`` seconds, and returns the JSON it wrote to ``out`` with that
    sampled peak as ``sampled_vmhwm_kb``; the tail of its ``log`` if it failed."""
    peak = 0
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None:
            peak = max(peak, proc_status(proc.pid).get("VmHWM", 0))
            if time.monotonic() > deadline:
                raise RuntimeError(f"the {name} child did not finish within {timeout:.0f} s")
            time.sleep(poll)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(f"the {name} child exited {proc.returncode}:\n{log.read_text()[-3000:]}")
    result: dict[str, Any] = json.loads(out.read_text())
    result["sampled_vmhwm_kb"] = peak
    return result


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any LODESTONE_* setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LODESTONE_")}
    env.update(extra)
    return env


def _watchdog(broker_pid: int, remove: Path | None) -> subprocess.Popen[bytes]:
    """The broker runs in a session of its own (LocalKafka), so it would outlive a
    benchmark that is SIGKILLed. This shell waits for our death, then stops that one
    broker (by pid; SIGKILL after 30 s) and removes its temporary directory."""
    rm = f"rm -rf '{remove}';" if remove is not None else ""
    script = (
        f"while kill -0 {os.getpid()} 2>/dev/null; do sleep 1; done; "
        f"kill -TERM {broker_pid} 2>/dev/null; "
        f"for i in $(seq 30); do kill -0 {broker_pid} 2>/dev/null || break; sleep 1; done; "
        f"kill -KILL {broker_pid} 2>/dev/null; {rm}"
    )
    return subprocess.Popen(
        ["sh", "-c", script],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


@contextlib.contextmanager
def kafka_broker(data_dir: Path | None = None, heap: str = "512m") -> Iterator[Any]:
    """A real local Kafka broker (lodestone.devtools.kafka_local.LocalKafka), stopped on
    exit whatever happens. Without ``data_dir`` it lives in a temporary directory that
    is removed afterwards; with one (a cache), the broker keeps that directory and its
    ports. Yields the LocalKafka (``.bootstrap``, ``.pid``)."""
    from lodestone.devtools.kafka_local import LocalKafka

    temp = None
    if data_dir is None:
        temp = Path(tempfile.mkdtemp(prefix="lodestone-bench-kafka-"))
        data_dir = temp
    kafka = LocalKafka(heap=heap)
    watchdog = None
    try:
        kafka.start(data_dir)
        assert kafka.pid is not None
        watchdog = _watchdog(kafka.pid, temp)
        yield kafka
    finally:
        try:
            kafka.close()
        finally:
            if watchdog is not None:
                watchdog.kill()
                watchdog.wait()
            if temp is not None:
                shutil.rmtree(temp, ignore_errors=True)


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """Per partition of ``topic``, the offset the next record will get."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, client_id="lodestone-bench-probe")
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        ends = consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
        return {tp.partition: offset for tp, offset in ends.items()}
    finally:
        consumer.close()


#: Bump when demo_store() records something else for the same parameters.
#: 2: every stored event carries its chained hash (tamper evidence, lodestone.integrity).
DEMO_STORE_VERSION = 3  # 3: exports are numbered shipments
#: The demo stores about 4.43 events per command since the demo records realistic chains
#: (200,418 events of 45,262 commands; it was 2.25 before): target/4.4 commands gives a
#: store with a little more than the target (the benchmarks cap where they need exact).
DEMO_EVENTS_PER_COMMAND = 4.4


@dataclass
class DemoStore:
    home: Path
    meta: dict[str, Any]

    @property
    def path(self) -> Path:
        """The SQLite event store (eventsourcing, lodestone.infra.sqlite.database.sqlite_env)."""
        return self.home / "events.sqlite"

    @property
    def events(self) -> int:
        return int(self.meta["events"])


def demo_store(target_events: int, seed: int = 7, log: Callable[[str], None] = print) -> DemoStore:
    """An event store holding at least about ``target_events`` events of the
    deterministic demo chain (lodestone.demo.generator.load: mines to end clients, every
    invariant checked, ~4.4 stored events per command), built once and cached in
    bench/.data/demo-<seed>-<commands>-v<version>/ (events.sqlite + meta.json). Building
    takes about 1 s per 1,000 commands here (a 1M-event store: ~227,000 commands). Treat the cached file as read-only: copy it before anything writes to it."""
    from lodestone.demo.generator import load as load_demo
    from lodestone.infra.sqlite.database import sqlite_env
    from lodestone.ledger import Ledger

    commands = max(1, math.ceil(target_events / DEMO_EVENTS_PER_COMMAND))
    key = f"demo-s{seed}-c{commands}-v{DEMO_STORE_VERSION}"
    home = CACHE / key
    meta_path = home / "meta.json"
    if meta_path.exists():
        return DemoStore(home, json.loads(meta_path.read_text()))
    log(
        f"building the demo store {key} (seed {seed}, ~{commands:,} commands, once; cached in {home})"
    )

    def build(building: Path) -> dict[str, Any]:
        ledger = Ledger(sqlite_env(building / "events.sqlite"))
        timer = Timer()
        done = [0, 0.0]

        def progress(n: int) -> None:
            done[0] += n
            if timer.elapsed() - done[1] >= 30:
                done[1] = timer.elapsed()
                log(f"  {done[0]:,} / ~{commands:,} commands, {timer.elapsed():.0f} s")

        summary = load_demo(ledger, seed=seed, size=commands, progress=progress)
        seconds = timer.elapsed()
        events = ledger.recorder.max_notification_id() or 0
        ledger.close()
        log(f"built {events:,} events ({summary.commands:,} commands) in {seconds:.0f} s")
        return {
            "seed": seed,
            "size": commands,
            "commands": summary.commands,
            "events": events,
            "batches": summary.batches,
            "build_seconds": round(seconds, 1),
            "built": now_utc(),
            "machine": machine(),
        }

    return DemoStore(home, build_cached(home, build))


def cache_home(prefix: str, params: dict[str, Any]) -> tuple[str, Path]:
    """The cache folder of a build with these parameters: (key, bench/.data/PREFIX-KEY)."""
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
    return key, CACHE / f"{prefix}-{key}"


def build_cached(home: Path, build: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
    """``build(folder)`` fills a fresh folder beside ``home`` and returns its meta, which
    is written to meta.json; the folder is then renamed ``home`` (replacing an older
    one). An interrupted build leaves nothing behind, under either name."""
    home.parent.mkdir(parents=True, exist_ok=True)
    building = home.with_name(f"{home.name}.building-{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir()
    try:
        meta = build(building)
        (building / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
        shutil.rmtree(home, ignore_errors=True)
        os.replace(building, home)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return meta


# --------------------------------------------------------------------------------------
# a traced chain recorded straight on a ledger (audit.py, trace.py)
# --------------------------------------------------------------------------------------

#: The chain's mines: code, country, ore composition (mass fractions); rock ore in CN,
#: ion-adsorption clay in CN and MM.
MINES = [
    ("TM0", "CN", {"Nd": "0.0300", "Pr": "0.0090", "Dy": "0.0002", "Tb": "0.00005", "Fe": "0.20"}),
    ("TM1", "CN", {"Nd": "0.0250", "Pr": "0.0080", "Dy": "0.0003", "Tb": "0.00008", "Fe": "0.18"}),
    (
        "TM2",
        "CN",
        {"Nd": "0.0006", "Pr": "0.00015", "Dy": "0.0002", "Tb": "0.00004", "Y": "0.0008"},
    ),
    (
        "TM3",
        "MM",
        {"Nd": "0.0005", "Pr": "0.0001", "Dy": "0.00025", "Tb": "0.00005", "Y": "0.0010"},
    ),
]
#: The rare earths a concentrate recovers.
RE = ("Nd", "Pr", "Dy", "Tb", "Y")
#: Every licence of the chains is valid over this span.
VALID = (datetime(2020, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))


@dataclass
class Lot:
    ref: str  # ACTOR/LOT
    kg: Decimal
    comp: dict[str, Decimal]

    def element(self, e: str) -> Decimal:
        return self.kg * self.comp.get(e, Decimal(0))


class StoreBuilder:
    """Records commands straight on the event store of ``data_dir`` with
    ``Ledger.execute(admin, chunk, bulk=True)`` (every invariant checked by the ledger),
    each phase timed into ``phases`` (name, commands, seconds). ``auditor_key``: the key
    the benchmark's client will use, for a subclass to register."""

    def __init__(self, data_dir: Path, auditor_key: str) -> None:
        from lodestone.bootstrap.settings import Settings
        from lodestone.bootstrap.stores import build_ledger
        from lodestone.domain.access import Principal, Role

        self.settings = Settings(data_dir=data_dir)
        self.ledger = build_ledger(self.settings)
        self.admin = Principal("admin:bench", Role.ADMIN)
        self.auditor_key = auditor_key
        self.phases: list[tuple[str, int, float]] = []

    def run(
        self, name: str, commands: list[Any], per_call: int = 10_000, *, progress: bool = False
    ) -> list[dict[str, Any]]:
        """``commands`` in calls of ``per_call``; prints one line when done or, with
        ``progress``, a line per call of a phase longer than one call."""
        results: list[dict[str, Any]] = []
        t = Timer()
        for start in range(0, len(commands), per_call):
            results += self.ledger.execute(
                self.admin, commands[start : start + per_call], bulk=True
            ).results
            if progress and len(commands) > per_call:
                done = min(start + per_call, len(commands))
                print(
                    f"  {name}: {done:,}/{len(commands):,} commands, {done / t.elapsed():,.0f}/s",
                    flush=True,
                )
        self.phases.append((name, len(commands), t.elapsed()))
        if not progress:
            print(f"  {name}: {len(commands):,} commands in {t.elapsed():.1f} s", flush=True)
        return results

    def close(self) -> None:
        self.ledger.close()


def _later(start: datetime | None, **delta: float) -> datetime | None:
    return None if start is None else start + timedelta(**delta)


def mine_registry(code: str, name: str, country: str) -> list[Any]:
    """A miner CODE, its mine CODE-MINE and its mining quota CODE-MQ."""
    from lodestone.ledger import commands as c

    return [
        c.RegisterActor(code, name, country, ["miner"]),
        c.RegisterFacility(f"{code}-MINE", f"{code} pit", "mine", code, country),
        c.IssueLicence(f"{code}-MQ", "mining_quota", code, Decimal("100000000"), *VALID),
    ]


def ore_lots(per: int, start: datetime | None = None) -> tuple[list[Any], dict[str, list[Lot]]]:
    """``per`` ore lots ORE-<m>-<j> at each of MINES, a little variety in neodymium and
    mass from lot to lot, ten minutes apart from ``start`` (None: dated when recorded).
    Returns the commands and each mine's lots."""
    from lodestone.ledger import commands as c

    ores: dict[str, list[Lot]] = {}
    cmds: list[Any] = []
    for m, (code, _, base) in enumerate(MINES):
        lots = []
        for j in range(per):
            comp = {e: Decimal(v) for e, v in base.items()}
            comp["Nd"] = floor9(comp["Nd"] + Decimal(j % 7) * comp["Nd"] / 100)
            kg = Decimal(5000 + (j * 37 % 50) * 100)
            lot = f"ORE-{m}-{j:04d}"
            cmds.append(
                c.ExtractOre(
                    facility=f"{code}-MINE",
                    quota=f"{code}-MQ",
                    lot_code=lot,
                    mass_kg=kg,
                    composition=comp,
                    actor=code,
                    occurred_at=_later(start, minutes=10 * j),
                )
            )
            lots.append(Lot(f"{code}/{lot}", kg, comp))
        ores[code] = lots
    return cmds, ores


def beneficiation(
    ores: dict[str, list[Lot]], group: int, start: datetime | None = None
) -> tuple[list[Any], dict[str, list[Lot]]]:
    """At each mine, ``group`` ore lots -> one concentrate CON-<m>-<g> (95 % of each rare
    earth recovered, 60 % rare earths), an hour apart from ``start``. Returns the
    commands and each mine's concentrates."""
    from lodestone.domain.chain import OutputSpec
    from lodestone.ledger import commands as c

    cmds: list[Any] = []
    cons: dict[str, list[Lot]] = {}
    for m, (code, _, _) in enumerate(MINES):
        cons[code] = []
        lots = ores[code]
        for g in range(0, len(lots), group):
            part = lots[g : g + group]
            rec = {e: sum((x.element(e) for x in part), Decimal(0)) * Decimal("0.95") for e in RE}
            rec = {e: v for e, v in rec.items() if v > 0}
            kg = floor6(sum(rec.values(), Decimal(0)) / Decimal("0.60"))
            comp = {e: floor9(v / kg) for e, v in rec.items()}
            lot = f"CON-{m}-{g // group:03d}"
            cmds.append(
                c.Transform(
                    facility=f"{code}-MINE",
                    process="beneficiation",
                    reference=f"BEN-{m}-{g // group:03d}",
                    inputs=[(x.ref, x.kg) for x in part],
                    outputs=[OutputSpec(lot, "concentrate", kg, comp)],
                    actor=code,
                    occurred_at=_later(start, hours=g // group),
                )
            )
            cons[code].append(Lot(f"{code}/{lot}", kg, comp))
    return cmds, cons


def mine_merges(
    cons: dict[str, list[Lot]], buyer: str, to_facility: str, start: datetime | None = None
) -> tuple[list[Any], list[Lot]]:
    """Each mine merges its concentrates into CONM-<m> at ``start`` and sells it a day
    later to ``buyer`` at ``to_facility``. Returns the commands and the merged lots."""
    from lodestone.domain.values import blend
    from lodestone.ledger import commands as c

    cmds: list[Any] = []
    merged: list[Lot] = []
    for m, (code, _, _) in enumerate(MINES):
        parts = cons[code]
        lot = f"CONM-{m}"
        cmds += [
            c.Merge(
                lot_code=lot, inputs=[(x.ref, x.kg) for x in parts], actor=code, occurred_at=start
            ),
            c.TransferCustody(
                batch=f"{code}/{lot}",
                buyer=buyer,
                contract=f"K-CON-{m}",
                to_facility=to_facility,
                price=Decimal("250000"),
                currency="USD",
                actor=code,
                occurred_at=_later(start, days=1),
            ),
        ]
        merged.append(
            Lot(
                f"{code}/{lot}",
                sum((x.kg for x in parts), Decimal(0)),
                blend((x.kg, x.comp) for x in parts),
            )
        )
    return cmds, merged


def source_digest(*modules: str) -> str:
    """What a cached store's recorded events depend on: the domain and ledger sources,
    then those of ``modules`` (e.g. "lodestone.integrity")."""
    import lodestone.domain
    import lodestone.ledger

    digest = hashlib.sha256()
    for package in (lodestone.domain, lodestone.ledger):
        for path in sorted(Path(next(iter(package.__path__))).glob("*.py")):
            digest.update(path.name.encode() + path.read_bytes())
    for name in modules:
        digest.update(Path(str(importlib.import_module(name).__file__)).read_bytes())
    return digest.hexdigest()[:10]


# --------------------------------------------------------------------------------------
# where the time goes: timing proxies around what the query layer is given
# --------------------------------------------------------------------------------------


def timed(f: Callable[..., Any], label: str, acc: dict[str, float]) -> Callable[..., Any]:
    """``f``, adding its time to ``acc[label]``."""

    def call(*a: Any, **kw: Any) -> Any:
        t = time.perf_counter()
        try:
            return f(*a, **kw)
        finally:
            acc[label] = acc.get(label, 0.0) + time.perf_counter() - t

    return call


class Timed:
    """Wraps an object so that the named methods add their time to ``acc[label]``;
    ``nested`` wraps attributes the same way (e.g. ``ledger.repository``)."""

    def __init__(
        self,
        obj: Any,
        labels: dict[str, str],
        acc: dict[str, float],
        nested: dict[str, dict[str, str]] | None = None,
    ) -> None:
        self._obj = obj
        self._labels = labels
        self._acc = acc
        self._nested = nested or {}

    def __getattr__(self, attr: str) -> Any:
        value = getattr(self._obj, attr)
        if attr in self._nested:
            value = Timed(value, self._nested[attr], self._acc)
        elif attr in self._labels:
            value = timed(value, self._labels[attr], self._acc)
        setattr(self, attr, value)  # found in the instance from now on: no wrapper per call
        return value


class Steps:
    """``step(label, f, *args)``: calls f, adds its time to ``acc[label]``."""

    def __init__(self, acc: dict[str, float]) -> None:
        self.acc = acc

    def __call__(self, label: str, f: Callable[..., Any], *a: Any, **kw: Any) -> Any:
        return timed(f, label, self.acc)(*a, **kw)


def step_medians(runs: Sequence[dict[str, float]], warmup: int) -> dict[str, float]:
    """Per step (in the order first seen), the median in ms over the runs after the first
    ``warmup``; 0 for a run that did not take that step."""
    measured = runs[warmup:]
    labels = dict.fromkeys(k for r in measured for k in r)
    return {k: statistics.median(r.get(k, 0.0) for r in measured) * 1000 for k in labels}


# ---- goal lines, collected by bench/summary.py ---------------------------------------

#: A goal line starts with this, then one JSON object: bench/summary.py reads them from
#: each benchmark's output; a person reads the tables printed beside them.
GOAL_PREFIX = "GOAL\t"


def goal(
    key: str,
    figure: str,
    measured: float | None,
    unit: str,
    *,
    at_least: float | None = None,
    under: float | None = None,
    condition: bool = True,
    note: str = "",
) -> bool:
    """Print one machine-readable goal line and answer whether the goal was met.

    ``key`` names the goal for bench/summary.py (``script.figure``, stable across edits
    of the wording); ``at_least`` or ``under`` is the goal in ``unit``; ``condition``
    is what else must hold (the asked rate sustained, the fingerprint equal); ``note``
    says why it is not met when that is not the figure (e.g. the rate not reached).
    A figure that was not measured (None or NaN) is never met."""
    assert (at_least is None) != (under is None), "one of at_least / under"
    value = None if measured is None or math.isnan(measured) else float(measured)
    if at_least is not None:
        wanted = f">= {_goal_number(at_least)} {unit}"
        met = value is not None and value >= at_least
    else:
        assert under is not None
        wanted = f"< {_goal_number(under)} {unit}"
        met = value is not None and value < under
    met = met and condition
    line = {
        "key": key,
        "figure": figure,
        "measured": value,
        "unit": unit,
        "goal": wanted,
        "met": met,
        "note": note,
        "load": load(),
    }
    print(GOAL_PREFIX + json.dumps(line), flush=True)
    return met


def _goal_number(x: float) -> str:
    if x == int(x):
        return f"{int(x):,}"
    return f"{x:,.3g}"
