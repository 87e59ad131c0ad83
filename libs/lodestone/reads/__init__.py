"""The query layer: what every reader of the ledger asks, in one place.

The write side reads straight down (route -> ledger command -> domain -> store); the
read side does too: a route, a CLI command, a report or a benchmark calls a function
here with the caller (``Principal``) and the parameters, and gets a typed, JSON-ready
answer (``TypedDict``s from ``lodestone.reads.types``) in which commercial details
(client names, contracts, prices, the facilities and lot references that name
companies) are already hidden from callers who are not party to them.

Sources are passed in (the ledger, the genealogy view, the stored event rows), never
built here: the composition root builds them from Settings.
"""
