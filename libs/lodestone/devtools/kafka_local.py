"""A real single-node Apache Kafka broker (KRaft, broker and controller in one JVM) started
from the official jars, for tests, benchmarks and ``lodestone kafka up`` on machines
without Docker.

The jars come from Maven Central through the tiny Maven project in deploy/kafka (the
broker, ``org.apache.kafka:kafka_2.13``, plus the log4j backend that its POM leaves out),
copied once into deploy/kafka/lib. A broker lives in one data directory::

    <data_dir>/server.properties   written on every start (ports kept once formatted)
    <data_dir>/data/               log.dirs: the partitions and the KRaft metadata log
    <data_dir>/broker.log          log4j, warnings and errors only
    <data_dir>/broker.out          the JVM's own stdout and stderr
    <data_dir>/lodestone-kafka.json  pid and address of a detached broker (CLI)

It listens on 127.0.0.1 only, without authentication: never point it at data you care
about. Durability is Kafka's default (the page cache, no fsync per message): a
``kill()`` loses nothing acknowledged, a power cut could.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Self

from lodestone.devtools.processes import LocalServer, alive, cleanup, stop, tail

#: Broker settings written into server.properties; ports and paths are added per start.
SERVER_SETTINGS: Mapping[str, str] = {
    "process.roles": "broker,controller",
    "node.id": "1",
    "controller.listener.names": "CONTROLLER",
    "inter.broker.listener.name": "PLAINTEXT",
    "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
    # One broker: every internal topic must make do with one replica, or the first
    # consumer group (offsets) or transactional producer (transaction state) would wait
    # forever for replicas that never come.
    "offsets.topic.replication.factor": "1",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "share.coordinator.state.topic.replication.factor": "1",
    "share.coordinator.state.topic.min.isr": "1",
    "default.replication.factor": "1",
    "min.insync.replicas": "1",
    # A lone consumer joins its group at once instead of after 3 s.
    "group.initial.rebalance.delay.ms": "0",
    # After a SIGKILL the restarted broker cannot register again until the controller
    # has given up on the dead incarnation's session (DUPLICATE_BROKER_REGISTRATION): 3 s
    # instead of the default 9 s. Heartbeats go to the controller in the same JVM.
    "broker.heartbeat.interval.ms": "1000",
    "broker.session.timeout.ms": "3000",
    # Topics are created on purpose (partitions, infinite retention), never by a typo.
    "auto.create.topics.enable": "false",
    "num.partitions": "1",
}

#: JVM flags of Kafka's own kafka-run-class.sh, minus JMX; the heap is added per start.
JVM_OPTIONS: tuple[str, ...] = (
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-Djava.awt.headless=true",
)

#: HotSpot's messages about the class archive (classes it skips, a stale archive it
#: ignores) are noise here: a missing or unusable archive only means a slower start.
_QUIET_CDS = ("-Xlog:cds*=off", "-Xlog:class+path=off")

STATE_FILE = "lodestone-kafka.json"
_FETCHED_MARKER = ".fetched"


class LocalKafkaError(RuntimeError):
    """Base of everything that can go wrong with the local broker."""


class KafkaUnavailable(LocalKafkaError):
    """The broker cannot be had on this machine: java or mvn missing or too old, or the
    jars could not be fetched. Callers may fall back to another way (Docker)."""


class KafkaStartError(LocalKafkaError):
    """The broker did not come up; the message carries the tail of its logs."""


def default_home() -> Path:
    """deploy/kafka of this source tree: the pom.xml, log4j2.properties and lib/."""
    return Path(__file__).resolve().parents[3] / "deploy" / "kafka"


@dataclass(frozen=True)
class BrokerState:
    """What ``lodestone kafka up`` leaves behind for ``down`` and ``status``."""

    pid: int
    bootstrap: str
    controller: str
    data_dir: str


class LocalKafka(LocalServer):
    """One broker process in one data directory.

    ``start(data_dir)`` formats the directory on first use, starts the broker, waits until
    it answers and returns its bootstrap address. Without a data directory a temporary one
    is made and removed by ``close()``. ``stop()`` shuts down cleanly, ``kill()`` pulls the
    plug (SIGKILL) and ``restart()`` comes back on the same directory and ports, so
    clients configured with the old address reconnect by themselves.

    With ``class_archive`` (the default) the JVMs start faster once
    lib/kafka-broker-java<version>.jsa exists, a HotSpot class-data-sharing archive of the
    classes a broker loads (measured on a busy 2-CPU machine: a fresh directory ready in
    7 s instead of 12). The first broker on a machine writes it when it stops cleanly,
    which makes that one stop some seconds longer; one broker at a time does so, under a
    file lock. An archive that does not fit (other jars) is ignored by the JVM, never an
    error.
    """

    def __init__(
        self,
        *,
        home: Path | str | None = None,
        heap: str = "512m",
        config: Mapping[str, str] | None = None,
        start_timeout: float = 120.0,
        fetch_timeout: float = 900.0,
        class_archive: bool = True,
    ) -> None:
        self.home = Path(home).resolve() if home else default_home()
        self.heap = heap
        self.settings = {**SERVER_SETTINGS, **(config or {})}
        self.start_timeout = start_timeout
        self.fetch_timeout = fetch_timeout
        self.class_archive = class_archive
        self._java_version: str | None = None
        self._dump: _ArchiveDump | None = None
        self.data_dir: Path | None = None
        self.port: int | None = None
        self.controller_port: int | None = None
        self._base: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._processes: list[subprocess.Popen[bytes]] = []
        # Stops the broker and removes a temporary directory even if nobody calls
        # close() (at garbage collection or interpreter exit), so no broker outlives us
        # unless detach() says so.
        self._finalizer = weakref.finalize(self, cleanup, self._processes, None, _stop)

    # --- the jars ----------------------------------------------------------------------

    @property
    def lib_dir(self) -> Path:
        return self.home / "lib"

    def ensure_jars(self) -> Path:
        """Fetch the broker jars into ``lib/`` unless the current pom.xml already put
        them there; return the directory. Safe to call from parallel processes."""
        # Fail early and plainly, before Maven downloads anything.
        self._java_version = java_version()
        pom = self.home / "pom.xml"
        if not pom.is_file():
            raise KafkaUnavailable(f"no {pom}: cannot fetch the Kafka broker jars")
        digest = hashlib.sha256(pom.read_bytes()).hexdigest()
        marker = self.lib_dir / _FETCHED_MARKER
        if _read(marker) == digest:
            return self.lib_dir
        self.lib_dir.mkdir(parents=True, exist_ok=True)
        with _locked(self.lib_dir / ".lock"):
            if _read(marker) == digest:  # another process fetched while we waited
                return self.lib_dir
            mvn = shutil.which("mvn")
            if mvn is None:
                raise KafkaUnavailable(
                    "mvn not found on PATH: Maven is needed once to fetch the Kafka broker "
                    "jars (apt-get install -y maven), or set KAFKA_BOOTSTRAP_SERVERS to a "
                    "broker you have"
                )
            marker.unlink(missing_ok=True)
            # A changed pom.xml (another Kafka version) must not leave old jars on the
            # classpath beside the new ones.
            for stale in [*self.lib_dir.glob("*.jar"), *self.lib_dir.glob("*.jsa*")]:
                stale.unlink()
            command = [
                mvn,
                "-B",
                "-q",
                "-f",
                str(pom),
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={self.lib_dir}",
            ]
            try:
                result = subprocess.run(
                    command,
                    cwd=self.home,
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    timeout=self.fetch_timeout,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                raise KafkaUnavailable(
                    f"Maven did not fetch the Kafka jars within {self.fetch_timeout:.0f}s"
                ) from None
            if result.returncode != 0 or not any(self.lib_dir.glob("kafka_2.13-*.jar")):
                output = (result.stdout + result.stderr).decode(errors="replace")
                raise KafkaUnavailable(
                    f"Maven could not fetch the Kafka broker jars ({' '.join(command[1:])} "
                    f"exited {result.returncode}):\n{_maven_errors(output)}"
                )
            marker.write_text(digest)
        return self.lib_dir

    # --- lifecycle ---------------------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        if self.port is None:
            raise LocalKafkaError("not started yet")
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def log_path(self) -> Path:
        return self._dir() / "broker.log"

    def start(self, data_dir: Path | str | None = None) -> str:
        """Start the broker in ``data_dir`` (default: the one used before, else a new
        temporary directory), wait until it answers, return its bootstrap address."""
        if self.running:
            return self.bootstrap
        if data_dir is not None:
            self.data_dir = Path(data_dir).resolve()
        elif self.data_dir is None:
            self._base = Path(tempfile.mkdtemp(prefix="lodestone-kafka-"))
            self.data_dir = self._base
            self._finalizer.detach()
            self._finalizer = weakref.finalize(self, cleanup, self._processes, self._base, _stop)
        self.ensure_jars()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        formatted = (self._log_dirs() / "meta.properties").exists()
        if formatted:
            self.port, self.controller_port = _ports_of(self._properties_path())
            # Whoever holds them (often this directory's broker, started elsewhere) would
            # answer our readiness probe while our own broker fails to start.
            for port in (self.port, self.controller_port):
                if not _port_free(port):
                    raise KafkaStartError(
                        f"127.0.0.1:{port}, a port of the broker in {self.data_dir}, is taken: "
                        "is that broker already running (lodestone kafka status)?"
                    )
        for attempt in range(3):
            if not formatted:
                # The controller's address is written into the metadata log by the
                # format step, so fresh ports mean a fresh format.
                self.port, self.controller_port = _free_port_pair()
                shutil.rmtree(self._log_dirs(), ignore_errors=True)
            self._write_properties()
            if not formatted:
                self._format()
            try:
                self._launch()
                self.wait_ready(self.start_timeout)
                return self.bootstrap
            except KafkaStartError as error:
                # Another process may have taken a port between our probe and the
                # broker's bind: pick others, unless the cluster already owns them.
                if formatted or attempt == 2 or "Address already in use" not in str(error):
                    raise
                formatted = False
        raise AssertionError("unreachable")

    def wait_ready(self, timeout: float | None = None) -> None:
        """Return once the broker answers a metadata request as an unfenced broker;
        raise KafkaStartError with the tail of its logs if it dies or times out."""
        timeout = self.start_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            process = self._process
            if process is None:
                raise KafkaStartError("the broker is not running")
            if process.poll() is not None:
                self._forget(process)
                raise KafkaStartError(
                    f"the Kafka broker exited with {process.returncode}:\n{self._log_tail()}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                raise KafkaStartError(
                    f"the Kafka broker did not answer within {timeout:.0f}s:\n{self._log_tail()}"
                )
            if broker_answers(self.bootstrap, timeout=min(5.0, remaining)):
                if process.poll() is None:
                    return
                continue  # it died meanwhile: report that, with its log
            time.sleep(0.1)

    def stop(self, timeout: float = 30.0) -> None:
        """Clean shutdown (SIGTERM): the broker closes its logs and leaves the cluster;
        SIGKILL if it takes longer than ``timeout`` seconds."""
        process = self._process
        if process is None:
            return
        if self._dump is not None and self._dump.process is process:
            timeout += 60.0  # the JVM writes the class archive on its way out
        _stop(process, timeout)
        self._forget(process)

    def kill(self) -> None:
        """SIGKILL the broker: no shutdown, no flush of its own. For crash tests."""
        process = self._process
        if process is None:
            return
        _kill_group(process)
        self._forget(process)

    def restart(self, timeout: float = 30.0) -> str:
        """Stop (cleanly, if still running) and start again on the same directory and
        ports; return the (unchanged) bootstrap address."""
        if self.data_dir is None:
            raise LocalKafkaError("never started: nothing to restart")
        self.stop(timeout)
        return self.start(self.data_dir)

    def detach(self) -> BrokerState:
        """Leave the running broker running after this object and this process are gone,
        and record it in ``<data_dir>/lodestone-kafka.json`` for ``stop_detached``."""
        process = self._process
        if process is None or not self.running:
            raise LocalKafkaError("no running broker to detach")
        if self._base is not None:
            raise LocalKafkaError("a broker in a temporary directory cannot be detached")
        state = BrokerState(
            pid=process.pid,
            bootstrap=self.bootstrap,
            controller=f"127.0.0.1:{self.controller_port}",
            data_dir=str(self._dir()),
        )
        (self._dir() / STATE_FILE).write_text(json.dumps(asdict(state), indent=2) + "\n")
        self._processes.remove(process)
        self._process = None
        if self._dump is not None:
            # Nobody will be here to adopt the archive it writes at exit.
            self._dump.release(adopt=False)
            self._dump = None
        return state

    def __enter__(self) -> Self:
        return self

    # --- steps -------------------------------------------------------------------------

    def _dir(self) -> Path:
        if self.data_dir is None:
            raise LocalKafkaError("not started yet")
        return self.data_dir

    def _log_dirs(self) -> Path:
        return self._dir() / "data"

    def _properties_path(self) -> Path:
        return self._dir() / "server.properties"

    def _write_properties(self) -> None:
        broker = f"127.0.0.1:{self.port}"
        controller = f"127.0.0.1:{self.controller_port}"
        values = {
            **self.settings,
            "listeners": f"PLAINTEXT://{broker},CONTROLLER://{controller}",
            "advertised.listeners": f"PLAINTEXT://{broker},CONTROLLER://{controller}",
            # Dynamic quorum (KIP-853): formatted with --standalone, the voter set lives
            # in the metadata log; controller.quorum.voters would contradict it.
            "controller.quorum.bootstrap.servers": controller,
            "log.dirs": str(self._log_dirs()),
        }
        lines = ["# Written by lodestone.devtools.kafka_local on every start.\n"]
        lines += [f"{key}={value}\n" for key, value in values.items()]
        self._properties_path().write_text("".join(lines))

    def _java(self, main: str, *args: str, jvm: tuple[str, ...] = ()) -> list[str]:
        return [
            "java",
            *jvm,
            *JVM_OPTIONS,
            f"-Dkafka.logs.dir={self._dir()}",
            f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}",
            "-cp",
            f"{self.lib_dir}/*",
            main,
            *args,
        ]

    def _format(self) -> None:
        cluster_id = self._tool("random-uuid").strip()
        self._tool(
            "format",
            "--standalone",
            "-t",
            cluster_id,
            "-c",
            str(self._properties_path()),
        )

    def _tool(self, *args: str) -> str:
        command = self._java("kafka.tools.StorageTool", *args, jvm=self._archive_options())
        result = subprocess.run(
            command,
            cwd=self._dir(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            output = (result.stdout + result.stderr).decode(errors="replace")
            # A Java exception says what went wrong first; the stack trace follows.
            head = "\n".join(output.splitlines()[:15])
            raise KafkaStartError(
                f"kafka.tools.StorageTool {args[0]} exited {result.returncode}:\n{head}"
            )
        return result.stdout.decode()

    def _launch(self) -> None:
        archive = self._archive_options()
        dump = None
        if self.class_archive and not archive:
            dump = self._dump or _ArchiveDump.claim(self._archive_path())
            if dump is not None:
                archive = (f"-XX:ArchiveClassesAtExit={dump.path}", *_QUIET_CDS)
        heap = (f"-Xms{self.heap}", f"-Xmx{self.heap}")
        command = self._java("kafka.Kafka", str(self._properties_path()), jvm=(*heap, *archive))
        with (self._dir() / "broker.out").open("ab") as out:
            process = subprocess.Popen(
                command,
                cwd=self._dir(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                # Own process group: a Ctrl-C meant for the test runner or the CLI does
                # not take the broker down under whoever still uses it.
                start_new_session=True,
            )
        self._process = process
        self._processes.append(process)
        if dump is not None:
            dump.process = process
            self._dump = dump

    def _archive_path(self) -> Path:
        # Named after the JVM: an archive is only valid for the JVM build that wrote it,
        # so a Java update makes the next broker write a fresh one.
        return self.lib_dir / f"kafka-broker-java{self._java_version}.jsa"

    def _archive_options(self) -> tuple[str, ...]:
        archive = self._archive_path()
        if not (self.class_archive and archive.exists()):
            return ()
        return (f"-XX:SharedArchiveFile={archive}", *_QUIET_CDS)

    def _forget(self, process: subprocess.Popen[bytes]) -> None:
        """Bookkeeping once ``process`` has exited, however it did."""
        if process in self._processes:
            self._processes.remove(process)
        if self._process is process:
            self._process = None
        if self._dump is not None and self._dump.process is process:
            # A SIGKILLed JVM wrote no archive, or only part of one.
            self._dump.release(adopt=process.returncode != -signal.SIGKILL)
            self._dump = None

    def _log_tail(self, lines: int = 40) -> str:
        parts = []
        for name in ("broker.log", "broker.out"):
            with contextlib.suppress(OSError):
                text = (self._dir() / name).read_text(errors="replace").strip()
                if text:
                    parts.append(f"--- {name}\n{tail(text, lines)}")
        return "\n".join(parts) or "(the broker wrote no log)"


class _ArchiveDump:
    """The right, held under a file lock, to have one broker write the class archive."""

    def __init__(self, archive: Path, lock: IO[str]) -> None:
        self.archive = archive
        self.path = archive.with_name(f"{archive.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        self.process: subprocess.Popen[bytes] | None = None
        self._lock = lock

    @classmethod
    def claim(cls, archive: Path) -> _ArchiveDump | None:
        lib_dir = archive.parent
        lock = (lib_dir / ".class-archive.lock").open("a")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            return None  # another broker is writing it
        # Left over from brokers that were killed or detached while holding the claim.
        for stale in [*lib_dir.glob("*.jsa.*.tmp"), *lib_dir.glob("*.jsa")]:
            stale.unlink(missing_ok=True)  # left by killed brokers, or by other JVMs
        return cls(archive, lock)

    def release(self, adopt: bool) -> None:
        try:
            if adopt and self.path.exists() and self.path.stat().st_size > 0:
                os.replace(self.path, self.archive)
            else:
                self.path.unlink(missing_ok=True)
        finally:
            self._lock.close()


# --- detached brokers (the CLI) -----------------------------------------------------------


def read_state(data_dir: Path | str) -> BrokerState | None:
    """The broker ``detach()`` recorded in ``data_dir``, if it is still running."""
    path = Path(data_dir) / STATE_FILE
    try:
        state = BrokerState(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    return state if _is_our_broker(state) else None


def stop_detached(data_dir: Path | str, timeout: float = 30.0) -> BrokerState | None:
    """Stop the broker recorded in ``data_dir`` (SIGTERM, SIGKILL after ``timeout``);
    return what was stopped, None if nothing was running."""
    state = read_state(data_dir)
    path = Path(data_dir) / STATE_FILE
    if state is None:
        path.unlink(missing_ok=True)
        return None
    with contextlib.suppress(ProcessLookupError):
        os.kill(state.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while alive(state.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if alive(state.pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(state.pid, signal.SIGKILL)
        while alive(state.pid):
            time.sleep(0.05)
    path.unlink(missing_ok=True)
    return state


def broker_answers(bootstrap: str, timeout: float = 5.0) -> bool:
    """True when a broker at ``bootstrap`` answers metadata and reports itself unfenced
    (registered with the controller, so it accepts topics and writes)."""
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    try:
        # A cheap probe first: the Kafka client would log every refused connection.
        socket.create_connection((host, int(port)), timeout=min(timeout, 1.0)).close()
    except OSError:
        return False
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    millis = max(int(timeout * 1000), 100)
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap,
            client_id="lodestone-kafka-probe",
            bootstrap_timeout_ms=millis,
            request_timeout_ms=millis,
        )
    except (KafkaError, OSError):
        return False
    try:
        cluster = admin.describe_cluster()
    except (KafkaError, OSError):
        return False
    finally:
        admin.close()
    return any(not broker.get("is_fenced", False) for broker in cluster.get("brokers", []))


# --- module helpers ------------------------------------------------------------------------


def java_version() -> str:
    """The version of the ``java`` on PATH (e.g. ``17.0.15``); Kafka 4 brokers need 17
    or newer."""
    java = shutil.which("java")
    if java is None:
        raise KafkaUnavailable(
            "java not found on PATH: the local Kafka broker needs Java 17 or newer "
            "(apt-get install -y openjdk-17-jre-headless), or set KAFKA_BOOTSTRAP_SERVERS "
            "to a broker you have"
        )
    result = subprocess.run(
        [java, "-version"], capture_output=True, stdin=subprocess.DEVNULL, check=False
    )
    found = re.search(r'version "((\d+)(?:\.(\d+))?[^"]*)"', result.stderr.decode(errors="replace"))
    if found is None:
        raise KafkaUnavailable(f"cannot tell the version of {java}: {result.stderr!r}")
    major = int(found.group(2))
    if major == 1 and found.group(3):  # "1.8.0" is Java 8
        major = int(found.group(3))
    if major < 17:
        raise KafkaUnavailable(f"{java} is Java {major}; Kafka 4 brokers need Java 17 or newer")
    return re.sub(r"[^\w.+-]", "_", found.group(1))


def _free_port_pair() -> tuple[int, int]:
    # Both probes stay bound until both ports are known, so the two come out distinct.
    with (
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as first,
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as second,
    ):
        first.bind(("127.0.0.1", 0))
        second.bind(("127.0.0.1", 0))
        return int(first.getsockname()[1]), int(second.getsockname()[1])


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As the broker binds: SO_REUSEADDR, so a closed socket in TIME_WAIT is no
        # obstacle, only a listening one is.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _ports_of(properties: Path) -> tuple[int, int]:
    try:
        text = properties.read_text()
    except OSError:
        raise KafkaStartError(
            f"{properties.parent} holds a formatted broker but no server.properties: "
            "cannot tell which ports it owns"
        ) from None
    broker = re.search(r"^listeners=.*PLAINTEXT://[^:,]+:(\d+)", text, re.MULTILINE)
    controller = re.search(r"^listeners=.*CONTROLLER://[^:,]+:(\d+)", text, re.MULTILINE)
    if broker is None or controller is None:
        raise KafkaStartError(f"no PLAINTEXT and CONTROLLER listeners in {properties}")
    return int(broker.group(1)), int(controller.group(1))


def _stop(process: subprocess.Popen[bytes], timeout: float) -> None:
    stop(process, timeout, signal.SIGTERM, _kill_group)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    # The JVM and anything it started share the broker's own process group.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _is_our_broker(state: BrokerState) -> bool:
    """The pid still runs kafka.Kafka on this data directory: a pid reused by another
    program after a reboot must never be signalled."""
    try:
        argv = Path(f"/proc/{state.pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    expected = str(Path(state.data_dir) / "server.properties").encode()
    return b"kafka.Kafka" in argv and expected in argv and alive(state.pid)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_MAVEN_BOILERPLATE = (
    "To see the full stack trace",
    "Re-run Maven",
    "For more information",
    "[Help",
)


def _maven_errors(output: str) -> str:
    """Maven's [ERROR] lines without its advice on reading Maven's errors."""
    lines = _ANSI.sub("", output).splitlines()
    errors = [
        line
        for line in lines
        if line.startswith("[ERROR]")
        and line[7:].strip()
        and not line[7:].strip().startswith(_MAVEN_BOILERPLATE)
    ]
    return "\n".join(errors) if errors else tail("\n".join(lines), 30)
