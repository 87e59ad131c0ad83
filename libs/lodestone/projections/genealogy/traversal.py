"""Upstream and downstream over a genealogy view: the batches on every path to (or
from) a batch, the edges between them, their trades and the names they refer to."""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

from lodestone.projections.genealogy.rows import BatchRow, Edge, Name, Trade
from lodestone.projections.genealogy.view import GenealogyView


@dataclass
class Lineage:
    root: UUID
    batches: dict[UUID, BatchRow]
    edges: list[Edge]
    names: dict[UUID, Name]
    trades: list[Trade] = field(default_factory=list)


def upstream(view: GenealogyView, batch_id: UUID, *, compositions: bool = True) -> Lineage:
    """``compositions=False``: the rows as a trace shows them (no composition, no
    creation time), read faster; the provenance walk needs them."""
    edges = view.ancestors(batch_id)
    if compositions:
        batches = view.batches({batch_id} | {e.parent_id for e in edges})
    else:
        batches = view.traced(batch_id, "up")
    return _with_trades(view, _lineage(view, batch_id, batches, edges))


def downstream(view: GenealogyView, batch_id: UUID, *, compositions: bool = True) -> Lineage:
    edges = view.descendants(batch_id)
    if compositions:
        batches = view.batches({batch_id} | {e.child_id for e in edges})
    else:
        batches = view.traced(batch_id, "down")
    return _with_trades(view, _lineage(view, batch_id, batches, edges))


def _with_trades(view: GenealogyView, lineage: Lineage) -> Lineage:
    """Sales, exports and receipts of every batch in the lineage: who the parties are."""
    lineage.trades = view.trades(lineage.batches.keys())
    extra = {t.from_id for t in lineage.trades} | {t.to_id for t in lineage.trades}
    lineage.names.update(view.names({i for i in extra if i is not None} - lineage.names.keys()))
    return lineage


def _lineage(
    view: GenealogyView, root: UUID, batches: dict[UUID, BatchRow], edges: list[Edge]
) -> Lineage:
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
