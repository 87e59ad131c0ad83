"""What the local Kafka broker and the local PostgreSQL server do alike with their
server process: the lifecycle around ``start``/``stop`` (``LocalServer``), a stop by the
server's own shutdown signal with a kill after a grace period, and the clean-up that runs
at garbage collection or interpreter exit so that no server outlives its launcher."""

from __future__ import annotations

import shutil
import subprocess
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

Process = subprocess.Popen[bytes]


class LocalServer:
    """One server process at a time (``_process``, also listed in ``_processes`` until it
    exits); ``_finalizer`` stops whatever is left and removes a temporary directory."""

    _process: Process | None
    _processes: list[Process]
    _finalizer: weakref.finalize[..., Any]

    def stop(self, timeout: float = 30.0) -> None:
        raise NotImplementedError

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def close(self) -> None:
        """Stop the server; remove its data directory if it was a temporary one."""
        self.stop()
        self._finalizer()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def stop(process: Process, timeout: float, signum: int, kill: Callable[[Process], None]) -> None:
    """``signum`` (the server's clean shutdown), then ``kill(process)`` if it is still
    running after ``timeout`` seconds."""
    if process.poll() is not None:
        return
    process.send_signal(signum)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        kill(process)


def cleanup(
    processes: list[Process], base: Path | None, stop: Callable[[Process, float], None]
) -> None:
    """The finalizer's work: every listed process stopped, ``base`` removed."""
    for process in list(processes):
        stop(process, 30.0)
    processes.clear()
    if base is not None:
        shutil.rmtree(base, ignore_errors=True)


def alive(pid: int) -> bool:
    """``pid`` runs and is not a zombie (which has let go of its memory and ports)."""
    try:
        status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return status not in ("Z", "X")


def wait_gone(pids: list[int], timeout: float) -> None:
    """Until none of ``pids`` is alive, or ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    for pid in pids:
        while time.monotonic() < deadline and alive(pid):
            time.sleep(0.01)


def tail(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[-lines:])
