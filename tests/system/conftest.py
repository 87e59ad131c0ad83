"""Real processes around a real broker: the relay and projectors run as
``python -m lodestone.relay.main`` / ``lodestone.projector.main`` children that the
tests SIGKILL and restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from lodestone.bootstrap.settings import Settings
from lodestone.bootstrap.stores import build_genealogy_view, build_ledger
from lodestone.infra.kafka.topics import create_topic
from lodestone.ledger import Ledger
from lodestone.projections.genealogy import GenealogyView
from lodestone.streaming.projector import genealogy_projector


def wait_until(
    condition: Callable[[], bool], timeout: float = 60.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@dataclass
class Pipeline:
    """A data directory (SQLite event store and read models), a topic and a consumer
    group of its own on the shared broker, and the child processes it started."""

    bootstrap: str
    data_dir: Path
    topic: str
    group: str
    partitions: int = 3
    children: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith("LODESTONE_")},
            "LODESTONE_DATA_DIR": str(self.data_dir),
            "LODESTONE_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "LODESTONE_KAFKA_TOPIC": self.topic,
            "LODESTONE_KAFKA_PARTITIONS": str(self.partitions),
            "LODESTONE_PROJECTOR_GROUP": self.group,
            # Change topics of this pipeline's own (the broker is shared by the session).
            "LODESTONE_CHANGE_TOPICS": self.change_topics,
            **extra,
        }

    def settings(self, **extra: Any) -> Settings:
        return Settings(
            data_dir=self.data_dir,
            kafka_bootstrap_servers=self.bootstrap,
            kafka_topic=self.topic,
            kafka_partitions=self.partitions,
            projector_group=self.group,
            change_topics=self.change_topics,
            **extra,
        )

    @property
    def change_topics(self) -> str:
        return f"{self.topic}.projection.{{name}}.v1"

    def start(self, module: str, name: str, *args: str, **env: str) -> subprocess.Popen[bytes]:
        log = open(self.data_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        child = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            env=self.env(**env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.children.append(child)
        return child

    def relay(self) -> subprocess.Popen[bytes]:
        return self.start("lodestone.relay.main", "relay")

    def projector(self, name: str = "projector") -> subprocess.Popen[bytes]:
        # The genealogy alone: these tests prove the genealogy's exactly-once effect,
        # and a process running every read model joins (and, killed, leaves behind) a
        # consumer group per projection, which slows a survivor's take-over.
        return self.start("lodestone.projector.main", name, "--projection", "genealogy")

    def ledger(self) -> Ledger:
        return build_ledger(self.settings())

    def view(self) -> GenealogyView:
        return build_genealogy_view(self.settings())

    def log(self, name: str) -> str:
        path = self.data_dir / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def close(self) -> None:
        for child in self.children:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait(timeout=10)


def kill(child: subprocess.Popen[bytes]) -> None:
    """SIGKILL: no clean-up, no flush, no goodbye."""
    os.killpg(child.pid, signal.SIGKILL)
    child.wait(timeout=10)


def reference_fingerprint(ledger: Ledger, tmp_path: Path) -> str:
    """The genealogy projected straight from the event store: the state a Kafka-fed
    projection must end in."""
    view = build_genealogy_view(Settings(data_dir=tmp_path / "reference"))
    genealogy_projector(ledger, view).catch_up()
    fingerprint = view.fingerprint()
    view.close()
    return fingerprint


@pytest.fixture
def pipeline(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Pipeline]:
    name = f"t{uuid.uuid4().hex[:10]}"
    pipe = Pipeline(
        kafka_bootstrap, tmp_path / "data", f"lodestone.events.{name}", f"genealogy.{name}"
    )
    pipe.data_dir.mkdir()
    create_topic(kafka_bootstrap, pipe.topic, pipe.partitions)
    yield pipe
    pipe.close()
