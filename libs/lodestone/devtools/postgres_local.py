"""A throwaway PostgreSQL server started from the distribution's own binaries (Debian's
``postgresql`` package puts them in /usr/lib/postgresql/<major>/bin), for tests, demos
and scripts that want a real server on this machine. It listens on 127.0.0.1 only, on a free port, with
its unix socket inside the data directory, and trusts the one login role it creates:
never point it at data you care about.

PostgreSQL refuses to run as root, so when we are root the server runs as the
``postgres`` system user (the package creates it; we create it if it is missing) and the
data directory is handed to that user.

Development only (tests, benchmarks, scripts): product code reaches PostgreSQL through
``lodestone.infra.postgres`` (``postgres_env`` included) and never imports this module.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Self

import psycopg
from psycopg import sql

from lodestone.devtools.processes import LocalServer, cleanup, stop, tail, wait_gone

DEBIAN_ROOT = Path("/usr/lib/postgresql")

#: Settings written once into postgresql.conf. Durability stays at PostgreSQL's defaults
#: (fsync, synchronous_commit, full_page_writes all on): crash tests must mean something.
SERVER_SETTINGS: Mapping[str, str] = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "on",
    "synchronous_commit": "on",
    "full_page_writes": "on",
    # Every Ledger holds a pool (5 + 10 overflow by default) and every view another.
    "max_connections": "300",
    "timezone": "'UTC'",
    "log_timezone": "'UTC'",
}


class PostgresNotFound(RuntimeError):
    """No PostgreSQL server binaries on this machine."""


class PostgresStartError(RuntimeError):
    """The server did not come up; the message carries the tail of its log."""


def find_binaries(root: Path = DEBIAN_ROOT) -> Path:
    """The ``bin`` directory of the newest PostgreSQL under ``root`` (Debian's layout),
    else the one whose ``initdb`` is on PATH."""
    candidates = []
    if root.is_dir():
        for child in root.iterdir():
            bin_dir = child / "bin"
            if child.name.isdigit() and (bin_dir / "initdb").exists():
                candidates.append((int(child.name), bin_dir))
    if candidates:
        return max(candidates)[1]
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    raise PostgresNotFound(
        f"no PostgreSQL server binaries under {root}/*/bin and no initdb on PATH; "
        "install them with: apt-get install -y postgresql "
        "(or set LODESTONE_POSTGRES_URL to a server you have)"
    )


class LocalPostgres(LocalServer):
    """One PostgreSQL cluster in ``data_dir`` (a fresh temporary directory by default,
    removed by ``close()``). ``start()`` initialises the cluster on first use, starts
    the server and returns a URL for the role ``user`` on database ``database``.

    ``kill()`` SIGKILLs the postmaster and every server process with it, the nearest
    thing to pulling the plug; the next ``start()`` runs crash recovery from the
    write-ahead log and comes back on the same port.
    """

    def __init__(
        self,
        data_dir: Path | str | None = None,
        *,
        bin_dir: Path | str | None = None,
        user: str = "lodestone",
        database: str = "lodestone",
        port: int | None = None,
        settings: Mapping[str, str] | None = None,
        start_timeout: float = 60.0,
    ) -> None:
        _check_identifier(user, "user")
        _check_identifier(database, "database")
        self.bin_dir = Path(bin_dir) if bin_dir else find_binaries()
        self.user = user
        self.database = database
        self.port = port
        self.settings = {**SERVER_SETTINGS, **(settings or {})}
        self.start_timeout = start_timeout
        self._run_as = _server_account()
        account = self._run_as
        self._uid = account.pw_uid if account else None
        self._gid = account.pw_gid if account else None
        # Running as postgres, drop root's supplementary groups along with its uid.
        self._extra_groups: list[int] | None = [] if account else None
        self._base: Path | None = None
        if data_dir is None:
            self._base = Path(tempfile.mkdtemp(prefix="lodestone-pg-"))
            self.data_dir = self._base / "data"
        else:
            self.data_dir = Path(data_dir).resolve()
        self._process: subprocess.Popen[bytes] | None = None
        self._processes: list[subprocess.Popen[bytes]] = []
        # Stops the server and removes a temporary directory even if nobody calls
        # close() (at garbage collection or interpreter exit), so no server outlives us.
        self._finalizer = weakref.finalize(self, cleanup, self._processes, self._base, _stop)

    # --- lifecycle ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("not started yet")
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.database}"

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}.log"

    def start(self) -> str:
        if self.running:
            return self.url
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        chosen = self.port is None
        for attempt in range(3):
            if self.port is None:
                self.port = _free_port()
            try:
                self._launch()
                break
            except PostgresStartError as error:
                # Another process may have taken the port between our probe and the
                # server's bind: pick another one, unless the caller chose it.
                if not (chosen and attempt < 2 and "could not bind" in str(error)):
                    raise
                self.port = None
        self._create_database()
        return self.url

    def stop(self, timeout: float = 30.0) -> None:
        """A clean ("fast") shutdown: open sessions are ended, committed work kept."""
        process, self._process = self._process, None
        if process is None:
            return
        _stop(process, timeout)
        self._processes.remove(process)

    def kill(self) -> None:
        """SIGKILL the postmaster and all its processes: no shutdown, no checkpoint."""
        process, self._process = self._process, None
        if process is None:
            return
        _kill(process)
        self._processes.remove(process)

    def __enter__(self) -> Self:
        self.start()
        return self

    # --- steps -------------------------------------------------------------------------

    def _initdb(self) -> None:
        if self._base is not None:
            self._give(self._base)
        _check_reachable(self.data_dir, self._run_as)
        if self._base is None:
            self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._give(self.data_dir)
        # --no-sync: a cluster whose initdb was cut short is thrown away, not used, so
        # there is no point waiting for its files to reach the disk (halves the time).
        # The server itself runs with fsync on.
        result = self._run(
            [
                str(self.bin_dir / "initdb"),
                "--pgdata",
                str(self.data_dir),
                "--username",
                self.user,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ]
        )
        if result.returncode != 0:
            raise PostgresStartError(f"initdb failed:\n{result.stdout.decode(errors='replace')}")
        # Loopback only, and only for our role; the socket sits in the private data dir.
        (self.data_dir / "pg_hba.conf").write_text(
            f"local all all trust\nhost all {self.user} 127.0.0.1/32 trust\n"
        )
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\n# lodestone.devtools.postgres_local\n")
            for key, value in self.settings.items():
                conf.write(f"{key} = {value}\n")
        self._give(self.data_dir / "pg_hba.conf")

    def _launch(self) -> None:
        log = self.log_path.open("ab")
        self._give(self.log_path)
        try:
            process = subprocess.Popen(
                [
                    str(self.bin_dir / "postgres"),
                    "-D",
                    str(self.data_dir),
                    "-p",
                    str(self.port),
                    "-k",
                    str(self.data_dir),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Own session: a Ctrl-C meant for the test runner does not shut the
                # server down under the fixtures that are still using it.
                start_new_session=True,
                cwd=self.data_dir,
                env=_child_env(),
                user=self._uid,
                group=self._gid,
                extra_groups=self._extra_groups,
            )
        finally:
            log.close()
        self._process = process
        self._processes.append(process)
        deadline = time.monotonic() + self.start_timeout
        while True:
            if process.poll() is not None:
                self._processes.remove(process)
                self._process = None
                raise PostgresStartError(
                    f"postgres exited with {process.returncode}:\n{self._log_tail()}"
                )
            try:
                with psycopg.connect(self._conninfo("postgres"), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    self.kill()
                    raise PostgresStartError(
                        f"postgres not ready after {self.start_timeout}s:\n{self._log_tail()}"
                    ) from None
                time.sleep(0.05)

    def _create_database(self) -> None:
        with psycopg.connect(self._conninfo("postgres"), autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)
            ).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))

    # --- helpers -----------------------------------------------------------------------

    def _conninfo(self, dbname: str) -> str:
        return psycopg.conninfo.make_conninfo(
            host="127.0.0.1", port=self.port, user=self.user, dbname=dbname
        )

    def _run(self, args: list[str]) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=self.data_dir.parent,
            env=_child_env(),
            check=False,
            user=self._uid,
            group=self._gid,
            extra_groups=self._extra_groups,
        )

    def _give(self, path: Path) -> None:
        if self._run_as is not None:
            os.chown(path, self._run_as.pw_uid, self._run_as.pw_gid)

    def _log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return tail(text, lines)


# --- module helpers ----------------------------------------------------------------------


_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def _check_identifier(name: str, what: str) -> None:
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"{what} {name!r}: use lower-case letters, digits and _ (max 63)")


def _server_account() -> pwd.struct_passwd | None:
    """Whom the server runs as: ourselves, or ``postgres`` when we are root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        pass
    # Debian's package creates this account; a bare machine may lack it.
    subprocess.run(
        [
            "useradd",
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            "postgres",
        ],
        check=True,
        capture_output=True,
    )
    return pwd.getpwnam("postgres")


def _check_reachable(path: Path, account: pwd.struct_passwd | None) -> None:
    """initdb would fail obscurely if the server's account cannot reach the directory
    (e.g. under root's 0700 pytest temp dir): say so plainly."""
    if account is None:
        return
    groups = set(os.getgrouplist(account.pw_name, account.pw_gid))
    for parent in path.parents:
        if not parent.exists():
            continue  # we will make it, as root, with the usual 0755
        info = parent.stat()
        if info.st_uid == account.pw_uid:
            ok = info.st_mode & stat.S_IXUSR
        elif info.st_gid in groups:
            ok = info.st_mode & stat.S_IXGRP
        else:
            ok = info.st_mode & stat.S_IXOTH
        if not ok:
            raise PostgresStartError(
                f"user {account.pw_name} cannot enter {parent}, so cannot reach {path}: "
                "put the data directory elsewhere (the default temp dir works)"
            )


def _child_env() -> dict[str, str]:
    # No PG* client variables (PGPORT, PGDATA...) leak into the server's tools.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (Linux /proc; empty elsewhere)."""
    found = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(fields[1]) == pid:
            found.append(int(stat_file.parent.name))
    return found


def _stop(process: subprocess.Popen[bytes], timeout: float) -> None:
    # SIGINT is PostgreSQL's "fast" shutdown: roll back sessions, checkpoint, exit.
    stop(process, timeout, signal.SIGINT, _kill)


def _kill(process: subprocess.Popen[bytes]) -> None:
    # Each backend makes itself a process-group leader, so killpg would miss them:
    # name the postmaster's children first, then kill them all at once.
    victims = [process.pid, *_children(process.pid)]
    for pid in victims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.wait()
    # A restart refuses to run while any old process still holds shared memory.
    wait_gone(victims[1:], timeout=10.0)
