"""The event store in a PostgreSQL database given by URL (table ``lodestone_events``,
notification_id = position), and the project's stores in the same database (tables
``lodestone_positions`` and ``lodestone_checkpoints``)."""
