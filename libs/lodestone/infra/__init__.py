"""Adapters, one package per technology: ``sqlite`` and ``postgres`` (the event store's
environment for the library, and the project's stores beside it on one shared
connection), ``kafka`` (topics, producers). The interfaces they implement are in
``lodestone.ledger.stores``; ``lodestone.bootstrap`` chooses and builds them."""
