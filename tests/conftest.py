"""Fixtures shared by every suite: real PostgreSQL (and the sqlite/postgres ``backend``
parameter) and a real Kafka broker, each started only when a test asks for it."""

pytest_plugins = [
    "tests.integration.postgres_fixture",
    "tests.fixtures.backends",
    "tests.integration.kafka_fixture",
]
