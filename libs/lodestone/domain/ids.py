"""Stable ids from natural keys.

An actor's code, a facility code, a licence number and an actor's own lot code each
become a uuid5, so a second registration of the same key collides in the event store (same
originator id, same version 1) instead of quietly creating a twin.
"""

from __future__ import annotations

import re
from uuid import UUID, uuid5

NAMESPACE = UUID("6f1c7d2e-3a4b-5c6d-8e9f-0a1b2c3d4e5f")

# \Z, not $: "$" also matches before a trailing newline, and "LOT-1\n" would pass.
CODE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}\Z")


def actor_id(code: str) -> UUID:
    return uuid5(NAMESPACE, f"actor:{code.upper()}")


def facility_id(code: str) -> UUID:
    return uuid5(NAMESPACE, f"facility:{code.upper()}")


def licence_id(number: str) -> UUID:
    return uuid5(NAMESPACE, f"licence:{number.upper()}")


def batch_id(actor: UUID, lot_code: str) -> UUID:
    """A batch's id comes from the lot code its first reporter gave it."""
    return uuid5(NAMESPACE, f"batch:{actor}:{lot_code}")


def transformation_id(actor: UUID, reference: str) -> UUID:
    return uuid5(NAMESPACE, f"transformation:{actor}:{reference}")


def credential_id(key_hash: str) -> UUID:
    return uuid5(NAMESPACE, f"credential:{key_hash}")


def idempotency_id(principal: str, key: str) -> UUID:
    return uuid5(NAMESPACE, f"idempotency:{principal}:{key}")


def anomaly_review_id(anomaly: str) -> UUID:
    """The review record of one anomaly (the anomaly's id as the read model gives it)."""
    return uuid5(NAMESPACE, f"anomaly-review:{anomaly.lower()}")
