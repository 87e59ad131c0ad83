"""Loops that move events: the projector (and, with Kafka, the relay)."""
