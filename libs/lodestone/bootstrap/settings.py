"""The one Settings object of a process, read from LODESTONE_* environment variables."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LODESTONE_", frozen=True, extra="ignore")

    data_dir: Path = Field(Path("var"), description="SQLite files of the embedded default")
    admin_key: SecretStr | None = Field(
        None, description="Bootstrap admin API key; compared by hash, never stored"
    )
    postgres_url: SecretStr | None = Field(
        None,
        description="PostgreSQL for the event store and read models (else SQLite in data_dir)",
    )
    kafka_bootstrap_servers: str | None = Field(
        None, description="Kafka brokers: the relay publishes there and projectors consume"
    )
    kafka_topic: str = Field(
        "lodestone.events.v1", description="The topic every ledger event goes to"
    )
    kafka_retention_ms: int = Field(
        -1, description="Retention of the topic when created (-1: forever)"
    )
    kafka_partitions: int = Field(
        6, description="Partitions of the topic when the project creates it"
    )
    checkpoint_topic: str = Field(
        "lodestone.checkpoints.v1",
        description="Where checkpoints are published for third parties (one partition)",
    )
    checkpoint_interval: float = Field(
        10.0, description="Seconds between checkpoints of the events recorded since the last"
    )
    rebuild_workers: int = Field(
        0,
        ge=0,
        description="Processes a rebuild from Kafka spreads the topic's partitions over "
        "(0: one per core; never more than the partitions holding records)",
    )
    projector_group: str = Field(
        "lodestone.genealogy.v1", description="Consumer group of the genealogy projectors"
    )
    max_body_bytes: int = Field(
        16 * 1024 * 1024,
        ge=1024,
        description="Largest request body the gateway reads (413 beyond; a 10,000-event bulk "
        "of transformations is about 8 MiB)",
    )
    wrong_keys_per_minute: int = Field(
        20,
        ge=1,
        description="Wrong API keys one client address may present per minute (429 beyond)",
    )
    export_control_threshold: Decimal = Field(
        Decimal("0.0001"),
        ge=0,
        description="Mass fraction above which a controlled element makes an export need a "
        "licence (MOFCOM 2025: Sm, Gd, Tb, Dy, Lu, Sc, Y; in magnets Sm, Tb, Dy)",
    )
    public_docs: bool = Field(
        True,
        description="Serve /docs, /redoc and /openapi.json to anyone (false: not served)",
    )
    host: str = "127.0.0.1"
    port: int = 8000
    projector_interval: float = Field(0.05, description="Seconds between polls of the log")
    aggregate_cache_size: int = 10_000
    embedded_relay: bool = Field(
        True, description="With Kafka configured, run the relay inside the gateway process"
    )
    embedded_projector: bool = Field(
        True, description="Run every read model's projector inside the gateway process"
    )
    anomaly_thresholds: dict[str, str | int] = Field(
        default_factory=dict,
        description='Anomaly thresholds overriding the defaults, by name (JSON: {"stress_share": "0.998"})',
    )
    pseudonym_key: SecretStr | None = Field(
        None,
        description="Secret the companies shown to analysts are pseudonymised with (else one per process)",
    )

    change_retention: int = Field(
        100_000,
        ge=0,
        description="Changes kept per projection in its change log (streams and change "
        "topics resume within them; an older position is told to re-read the model); "
        "0: no change log",
    )
    stream_poll_interval: float = Field(
        0.25, gt=0, description="Seconds between a stream's reads of the change log when idle"
    )
    stream_page: int = Field(
        500,
        ge=1,
        le=10_000,
        description="Changes a read model's shared stream reader (or a stream catching up "
        "to it) reads at a time",
    )
    stream_queue: int = Field(
        5_000,
        ge=1,
        description="Changes a live stream may fall behind its read model's shared reader "
        "(its queue's bound, at least a page) before it is sent `resume` and ended",
    )
    stream_ping: float = Field(
        15.0, gt=0, description="Seconds between heartbeats on an idle stream"
    )
    publish_changes: bool = Field(
        True,
        description="With Kafka configured, publish each projection's changes to its "
        "change topic (from the process that projects it)",
    )
    change_topics: str = Field(
        "lodestone.projection.{name}.v1",
        description="The change topic of each projection ({name}: the projection's name)",
    )
    change_publish_batch: int = Field(
        1000, ge=1, description="Changes sent to a change topic per acknowledged batch"
    )

    metrics_public: bool = Field(
        False,
        description="Serve the gateway's /metrics to anyone (false: only to the admin key, "
        "an admin's key, or the metrics token)",
    )
    metrics_token: SecretStr | None = Field(
        None,
        description="A bearer token that may read the gateway's /metrics and nothing else "
        "(for a Prometheus server; compared by hash)",
    )
    metrics_host: str = Field(
        "127.0.0.1", description="Address the relay's and projectors' metrics servers bind"
    )
    relay_metrics_port: int | None = Field(
        None, ge=0, le=65535, description="Port of the relay process's /metrics (unset: none)"
    )
    projector_metrics_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="Port of a projector process's /metrics (unset: none; one per process)",
    )

    @property
    def event_store_path(self) -> Path:
        return self.data_dir / "events.sqlite"

    @property
    def read_model_path(self) -> Path:
        return self.data_dir / "read-models.sqlite"
