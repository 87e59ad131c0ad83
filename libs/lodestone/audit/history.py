"""A batch's history, and its state as of a moment or a version.

Two clocks, never mixed:

- **recorded_at** (record time): when the ledger stored the event. "As known at T" is the
  state built from the events recorded at or before T: what an auditor asking the ledger
  at T would have been told.
- **occurred_at** (event time): when the reporting actor says the step happened. "As it
  happened at T" is the state after the last step that occurred at or before T, as the
  ledger knows it now (a step reported late is included), with the corrections recorded
  up to that step; ``later_events`` counts what came after, corrections included (see
  the history for corrections of earlier steps made later).

Each history entry carries its store position, both times, who reported it (the
principal and its role, and the actor it reported for), its hash and the previous hash,
and whether the stored row still matches its hash.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from lodestone import integrity
from lodestone.domain.batches import Batch
from lodestone.ledger import Ledger
from lodestone.ledger.stores import EventRows, Row
from lodestone.projections import genealogy

HIDDEN = {"originator_id", "originator_version", "timestamp"}


@dataclass(frozen=True)
class Entry:
    position: int
    aggregate_id: UUID
    version: int
    type: str  # e.g. "Batch.OreExtracted"
    occurred_at: datetime | None
    recorded_at: datetime
    reported_by: str | None
    hash: str | None
    prev: str | None
    intact: bool
    facts: dict[str, Any] = field(default_factory=dict)


def entries(ledger: Ledger, rows: Sequence[Row]) -> list[Entry]:
    out = []
    for row in rows:
        event: Any = ledger.mapper.to_domain_event(
            StoredEvent(row.aggregate_id, row.version, row.topic, row.state)
        )
        digest, prev, intact = integrity.check_stored(
            str(row.aggregate_id), row.version, row.topic, row.state
        )
        facts = {k: v for k, v in vars(event).items() if k not in HIDDEN}
        out.append(
            Entry(
                position=row.position,
                aggregate_id=row.aggregate_id,
                version=row.version,
                type=row.topic.rpartition(":")[2],
                occurred_at=facts.get("occurred_at"),
                recorded_at=event.timestamp,
                reported_by=facts.get("reported_by"),
                hash=digest,
                prev=prev,
                intact=intact,
                facts=facts,
            )
        )
    return out


def _decimal_text(data: str) -> str:
    return format(Decimal(data).normalize(), "f")  # one spelling per value, as the API writes


def _uuid_text(data: str) -> str:
    return f"{data[:8]}-{data[8:12]}-{data[12:16]}-{data[16:20]}-{data[20:]}"


_AS_TEXT: dict[str, Callable[[str], str]] = {
    "decimal_str": _decimal_text,
    "uuid_hex": _uuid_text,
    "datetime_iso": str,
}


def _as_text(d: dict[str, Any]) -> Any:
    if len(d) == 2 and "_type_" in d and "_data_" in d:
        convert = _AS_TEXT.get(d["_type_"])
        if convert is not None:
            return convert(d["_data_"])
    return d


def plain_entries(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """The entries as JSON-ready dicts straight from the stored JSON (decimals, ids and
    times as the API spells them), without building domain events: what the history
    endpoint answers, several times faster than ``entries``."""
    out = []
    for row in rows:
        aggregate_id = str(row.aggregate_id)
        digest, prev, intact = integrity.check_stored(
            aggregate_id, row.version, row.topic, row.state
        )
        state = json.loads(row.state, object_hook=_as_text)
        state.pop(integrity.CHAIN_KEY, None)
        recorded_at = state.pop("timestamp", None)
        out.append(
            {
                "position": row.position,
                "aggregate_id": aggregate_id,
                "version": row.version,
                "type": row.topic.rpartition(":")[2],
                "occurred_at": state.pop("occurred_at", None),
                "recorded_at": recorded_at,
                "reported_by": state.pop("reported_by", None),
                "hash": digest,
                "prev": prev,
                "intact": intact,
                "facts": state,
            }
        )
    return out


def lineage_ids(view: genealogy.GenealogyView, batch_id: UUID, lineage: str) -> list[UUID]:
    if lineage == "none":
        return [batch_id]
    traced = (
        genealogy.upstream(view, batch_id)
        if lineage == "upstream"
        else genealogy.downstream(view, batch_id)
    )
    return [batch_id, *sorted(set(traced.batches) - {batch_id})]


def history(
    ledger: Ledger,
    rows: EventRows,
    batch_id: UUID,
    lineage: str = "none",
    view: genealogy.GenealogyView | None = None,
) -> list[Entry]:
    """The batch's events (and with ``lineage`` "upstream" or "downstream" those of every
    batch in that lineage), merged in store position order."""
    ids: Iterable[UUID] = [batch_id]
    if lineage != "none":
        assert view is not None
        ids = lineage_ids(view, batch_id, lineage)
    return entries(ledger, rows.for_aggregates(ids))


@dataclass(frozen=True)
class AsOf:
    batch: Batch | None  # None: the batch did not exist (was not known) then
    version: int  # the last event included; 0 if none
    clock: str  # "recorded" | "occurred" | "version"
    at: datetime | None
    later_events: int  # recorded now, not included


def _times(row: Row) -> tuple[str, str | None]:
    # Only the two times, without building the domain event: json of the stored state.
    state = json.loads(row.state)
    timestamp = state["timestamp"]["_data_"]
    occurred = state.get("occurred_at")
    return timestamp, occurred["_data_"] if isinstance(occurred, dict) else None


def as_of(
    ledger: Ledger,
    rows: EventRows,
    batch_id: UUID,
    *,
    known_at: datetime | None = None,
    happened_at: datetime | None = None,
    version: int | None = None,
) -> AsOf:
    """Exactly one of ``known_at`` (record time), ``happened_at`` (event time) or
    ``version``."""
    own = rows.for_aggregates([batch_id])
    if version is not None:
        upto, clock, at = min(version, len(own)), "version", None
    else:
        clock = "recorded" if known_at is not None else "occurred"
        at = known_at if known_at is not None else happened_at
        assert at is not None
        upto = 0
        for row in own:
            recorded, occurred = _times(row)
            moment = datetime.fromisoformat(
                recorded if clock == "recorded" else occurred or recorded
            )
            if moment > at:
                break
            upto = row.version
    batch = None
    if upto > 0:
        found: Any = ledger.repository.get(batch_id, version=upto)
        batch = found if isinstance(found, Batch) else None
    return AsOf(batch, upto, clock, at, len(own) - upto)
