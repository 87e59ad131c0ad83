"""A deterministic demo chain, mines in five countries to end clients abroad, for trying
the ledger and its read models with realistic rare-earth figures (``demo.generator``)."""
