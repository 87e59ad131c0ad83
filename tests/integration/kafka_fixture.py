"""Kafka for the tests, from the cheapest real source available:

1. ``KAFKA_BOOTSTRAP_SERVERS``, a broker someone already runs (CI service, compose);
2. a local broker started from the official jars (lodestone.devtools.kafka_local; needs
   Java 17+ and Maven, and Maven Central the first time);
3. where a Docker engine answers, the official ``apache/kafka`` image through
   testcontainers (imported only then; not a dependency of the suite).

Register both fixtures from the root conftest with
``pytest_plugins = ["tests.integration.kafka_fixture"]``.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lodestone.devtools.kafka_local import KafkaUnavailable, LocalKafka, broker_answers

#: The image of the same Kafka release deploy/kafka/pom.xml fetches.
KAFKA_IMAGE = "apache/kafka:4.3.1"


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The bootstrap address of a broker shared by the whole session. Tests share it, so
    each one makes its own topics and consumer groups under fresh names."""
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        yield configured
        return
    kafka = LocalKafka()
    try:
        kafka.ensure_jars()
    except KafkaUnavailable as error:
        yield from _docker_kafka(why_not_local=str(error))
        return
    with kafka:
        yield kafka.start(tmp_path_factory.mktemp("kafka"))


@pytest.fixture
def local_kafka(tmp_path: Path) -> Iterator[LocalKafka]:
    """A broker of the test's own, not yet started (``local_kafka.start(dir)``), for
    tests that stop, kill or restart it. Stopped, whatever happens, at the end."""
    kafka = LocalKafka()
    try:
        kafka.ensure_jars()
    except KafkaUnavailable as error:
        pytest.skip(f"no local Kafka broker: {error}")
    with kafka:
        yield kafka


def _docker_kafka(why_not_local: str) -> Iterator[str]:
    try:
        from docker.errors import DockerException
        from testcontainers.core.container import DockerContainer
        from testcontainers.core.docker_client import DockerClient
    except ImportError:
        pytest.skip(
            f"no Kafka: set KAFKA_BOOTSTRAP_SERVERS, or fix the local broker ({why_not_local}), "
            "or install testcontainers where Docker runs"
        )
    try:
        client = DockerClient()
        client.client.ping()
        docker_host = client.host()
    except (DockerException, OSError) as error:
        pytest.skip(f"no Kafka: local broker unavailable ({why_not_local}) and no Docker ({error})")
    # The broker must advertise the address clients dial, so the host port is chosen
    # first and mapped to the same port inside the container.
    port = _free_port()
    container = DockerContainer(KAFKA_IMAGE).with_bind_ports(port, port)
    for key, value in {
        "KAFKA_NODE_ID": "1",
        "KAFKA_PROCESS_ROLES": "broker,controller",
        "KAFKA_LISTENERS": f"PLAINTEXT://:{port},CONTROLLER://:9093",
        "KAFKA_ADVERTISED_LISTENERS": f"PLAINTEXT://{docker_host}:{port}",
        "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@localhost:9093",
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR": "1",
        "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
        "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false",
    }.items():
        container = container.with_env(key, value)
    with container:
        bootstrap = f"{docker_host}:{port}"
        deadline = time.monotonic() + 120
        while not broker_answers(bootstrap):
            if time.monotonic() > deadline:
                logs = b"\n".join(container.get_logs()).decode(errors="replace")
                raise RuntimeError(f"Kafka container not ready after 120s:\n{logs[-4000:]}")
            time.sleep(0.2)
        yield bootstrap


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
