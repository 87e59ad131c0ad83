"""Genealogy: batches, the input->output edges between them with masses, custody and
trades; upstream and downstream traversal and per-element provenance shares.

The projection only upserts rows keyed by ids, gated by each batch's version, so the
result does not depend on how events from different batches interleave (an edge may
arrive before its parent batch) and a repeated event changes nothing.
"""

from __future__ import annotations

import decimal
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol
from uuid import UUID

from lodestone.domain.access import Credential
from lodestone.domain.actors import Actor, Facility
from lodestone.domain.batches import Batch
from lodestone.domain.licences import Licence
from lodestone.domain.values import EXACT, RARE_EARTHS, ZERO

#: Batch fields a correction may change that the view keeps.
CORRECTED_COLUMNS = frozenset(
    {"initial_kg", "remaining_kg", "composition", "facility_id", "status", "created_at"}
)

VERSION = 1  # bump when the rows change meaning: a rebuild from position 0 follows


@dataclass
class BatchRow:
    id: UUID
    version: int
    reference: str | None = None
    material: str | None = None
    initial_kg: Decimal | None = None
    remaining_kg: Decimal | None = None
    composition: dict[str, Decimal] | None = None
    facility_id: UUID | None = None
    custodian_id: UUID | None = None
    reporter_id: UUID | None = None
    status: str | None = None
    origin_kind: str | None = None
    origin_facility_id: UUID | None = None
    origin_licence_id: UUID | None = None
    origin_country: str | None = None
    created_at: datetime | None = None
    corrections: int | None = None  # how many corrections its history has had


@dataclass(frozen=True)
class Edge:
    parent_id: UUID
    child_id: UUID
    kg: Decimal  # mass the step that made the child took from the parent
    operation: str  # a process name, "split" or "merge"
    operation_id: UUID


@dataclass(frozen=True)
class Trade:
    batch_id: UUID
    version: int
    kind: str  # sale | export | receipt
    from_id: UUID | None
    to_id: UUID | None
    kg: Decimal
    contract: str
    price: Decimal | None
    currency: str
    destination_country: str
    occurred_at: datetime


@dataclass(frozen=True)
class Name:
    id: UUID
    kind: str  # actor | facility | licence
    code: str
    name: str
    country: str


class Writer(Protocol):
    """What the projection writes, inside one transaction of the view."""

    def upsert_batch(self, row: BatchRow) -> None: ...
    def add_edges(self, edges: Sequence[Edge]) -> None: ...
    def add_trade(self, trade: Trade) -> None: ...
    def upsert_name(self, name: Name) -> None: ...


class GenealogyView(ABC):
    """One implementation per database (SQLite here, PostgreSQL beside it)."""

    @abstractmethod
    def transaction(self, positions: Mapping[str, int]) -> AbstractContextManager[Writer]:
        """Rows written through the writer and the new tracking ``positions`` (per
        source: the notification log, or a Kafka topic partition) commit together or
        not at all."""

    @abstractmethod
    def position(self, source: str) -> int: ...

    @abstractmethod
    def reset(self) -> None:
        """Empty every row and position: the next run rebuilds from position 0."""

    @abstractmethod
    def batches(self, ids: Iterable[UUID]) -> dict[UUID, BatchRow]: ...

    @abstractmethod
    def ancestors(self, batch_id: UUID) -> list[Edge]:
        """Every edge on a path from a root to ``batch_id``."""

    @abstractmethod
    def descendants(self, batch_id: UUID) -> list[Edge]: ...

    @abstractmethod
    def trades(self, ids: Iterable[UUID]) -> list[Trade]: ...

    @abstractmethod
    def names(self, ids: Iterable[UUID]) -> dict[UUID, Name]: ...

    @abstractmethod
    def fingerprint(self) -> str:
        """A digest of every row, to prove a rebuild ends in the same state."""

    def close(self) -> None:
        return None


class GenealogyProjection:
    """Turns ledger events into genealogy rows."""

    name = f"genealogy.v{VERSION}"

    def process_event(self, event: Any, writer: Writer) -> None:
        if isinstance(event, Batch.Created):
            self._created(event, writer)
        elif isinstance(event, Batch.Consumed | Batch.BatchSplit):
            status = "consumed" if event.remaining_kg == ZERO else None
            writer.upsert_batch(
                BatchRow(
                    event.originator_id,
                    event.originator_version,
                    remaining_kg=event.remaining_kg,
                    status=status,
                )
            )
        elif isinstance(event, Batch.CustodyTransferred):
            writer.upsert_batch(
                BatchRow(
                    event.originator_id,
                    event.originator_version,
                    custodian_id=event.buyer_id,
                    facility_id=event.to_facility_id,
                )
            )
            writer.add_trade(
                Trade(
                    event.originator_id,
                    event.originator_version,
                    "sale",
                    event.seller_id,
                    event.buyer_id,
                    event.volume_kg,
                    event.contract,
                    event.price,
                    event.currency,
                    "",
                    event.occurred_at,
                )
            )
        elif isinstance(event, Batch.BatchMoved):
            writer.upsert_batch(
                BatchRow(
                    event.originator_id, event.originator_version, facility_id=event.to_facility_id
                )
            )
        elif isinstance(event, Batch.ShipmentExported):
            writer.upsert_batch(
                BatchRow(event.originator_id, event.originator_version, status="in_transit")
            )
            writer.add_trade(
                Trade(
                    event.originator_id,
                    event.originator_version,
                    "export",
                    event.exporter_id,
                    event.consignee_id,
                    event.kg,
                    "",
                    None,
                    "",
                    event.destination_country,
                    event.occurred_at,
                )
            )
        elif isinstance(event, Batch.ShipmentReceived):
            writer.upsert_batch(
                BatchRow(
                    event.originator_id,
                    event.originator_version,
                    status="active",
                    custodian_id=event.receiver_id,
                    facility_id=event.facility_id,
                    remaining_kg=event.received_kg,
                )
            )
            writer.add_trade(
                Trade(
                    event.originator_id,
                    event.originator_version,
                    "receipt",
                    None,
                    event.receiver_id,
                    event.received_kg,
                    "",
                    None,
                    "",
                    "",
                    event.occurred_at,
                )
            )
        elif isinstance(event, Batch.BatchQuarantined):
            writer.upsert_batch(
                BatchRow(event.originator_id, event.originator_version, status="quarantined")
            )
        elif isinstance(event, Batch.BatchReleased):
            writer.upsert_batch(
                BatchRow(
                    event.originator_id, event.originator_version, status=event.restored_status
                )
            )
        elif isinstance(event, Batch.Corrected):
            fields = {k: v for k, v in event.resulting.items() if k in CORRECTED_COLUMNS}
            writer.upsert_batch(
                BatchRow(
                    event.originator_id,
                    event.originator_version,
                    corrections=event.number,
                    **fields,
                )
            )
        elif isinstance(event, Actor.Registered):
            writer.upsert_name(
                Name(event.originator_id, "actor", event.code, event.name, event.country)
            )
        elif isinstance(event, Facility.Registered):
            writer.upsert_name(
                Name(event.originator_id, "facility", event.code, event.name, event.country)
            )
        elif isinstance(event, Licence.Issued):
            writer.upsert_name(
                Name(
                    event.originator_id,
                    "licence",
                    event.number,
                    event.kind,
                    event.destination_country,
                )
            )
        elif isinstance(event, Credential.Issued | Credential.Revoked):
            return

    def _created(self, event: Batch.Created, writer: Writer) -> None:
        origin: dict[str, Any] = {}
        if isinstance(event, Batch.OreExtracted):
            origin = {
                "origin_kind": "mined",
                "origin_licence_id": event.quota_id,
                "origin_country": event.country,
            }
        elif isinstance(event, Batch.ScrapCollected):
            origin = {"origin_kind": "recycled", "origin_country": event.country}
        if origin:
            origin["origin_facility_id"] = event.facility_id
        writer.upsert_batch(
            BatchRow(
                event.originator_id,
                event.originator_version,
                reference=f"{event.actor_code}/{event.lot_code}",
                material=event.material,
                initial_kg=event.mass_kg,
                remaining_kg=event.mass_kg,
                composition=dict(event.composition),
                facility_id=event.facility_id,
                custodian_id=event.actor_id,
                reporter_id=event.actor_id,
                status="active",
                created_at=event.occurred_at,
                **origin,
            )
        )
        if isinstance(event, Batch.Produced):
            edges = [
                Edge(
                    i["batch_id"],
                    event.originator_id,
                    i["kg"],
                    event.process,
                    event.transformation_id,
                )
                for i in event.inputs
            ]
        elif isinstance(event, Batch.BatchesMerged):
            edges = [
                Edge(i["batch_id"], event.originator_id, i["kg"], "merge", event.originator_id)
                for i in event.inputs
            ]
        elif isinstance(event, Batch.SplitOff):
            edges = [
                Edge(event.parent_id, event.originator_id, event.mass_kg, "split", event.parent_id)
            ]
        else:
            edges = []
        if edges:
            writer.add_edges(edges)


# --- queries over a view -----------------------------------------------------------------


@dataclass
class Lineage:
    root: UUID
    batches: dict[UUID, BatchRow]
    edges: list[Edge]
    names: dict[UUID, Name]
    trades: list[Trade] = field(default_factory=list)


def upstream(view: GenealogyView, batch_id: UUID) -> Lineage:
    edges = view.ancestors(batch_id)
    ids = {batch_id} | {e.parent_id for e in edges}
    return _with_trades(view, _lineage(view, batch_id, ids, edges))


def downstream(view: GenealogyView, batch_id: UUID) -> Lineage:
    edges = view.descendants(batch_id)
    ids = {batch_id} | {e.child_id for e in edges}
    return _with_trades(view, _lineage(view, batch_id, ids, edges))


def _with_trades(view: GenealogyView, lineage: Lineage) -> Lineage:
    """Sales, exports and receipts of every batch in the lineage: who the parties are."""
    lineage.trades = view.trades(lineage.batches.keys())
    extra = {t.from_id for t in lineage.trades} | {t.to_id for t in lineage.trades}
    lineage.names.update(view.names({i for i in extra if i is not None} - lineage.names.keys()))
    return lineage


def _lineage(view: GenealogyView, root: UUID, ids: set[UUID], edges: list[Edge]) -> Lineage:
    batches = view.batches(ids)
    refs: set[UUID] = set()
    for row in batches.values():
        refs.update(
            i
            for i in (
                row.facility_id,
                row.custodian_id,
                row.origin_facility_id,
                row.origin_licence_id,
                row.reporter_id,
            )
            if i is not None
        )
    return Lineage(root, batches, edges, view.names(refs))


@dataclass(frozen=True)
class OriginShare:
    kind: str  # mined | recycled | unattributed
    facility_id: UUID | None
    licence_id: UUID | None
    country: str | None
    share: Decimal
    kg: Decimal


#: Shares are ratios shown to 6 places: 20 significant digits are plenty, and keep the
#: arithmetic short (the masses themselves stay exact).
SHARE = decimal.Context(prec=20, rounding=decimal.ROUND_HALF_EVEN)


def provenance(lineage: Lineage) -> dict[str, list[OriginShare]]:
    """Per rare-earth element of the root batch, the share of each origin (mine or
    recycling intake) in its content, following mass through the whole graph (the
    ISO 22095 mass-balance model: the inputs of a step are pooled, per element).

    Weights flow top-down from the root: a parent's weight in a child's element ``e``
    is ``kg taken from parent * fraction of e in parent`` over the same sum across all
    the child's parents. Children are handled before their parents (Kahn's order on
    the ancestor graph), so each node's weight is complete before it is passed on.
    Cost: O(edges) per element, on integer indices rather than ids.
    """
    root = lineage.batches.get(lineage.root)
    if root is None or not root.composition:
        return {}
    parents: dict[UUID, list[Edge]] = {}
    pending_children: dict[UUID, int] = {}
    for edge in lineage.edges:
        parents.setdefault(edge.child_id, []).append(edge)
        pending_children[edge.parent_id] = pending_children.get(edge.parent_id, 0) + 1
    order: list[UUID] = []
    ready = [lineage.root]
    while ready:
        node = ready.pop()
        order.append(node)
        for edge in parents.get(node, ()):
            pending_children[edge.parent_id] -= 1
            if pending_children[edge.parent_id] == 0:
                ready.append(edge.parent_id)
    index = {node: i for i, node in enumerate(order)}
    rows = [lineage.batches.get(node) for node in order]
    # Per node: (parent index, kg taken, parent composition) of each incoming edge.
    incoming: list[list[tuple[int, Decimal, dict[str, Decimal]]]] = []
    for node in order:
        links = []
        for edge in parents.get(node, ()):
            parent = lineage.batches.get(edge.parent_id)
            links.append(
                (index[edge.parent_id], edge.kg, (parent.composition or {}) if parent else {})
            )
        incoming.append(links)

    result: dict[str, list[OriginShare]] = {}
    for element in sorted(e for e in root.composition if e in RARE_EARTHS):
        content = EXACT.multiply(
            root.remaining_kg or root.initial_kg or ZERO, root.composition[element]
        )
        weight = [ZERO] * len(order)
        weight[0] = Decimal(1)
        origins: dict[int, Decimal] = {}
        for i, links in enumerate(incoming):
            w = weight[i]
            if not w:
                continue
            contributions = [
                (p, SHARE.multiply(kg, comp.get(element, ZERO))) for p, kg, comp in links
            ]
            total = sum((c for _, c in contributions), ZERO)
            if not total:
                origins[i] = origins.get(i, ZERO) + w
                continue
            for p, c in contributions:
                if c:
                    weight[p] = SHARE.add(weight[p], SHARE.divide(SHARE.multiply(w, c), total))
        result[element] = _by_origin(
            {
                (
                    row.origin_kind if row is not None and row.origin_kind else "unattributed",
                    order[i],
                ): share
                for i, share in origins.items()
                for row in (rows[i],)
            },
            lineage,
            content,
        )
    return result


def _by_origin(
    origins: Mapping[tuple[str, UUID | None], Decimal], lineage: Lineage, content: Decimal
) -> list[OriginShare]:
    merged: dict[tuple[str, UUID | None, UUID | None, str | None], Decimal] = {}
    for (kind, node), share in origins.items():
        row = lineage.batches.get(node) if node else None
        key = (
            kind,
            row.origin_facility_id if row else None,
            row.origin_licence_id if row else None,
            row.origin_country if row else None,
        )
        merged[key] = merged.get(key, ZERO) + share
    quantum = Decimal("0.000001")
    shares = [
        OriginShare(
            kind,
            facility,
            licence,
            country,
            share.quantize(quantum),
            EXACT.multiply(content, share).quantize(quantum),
        )
        for (kind, facility, licence, country), share in merged.items()
    ]
    return sorted(shares, key=lambda s: (-s.share, str(s.facility_id)))


def iter_chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
