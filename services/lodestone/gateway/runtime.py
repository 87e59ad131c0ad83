"""What one gateway process runs: the ledger, the read-model view and, on the embedded
default, the projector thread that follows the event store's notification log. With a
Kafka bootstrap address configured it also runs the relay in-process (the store stays
the authority: requests never wait for Kafka). Separate relay and projector processes
are ``lodestone relay`` and ``lodestone project``."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from lodestone.audit.checkpointer import Checkpointer
from lodestone.bootstrap.settings import Settings
from lodestone.bootstrap.stores import (
    build_genealogy_view,
    build_ledger,
    build_ledger_tables,
    open_shadow,
    open_view,
    stored_version,
)
from lodestone.infra.kafka.producers import producer
from lodestone.infra.kafka.topics import create_topic
from lodestone.ledger import Ledger
from lodestone.ledger.stores import CheckpointStore, EventRows
from lodestone.projections.genealogy import GenealogyView
from lodestone.projections.registry import REGISTRY, Registered
from lodestone.projections.tables import TableView
from lodestone.streaming import change_topics
from lodestone.streaming.checkpoints import CheckpointLoop, CheckpointPublisher
from lodestone.streaming.feeds import NotificationLogFeed
from lodestone.streaming.projector import Projector, genealogy_projector
from lodestone.streaming.rebuild import upgrade_beside
from lodestone.streaming.relay import Relay

log = logging.getLogger(__name__)


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ledger: Ledger = build_ledger(settings)
        if settings.embedded_projector:
            self._upgrade_beside()
        self.view: GenealogyView = build_genealogy_view(settings)
        self.projector: Projector | None = (
            genealogy_projector(self.ledger, self.view) if settings.embedded_projector else None
        )
        # History, bundles, verify, the relay and the checkpoints, on one connection.
        self._tables = build_ledger_tables(settings)
        self.rows: EventRows = self._tables.rows
        self.checkpoints: CheckpointStore = self._tables.checkpoints
        self.checkpointer = Checkpointer(self.ledger.recorder, self.checkpoints)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._producers: list[Any] = []
        # The views streams read change logs from: the genealogy's, others opened once.
        self._change_sources: dict[str, TableView[Any]] = {"genealogy": cast(Any, self.view)}
        self._change_sources_lock = threading.Lock()

    def _upgrade_beside(self) -> None:
        """Read models of an older version are rebuilt at this release's version beside
        them before they are opened (which would empty them): readers, here or in a
        gateway of the old release still running, never see an empty model."""
        for entry in REGISTRY:

            def shadow(entry: Registered = entry) -> tuple[TableView[Any], Path | str]:
                return open_shadow(self.settings, entry)

            upgrade_beside(
                entry.projection(),
                stored_version(self.settings, entry),
                shadow,
                NotificationLogFeed(self.ledger.recorder, self.ledger.mapper),
            )

    def start(self) -> None:
        if self.projector is not None:
            self._spawn("genealogy-projector", self.projector.run)
        if self.settings.kafka_bootstrap_servers and self.settings.embedded_relay:
            self._spawn("relay", self._relay)
        if self.settings.kafka_bootstrap_servers and self.settings.publish_changes:
            # The change topics of what this process projects (one publisher per
            # projection across processes: the others wait for its lock).
            for name in ["genealogy"] if self.projector is not None else []:
                self._threads.append(
                    change_topics.start_publisher(
                        self.settings, self.change_source(name), self._stop
                    )
                )
        self._spawn("checkpoints", self._checkpoints)

    def _spawn(self, name: str, target: Callable[[threading.Event, float], None]) -> None:
        interval = self.settings.projector_interval
        thread = threading.Thread(
            target=target,
            args=(self._stop, interval),
            name=name,
            daemon=True,
        )
        self._threads.append(thread)
        thread.start()

    def _relay(self, stop: threading.Event, interval: float) -> None:
        # Built in the thread: a broker that is down must not stop the gateway starting.
        settings = self.settings
        assert settings.kafka_bootstrap_servers
        while not stop.is_set():
            try:
                create_topic(
                    settings.kafka_bootstrap_servers,
                    settings.kafka_topic,
                    settings.kafka_partitions,
                    settings.kafka_retention_ms,
                )
                kafka = producer(settings.kafka_bootstrap_servers)
                break
            except Exception as error:
                log.warning(
                    "relay waiting for Kafka at %s: %s", settings.kafka_bootstrap_servers, error
                )
                stop.wait(2.0)
        else:
            return
        self._producers.append(kafka)
        Relay(
            self.ledger.recorder,
            self.ledger.mapper,
            kafka,
            self._tables.positions,
            topic=settings.kafka_topic,
        ).run(stop, interval)

    def _checkpoints(self, stop: threading.Event, _: float) -> None:
        settings = self.settings
        connect = None
        if settings.kafka_bootstrap_servers and settings.embedded_relay:
            bootstrap = settings.kafka_bootstrap_servers

            def connect() -> CheckpointPublisher:
                create_topic(bootstrap, settings.checkpoint_topic, 1, settings.kafka_retention_ms)
                kafka = producer(bootstrap, client_id="lodestone-checkpoints")
                self._producers.append(kafka)
                return CheckpointPublisher(
                    self.checkpoints, kafka, self._tables.positions, topic=settings.checkpoint_topic
                )

        CheckpointLoop(self.checkpointer, connect).run(stop, settings.checkpoint_interval)

    def change_source(self, name: str) -> TableView[Any]:
        """The view of projection ``name`` whose change log its streams read."""
        with self._change_sources_lock:
            found = self._change_sources.get(name)
            if found is None:
                opened = open_view(self.settings, REGISTRY[name])
                assert isinstance(opened, TableView)
                found = self._change_sources[name] = opened
            return found

    def fresh_view(self) -> GenealogyView:
        """The view, caught up with every event recorded so far (read-your-writes on
        the embedded default)."""
        if self.projector is not None:
            self.projector.catch_up()
        return self.view

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        for kafka in self._producers:
            kafka.close()
        for name, source in self._change_sources.items():
            if name != "genealogy":
                source.close()
        self.view.close()
        self._tables.close()
        self.ledger.close()
