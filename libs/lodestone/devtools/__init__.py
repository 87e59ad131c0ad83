"""Development tools: a real local Kafka broker (``kafka_local``) and a throwaway
PostgreSQL server (``postgres_local``), for tests, benchmarks and ``lodestone kafka``.
Product code never imports this package (an import contract in pyproject.toml)."""
