"""The write side: the eventsourcing Application that runs one command per save."""

from lodestone.ledger.application import Ledger, Outcome

__all__ = ["Ledger", "Outcome"]
