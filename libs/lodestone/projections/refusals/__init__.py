"""Refused attempts: writes the ledger refused, counted beside the read models.

A refusal is not an event: nothing of a refused command reaches the ledger. The
gateway records each refused write here instead (the rule and field it broke, the
caller's role and actor, the licence or quota it named, when, which route), in a table
of its own in the read-model database. It is not a projection: it cannot be rebuilt
from the ledger, so no rebuild empties it. ``log`` is the interface and the table;
``sqlite`` and ``postgres`` are the two stores.
"""

from lodestone.projections.refusals.log import TABLE, RefusalLog, RefusedAttempt

__all__ = ["TABLE", "RefusalLog", "RefusedAttempt"]
