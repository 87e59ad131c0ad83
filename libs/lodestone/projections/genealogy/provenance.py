"""Per-element provenance shares: which share of each rare earth in a batch came from
which mine or recycling intake, quota and country."""

from __future__ import annotations

import decimal
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from lodestone.domain.values import EXACT, RARE_EARTHS, ZERO
from lodestone.projections.genealogy.rows import Edge
from lodestone.projections.genealogy.traversal import Lineage


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
