"""Kafka through kafka-python: topics created on purpose (``topics``) and the producer
every publisher uses (``producers``)."""
