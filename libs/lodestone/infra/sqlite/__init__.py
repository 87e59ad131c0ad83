"""The embedded default: the event store in an SQLite file, and the project's stores in
the same file (tables ``lodestone_positions`` and ``lodestone_checkpoints``; rows read
back from the library's ``stored_events``, rowid = position)."""
