"""The relay process: the event store's notification log to Kafka."""
