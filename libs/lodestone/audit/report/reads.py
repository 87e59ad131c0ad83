"""What the report shares with the gateway's answers: exact JSON values and who reported
an event. The gateway keeps its own copies (``gateway/presenters.py``'s ``plain``, the
history route's reporter labels) until the query layer serves both; then the report
imports them from there and this module goes."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from lodestone.domain.access import Credential, Role
from lodestone.ledger import Ledger


def plain(value: Any) -> Any:
    """Exact JSON: decimals as strings in one spelling, ids and times as strings."""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    return value


def reporter_label(ledger: Ledger, principal_id: str) -> dict[str, Any]:
    """Who reported: a credential's role, label and actor, or a built-in principal (the
    bootstrap admin key, the demo loader)."""
    credential: Any = None
    try:
        credential = ledger.repository.get(UUID(principal_id))
    except (ValueError, AggregateNotFoundError):  # not a credential's id
        credential = None
    if isinstance(credential, Credential):
        actor = ledger.actor(credential.actor_id).code if credential.actor_id else None
        return {
            "principal": principal_id,
            "role": credential.role.value,
            "label": credential.label,
            "actor": actor,
        }
    return {
        "principal": principal_id,
        "role": Role.ADMIN.value,
        "label": principal_id,
        "actor": None,
    }
