"""The rare-earth chain as aggregates and events: actors, facilities, licences, batches.

Imports only the standard library and ``eventsourcing.domain`` (checked by import-linter).
"""
