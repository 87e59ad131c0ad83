"""Per-element provenance shares: which share of each rare earth in a batch came from
which mine or recycling intake, quota and country.

Two ways to the same shares. :func:`provenance` walks a batch's whole upstream (the
reference, and what a lineage at hand gives). :func:`pooled` makes a batch's shares from
its inputs' own shares, one step: the projection's view keeps them per batch (the
``batch_provenance`` table), so that an answer is a lookup (:func:`answer`). The two are
the same sum over the same paths, rounded in another order: 20 significant digits where
answers show 6, so they agree (tests hold them equal on the demo and on random graphs).
"""

from __future__ import annotations

import decimal
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

import orjson

from lodestone.domain.values import EXACT, RARE_EARTHS, ZERO
from lodestone.projections.genealogy.rows import BatchRow, Edge
from lodestone.projections.genealogy.traversal import Lineage
from lodestone.projections.tables import parse_uuid


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
#: A share is rounded to 15 significant digits before it is shown or multiplied into a
#: mass: the last digits of 20 carry the arithmetic's rounding, which would otherwise
#: decide a value that lies exactly on a rounding boundary (a single origin's share of 1
#: reached as 0.99999999999999999999 along several paths), and differ with the order of
#: the sums (the walk and the kept shares add the same terms in other orders).
SHOWN = decimal.Context(prec=15, rounding=decimal.ROUND_HALF_EVEN)


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
    shares = [
        _shown(kind, facility, licence, country, share, content)
        for (kind, facility, licence, country), share in merged.items()
    ]
    return sorted(shares, key=_order)


def _shown(
    kind: str,
    facility: UUID | None,
    licence: UUID | None,
    country: str | None,
    share: Decimal,
    content: Decimal,
) -> OriginShare:
    """An origin's share to 6 places and the kg of the element's ``content`` it stands for."""
    share = SHOWN.plus(share)
    quantum = Decimal("0.000001")
    return OriginShare(
        kind,
        facility,
        licence,
        country,
        share.quantize(quantum),
        EXACT.multiply(content, share).quantize(quantum),
    )


def _order(share: OriginShare) -> tuple[Decimal, str, str, str, str]:
    # Largest share first; ties (one mine under two quotas, say) in a fixed order.
    return (
        -share.share,
        str(share.facility_id),
        str(share.licence_id),
        share.country or "",
        share.kind,
    )


# --- kept per batch -----------------------------------------------------------------------

#: An origin as shares are merged by it: (kind, facility, licence, country).
Origin = tuple[str, UUID | None, UUID | None, str | None]
#: Per rare earth of a batch, each origin's share of it, unrounded (SHARE's precision).
Shares = dict[str, dict[Origin, Decimal]]


def origin_of(row: BatchRow) -> Origin:
    """What a batch is as an origin: the mine or intake it came from, or unattributed
    (made of inputs that do not carry the element)."""
    return (
        row.origin_kind or "unattributed",
        row.origin_facility_id,
        row.origin_licence_id,
        row.origin_country,
    )


def pooled(row: BatchRow, inputs: Sequence[tuple[Decimal, BatchRow | None, Shares]]) -> Shares:
    """The shares of the batch in ``row`` from its inputs: per input edge, the kg taken,
    the parent's row (None: not projected yet) and the parent's shares. An input's weight
    in element ``e`` is ``kg * fraction of e in it`` over the same sum across the inputs
    (as in :func:`provenance`); a batch whose inputs carry none of ``e`` is its origin."""
    if not row.composition:
        return {}
    result: Shares = {}
    for element in sorted(e for e in row.composition if e in RARE_EARTHS):
        contributions: list[tuple[Decimal, dict[Origin, Decimal]]] = []
        total = ZERO
        for kg, parent, shares in inputs:
            fraction = (parent.composition or {}).get(element, ZERO) if parent else ZERO
            c = SHARE.multiply(kg, fraction)
            total += c
            if c:
                contributions.append((c, shares.get(element, {})))
        if not total:
            result[element] = {origin_of(row): Decimal(1)}
            continue
        merged: dict[Origin, Decimal] = {}
        for c, origins in contributions:
            for origin, share in origins.items():
                part = SHARE.divide(SHARE.multiply(share, c), total)
                merged[origin] = SHARE.add(merged[origin], part) if origin in merged else part
        result[element] = merged
    return result


def answer(row: BatchRow, shares: Shares) -> dict[str, list[OriginShare]]:
    """What :func:`provenance` gives for the batch in ``row``, from its kept shares: the
    shares rounded to 6 places and the kg of each element's content they stand for (of
    the remaining mass, or of the initial one once consumed: that changes, the shares
    do not)."""
    if not row.composition:
        return {}
    basis = row.remaining_kg or row.initial_kg or ZERO
    result: dict[str, list[OriginShare]] = {}
    for element, origins in shares.items():
        content = EXACT.multiply(basis, row.composition[element])
        result[element] = sorted(
            (
                _shown(kind, facility, licence, country, share, content)
                for (kind, facility, licence, country), share in origins.items()
            ),
            key=_order,
        )
    return result


def encode(shares: Shares) -> str:
    """Kept shares as text (JSON, decimals as strings, in a fixed order): the same text
    for the same shares on every database, so fingerprints agree."""
    return orjson.dumps(
        {
            element: sorted(
                (
                    [kind, _text(facility), _text(licence), country, format(share.normalize(), "f")]
                    for (kind, facility, licence, country), share in origins.items()
                ),
                key=lambda entry: ["" if part is None else part for part in entry],
            )
            for element, origins in sorted(shares.items())
        }
    ).decode()


def decode(text: str) -> Shares:
    return {
        element: {
            (kind, _uuid(facility), _uuid(licence), country): Decimal(share)
            for kind, facility, licence, country, share in origins
        }
        for element, origins in orjson.loads(text).items()
    }


@functools.lru_cache(maxsize=1 << 14)
def _text(id: UUID | None) -> str | None:
    # The same few mines and quotas are the origins of every batch: spelt once each.
    return None if id is None else str(id)


def _uuid(text: str | None) -> UUID | None:
    return None if text is None else parse_uuid(text)
