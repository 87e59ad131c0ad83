"""What a rule finds: an anomaly with its reason, evidence and figures, before anyone
looks at it (the query layer renders it for a caller, redacting what the caller may not
see)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

CRITICAL, WARNING, INFO = "critical", "warning", "info"
SEVERITIES = (CRITICAL, WARNING, INFO)

ANOMALY_NAMESPACE = uuid5(NAMESPACE_URL, "urn:lodestone:anomaly")
#: The CloudEvents ``ce_id`` namespace of ``lodestone.streaming.codec``: an event of the
#: evidence has the id its Kafka record carries.
EVENT_NAMESPACE = uuid5(NAMESPACE_URL, "urn:lodestone:event")


def anomaly_id(rule: str, key: str) -> UUID:
    """Stable: the same rule finding the same thing gets the same id at every evaluation,
    on every database, after every rebuild (reviews stay attached to it)."""
    return uuid5(ANOMALY_NAMESPACE, f"{rule}:{key}")


def event_id(aggregate_id: UUID, version: int) -> str:
    return str(uuid5(EVENT_NAMESPACE, f"{aggregate_id}:{version}"))


@dataclass(frozen=True)
class Ref:
    """A thing a reason names, rendered for each caller: a ``company`` or ``facility``
    (by code, or pseudonymised), a ``batch`` (ACTOR/LOT, or hidden), a ``step`` (its
    work order) or a ``licence`` (its number)."""

    kind: str
    id: UUID


@dataclass(frozen=True)
class Hidden:
    """Commercial text (an end user's name): shown to ``parties`` and the authorities."""

    text: str
    parties: frozenset[UUID]


Part = str | Ref | Hidden


@dataclass(frozen=True)
class EventRef:
    """An event of the evidence: which one, what it was, when, and whose step it was."""

    aggregate_id: UUID
    version: int
    type: str  # e.g. Batch.CustodyTransferred
    occurred_at: datetime | None
    parties: frozenset[UUID]
    batch_id: UUID | None = None

    @property
    def id(self) -> str:
        return event_id(self.aggregate_id, self.version)


@dataclass(frozen=True)
class Figure:
    """A number of the evidence. ``parties`` set: a commercial figure (a price), shown to
    them and the authorities only; unset: an aggregate anyone may see."""

    value: Any  # Decimal, int, str, or a mapping of them
    parties: frozenset[UUID] | None = None


@dataclass(frozen=True)
class Anomaly:
    id: UUID
    rule: str
    severity: str
    reason: tuple[Part, ...]
    occurred_at: datetime  # when the latest event of its evidence happened
    companies: tuple[UUID, ...]  # whom it is about
    events: tuple[EventRef, ...] = ()
    batches: tuple[UUID, ...] = ()
    figures: Mapping[str, Figure] = field(default_factory=dict)
    elements: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    licences: tuple[UUID, ...] = ()
    #: The batches (and steps) it is about, when not every batch of its evidence is:
    #: a stressed step and what it made, not the inputs it took; the batch where
    #: untraced content entered, not its parents.
    about: tuple[UUID, ...] = ()

    @property
    def subjects(self) -> tuple[UUID, ...]:
        """The batches and steps it is about."""
        return self.about or self.batches

    @property
    def parties(self) -> frozenset[UUID]:
        """Every company it is about or whose step is in its evidence."""
        found = set(self.companies)
        for event in self.events:
            found |= event.parties
        return frozenset(found)
