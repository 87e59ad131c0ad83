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
from typing import Any, Literal, cast
from uuid import UUID

import orjson
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import StoredEvent

from lodestone import integrity
from lodestone.domain.access import Credential, Principal, Role
from lodestone.domain.batches import Batch
from lodestone.domain.refusals import InvalidInput
from lodestone.domain.values import aware
from lodestone.ledger import Ledger
from lodestone.ledger.stores import EventRows, Row
from lodestone.projections import genealogy
from lodestone.reads import batches
from lodestone.reads.batches import ViewSource, batch_id
from lodestone.reads.json import decimal_text, plain
from lodestone.reads.types import AsOfAnswer, History, HistoryEntry, Reporter

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
    return decimal_text(Decimal(data))  # one spelling per value, as the API writes


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


def lineage_ids(view: genealogy.GenealogyView, id: UUID, lineage: str) -> list[UUID]:
    """The batch, then every batch upstream (or downstream) of it, by id: the ends of
    the lineage's edges, without reading their rows (a view caught up with the store
    holds a row for each)."""
    if lineage == "none":
        return [id]
    if lineage == "upstream":
        found = {e.parent_id for e in view.ancestors(id)}
    else:
        found = {e.child_id for e in view.descendants(id)}
    return [id, *sorted(found - {id})]


def history(
    ledger: Ledger,
    rows: EventRows,
    id: UUID,
    lineage: str = "none",
    view: genealogy.GenealogyView | None = None,
) -> list[Entry]:
    """The batch's events (and with ``lineage`` "upstream" or "downstream" those of every
    batch in that lineage), merged in store position order, as domain facts."""
    ids: Iterable[UUID] = [id]
    if lineage != "none":
        assert view is not None
        ids = lineage_ids(view, id, lineage)
    return entries(ledger, rows.for_aggregates(ids))


@dataclass(frozen=True)
class AsOf:
    batch: Batch | None  # None: the batch did not exist (was not known) then
    version: int  # the last event included; 0 if none
    clock: str  # "recorded" | "occurred" | "version"
    at: datetime | None
    later_events: int  # recorded now, not included


def _times(row: Row) -> tuple[str, str | None]:
    # Only the two times, without building the domain event: json of the stored state
    # (orjson: a thousand events' states are read for one as-of answer).
    state = orjson.loads(row.state)
    timestamp = state["timestamp"]["_data_"]
    occurred = state.get("occurred_at")
    return timestamp, occurred["_data_"] if isinstance(occurred, dict) else None


def as_of(
    ledger: Ledger,
    rows: EventRows,
    id: UUID,
    *,
    known_at: datetime | None = None,
    happened_at: datetime | None = None,
    version: int | None = None,
) -> AsOf:
    """Exactly one of ``known_at`` (record time), ``happened_at`` (event time) or
    ``version``."""
    own = rows.for_aggregates([id])
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
        found: Any = ledger.repository.get(id, version=upto)
        batch = found if isinstance(found, Batch) else None
    return AsOf(batch, upto, clock, at, len(own) - upto)


# --- answers ----------------------------------------------------------------------------


def reporter(ledger: Ledger, principal_id: str) -> Reporter:
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


def label_reporters(ledger: Ledger, events: list[dict[str, Any]]) -> list[HistoryEntry]:
    """Each entry's reporting principal as its role, label and company (one lookup per
    principal)."""
    labels: dict[str, Reporter] = {}
    for body in events:
        principal = body["reported_by"]
        if principal:
            if principal not in labels:
                labels[principal] = reporter(ledger, principal)
            body["reported_by"] = labels[principal]
    return cast(list[HistoryEntry], events)


def mark_corrected(events: list[HistoryEntry]) -> list[HistoryEntry]:
    """Both facts stay: the corrected event as recorded, marked with the versions of the
    corrections that name it, and the correction itself."""
    corrected: dict[tuple[str, int], list[int]] = {}
    for body in events:
        if body["type"] == "Batch.Corrected":
            key = (body["aggregate_id"], body["facts"]["corrects_version"])
            corrected.setdefault(key, []).append(body["version"])
    for body in events:
        by = corrected.get((body["aggregate_id"], body["version"]))
        if by:
            body["corrected_by_versions"] = by
    return events


Lineage = Literal["none", "upstream", "downstream"]


def batch_history(
    ledger: Ledger, rows: EventRows, view: ViewSource, actor: str, lot: str, lineage: Lineage
) -> History:
    """Each event of batch ACTOR/LOT (and of its lineage, merged in store order) with
    its position, both clocks, its reporter, hash, previous hash and whether the stored
    row still matches its hash."""
    id = batch_id(ledger, actor, lot)
    ids = [id] if lineage == "none" else lineage_ids(view(), id, lineage)
    events = mark_corrected(label_reporters(ledger, plain_entries(rows.for_aggregates(ids))))
    return {"batch": f"{actor}/{lot}", "id": str(id), "lineage": lineage, "events": events}


#: Fixed when a batch is made: lineage, masses taken and origins. Not the state at T:
#: the ancestors' status, remaining mass and holder now (left out of an as-of answer
#: rather than shown under an "as of" heading).
NOW_ONLY = ("status", "remaining_kg", "custodian", "facility", "corrections")


def check_moment(
    known_at: datetime | None, happened_at: datetime | None, version: int | None
) -> None:
    """Exactly one of the three, and times with a zone."""
    given = [
        n
        for n, v in (("known_at", known_at), ("happened_at", happened_at), ("version", version))
        if v is not None
    ]
    if len(given) != 1:
        # Name a parameter to leave out or, when none was given, the first one to give.
        field = given[-1] if given else "known_at"
        raise InvalidInput(field, "one-of", "give exactly one of known_at, happened_at, version")
    for name, moment in (("known_at", known_at), ("happened_at", happened_at)):
        if moment is not None:
            aware(moment, name)


def batch_as_of(
    ledger: Ledger,
    rows: EventRows,
    view: ViewSource,
    actor: str,
    lot: str,
    principal: Principal,
    *,
    known_at: datetime | None = None,
    happened_at: datetime | None = None,
    version: int | None = None,
) -> AsOfAnswer:
    """The state of ACTOR/LOT as known at ``known_at`` (record time), as it happened at
    ``happened_at`` (event time) or after ``version``, with its upstream trace and
    provenance (fixed when a batch is made)."""
    check_moment(known_at, happened_at, version)
    id = batch_id(ledger, actor, lot)
    result = as_of(ledger, rows, id, known_at=known_at, happened_at=happened_at, version=version)
    body: AsOfAnswer = {
        "batch": f"{actor}/{lot}",
        "clock": result.clock,
        "at": plain(result.at),
        "version": result.version,
        "events_after": result.later_events,
        "existed": result.batch is not None,
        "state": None,
    }
    if result.batch is not None:
        body["state"] = batches.state(ledger, result.batch, principal)
        current = view()
        traced = genealogy.upstream(current, id, compositions=False)
        root = current.batches([id]).get(id)  # with its composition, for the provenance
        if root is not None:
            upstream = batches.present_trace(traced, principal, "upstream")
            for node in upstream["nodes"]:
                for name in NOW_ONLY:
                    node.pop(name, None)  # type: ignore[misc]
            body["upstream"] = upstream
            shares = genealogy.answer(root, current.shares([id])[id])
            body["provenance"] = batches.present_provenance(root, traced.names, shares)
    return body
