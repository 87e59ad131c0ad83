"""What one gateway process runs: the ledger, a view of every registered read model and,
on the embedded default, one projector thread per read model following the event
store's notification log. With a Kafka bootstrap address configured it also runs the
relay in-process (the store stays the authority: requests never wait for Kafka).
Separate relay and projector processes are ``lodestone relay`` and ``lodestone
project``."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from lodestone.audit.checkpointer import Checkpointer
from lodestone.bootstrap.settings import Settings
from lodestone.bootstrap.stores import (
    build_ledger,
    build_ledger_tables,
    build_refusal_log,
    open_shadow,
    open_view,
    stored_version,
)
from lodestone.gateway.auth import Throttle
from lodestone.gateway.fanout import Fanout
from lodestone.infra.kafka.producers import close_quietly, producer
from lodestone.infra.kafka.topics import create_topic
from lodestone.infra.postgres.stores import PostgresWriterLock
from lodestone.infra.sqlite.stores import SQLiteWriterLock
from lodestone.ledger import Ledger
from lodestone.ledger.group import GroupWriter
from lodestone.ledger.stores import CheckpointStore, EventRows, PositionStore, WriterLock
from lodestone.metrics import observe_group_commit
from lodestone.projections.anomalies import AnomaliesView, Thresholds
from lodestone.projections.base import View
from lodestone.projections.genealogy import GenealogyView
from lodestone.projections.refusals import RefusalLog
from lodestone.projections.registry import REGISTRY, Registered
from lodestone.projections.tables import TableView
from lodestone.reads.anomalies import AnomalyBook
from lodestone.streaming import change_topics
from lodestone.streaming.checkpoints import CheckpointLoop, CheckpointPublisher
from lodestone.streaming.feeds import NotificationLogFeed
from lodestone.streaming.projector import Projector, shared_log_projectors
from lodestone.streaming.rebuild import upgrade_beside
from lodestone.streaming.relay import Relay

log = logging.getLogger(__name__)


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ledger: Ledger = build_ledger(settings)
        if settings.embedded_projector:
            self._upgrade_beside()
        # Every registered read model: its view, and on the embedded default its own
        # projector (each keeps its own positions, so each catches up alone).
        self.views: dict[str, View[Any]] = {e.name: open_view(settings, e) for e in REGISTRY}
        # They share one reader of the notification log, which decodes each event once.
        self.projectors: dict[str, Projector] = (
            shared_log_projectors(
                self.ledger, [(e.name, e.projection(), self.views[e.name]) for e in REGISTRY]
            )
            if settings.embedded_projector
            else {}
        )
        self.view = cast(GenealogyView, self.views["genealogy"])
        self.projector: Projector | None = self.projectors.get("genealogy")
        # Refused writes, counted beside the read models (not events: see problems.py).
        self.refusals: RefusalLog = build_refusal_log(settings)
        # The anomalies read model and the rules evaluated over it once per position it
        # reaches.
        self.anomalies_view = cast(AnomaliesView, self.views["anomalies"])
        self.anomalies_projector: Projector | None = self.projectors.get("anomalies")
        key = settings.pseudonym_key
        self.anomalies = AnomalyBook(
            self.fresh_anomalies,
            Thresholds.with_overrides(settings.anomaly_thresholds),
            pseudonym_key=key.get_secret_value().encode() if key else secrets.token_bytes(32),
            state=self.anomalies_projector.position if self.anomalies_projector else None,
        )
        # History, bundles, verify, the relay and the checkpoints, on one connection.
        self._tables = build_ledger_tables(settings)
        self.rows: EventRows = self._tables.rows
        self.positions: PositionStore = self._tables.positions  # the embedded relay's
        self.checkpoints: CheckpointStore = self._tables.checkpoints
        # Every write request of this process goes through one writer thread, which
        # commits whatever queued while its last commit ran in one transaction. Its
        # existence checks use a connection of their own: never behind a checkpoint scan.
        # Gateway processes sharing the store take turns per group (see group.py).
        self._writer_tables = build_ledger_tables(settings)
        self._writer_lock: WriterLock = (
            PostgresWriterLock(settings.postgres_url.get_secret_value())
            if settings.postgres_url is not None
            else SQLiteWriterLock(settings.event_store_path)
        )
        self.writer = GroupWriter(
            self.ledger,
            rows=self._writer_tables.rows,
            lock=self._writer_lock,
            on_group=observe_group_commit,
        )
        self.checkpointer = Checkpointer(self.ledger.recorder, self.checkpoints)
        self.throttle = Throttle(settings.wrong_keys_per_minute)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._producers: list[Any] = []
        # The views streams read change logs from, opened once each on first use.
        self._change_sources: dict[str, TableView[Any]] = {}
        self._change_sources_lock = threading.Lock()
        # The shared reader of each read model's live streams, started on first use.
        self._fanouts: dict[str, Fanout] = {}

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
        self.writer.start()
        for name, projector in self.projectors.items():
            self._spawn(f"{name}-projector", projector.run)
        if self.settings.kafka_bootstrap_servers and self.settings.embedded_relay:
            self._spawn("relay", self._relay)
        if self.settings.kafka_bootstrap_servers and self.settings.publish_changes:
            # The change topics of what this process projects (one publisher per
            # projection across processes: the others wait for its lock).
            for name in self.projectors:
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

        def connect() -> Any:  # a producer that failed is replaced by a new one
            assert settings.kafka_bootstrap_servers
            renewed = producer(settings.kafka_bootstrap_servers)
            self._producers.append(renewed)
            return renewed

        Relay(
            self.ledger.recorder,
            self.ledger.mapper,
            kafka,
            self._tables.positions,
            topic=settings.kafka_topic,
            connect=connect,
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

    def fresh(self, name: str) -> View[Any]:
        """Read model ``name``'s view, caught up with every event recorded so far
        (read-your-writes on the embedded default)."""
        projector = self.projectors.get(name)
        if projector is not None:
            projector.catch_up()
        return self.views[name]

    def reached(self, position: int, timeout: float) -> bool:
        """Waits until every embedded read model has applied the store up to
        ``position`` (a write answer's ``Lodestone-Position``), at most ``timeout``
        seconds; False if one has not by then. The projector threads do the work: the
        waiting request only looks at their positions."""
        deadline = time.monotonic() + timeout
        pending = list(self.projectors.values())
        while True:
            pending = [p for p in pending if p.position() < position]
            if not pending:
                return True
            if time.monotonic() >= deadline or self._stop.is_set():
                return False
            time.sleep(min(0.01, max(deadline - time.monotonic(), 0)))

    def change_source(self, name: str) -> TableView[Any]:
        """A view of projection ``name`` whose change log its streams read: opened once,
        apart from the projector's (a stream's page read never waits on its writes)."""
        with self._change_sources_lock:
            found = self._change_sources.get(name)
            if found is None:
                opened = open_view(self.settings, REGISTRY[name])
                assert isinstance(opened, TableView)
                found = self._change_sources[name] = opened
            return found

    def fanout(self, name: str) -> Fanout:
        """The shared reader fanning projection ``name``'s change log out to its live
        streams in this process (see ``gateway.fanout``)."""
        source = self.change_source(name)
        with self._change_sources_lock:
            found = self._fanouts.get(name)
            if found is None:
                settings = self.settings
                found = self._fanouts[name] = Fanout(
                    name,
                    source,
                    page=settings.stream_page,
                    poll=settings.stream_poll_interval,
                    bound=settings.stream_queue,
                )
            return found

    def fresh_view(self) -> GenealogyView:
        """The genealogy's view, caught up (see :meth:`fresh`)."""
        return cast(GenealogyView, self.fresh("genealogy"))

    def fresh_anomalies(self) -> AnomaliesView:
        """The anomalies view, caught up as ``fresh_view`` is."""
        if self.anomalies_projector is not None:
            self.anomalies_projector.catch_up()
        return self.anomalies_view

    def stop(self) -> None:
        self.writer.stop()
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        for kafka in self._producers:
            # Without waiting on a broker that may be gone: what was not acknowledged
            # was not recorded as relayed (or published) and goes out again next time.
            close_quietly(kafka)
        for view in self.views.values():
            view.close()
        for fanout in self._fanouts.values():
            fanout.close()
        for source in self._change_sources.values():
            source.close()
        self.refusals.close()
        self._writer_tables.close()
        self._writer_lock.close()
        self._tables.close()
        self.ledger.close()
