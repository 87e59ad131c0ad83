"""Creating topics on purpose: brokers here run with auto.create.topics.enable=false, so a
topic exists only with the partitions and retention someone chose."""

from __future__ import annotations

from collections.abc import Mapping


def create_topic(
    bootstrap: str,
    name: str,
    partitions: int,
    retention_ms: int = -1,
    *,
    replication_factor: int = 1,
    configs: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> bool:
    """Create topic ``name`` and wait until every partition has a leader; return False,
    changing nothing, if it already exists. Retention is infinite by default (-1): the
    event topic is a log of record, never trimmed by age (retention.bytes stays -1 too).
    """
    from kafka import KafkaAdminClient
    from kafka.errors import TopicAlreadyExistsError

    millis = int(timeout * 1000)
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id="lodestone-topics",
        bootstrap_timeout_ms=millis,
        request_timeout_ms=millis,
    )
    try:
        admin.create_topics(
            {
                name: {
                    "num_partitions": partitions,
                    "replication_factor": replication_factor,
                    "configs": {"retention.ms": str(retention_ms), **(configs or {})},
                }
            },
            timeout_ms=millis,
        )
    except TopicAlreadyExistsError:
        return False
    else:
        # The controller has accepted the topic; producers should not have to retry
        # while leaders are being elected.
        admin.wait_for_topics([name], timeout_ms=millis)
        return True
    finally:
        admin.close()
