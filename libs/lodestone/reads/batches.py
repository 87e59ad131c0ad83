"""A batch as a caller may see it: its state from the event store; its upstream,
downstream and provenance from the genealogy read model.

Redaction lives here, once: client names, contracts, prices, and the facilities and lot
references that name companies are shown to the parties of a batch, auditors,
regulators and admins (``Principal.sees_commercial``); others see material, masses,
countries and origins (mines are not clients).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Literal, cast
from uuid import UUID

from lodestone.domain.access import Principal
from lodestone.domain.batches import Batch
from lodestone.domain.refusals import NotFound
from lodestone.ledger import Ledger
from lodestone.projections import genealogy
from lodestone.projections.genealogy import BatchRow, Lineage, Name, OriginShare, Trade
from lodestone.reads.json import decimal_text, plain
from lodestone.reads.types import (
    BatchState,
    PartyRef,
    Provenance,
    Redacted,
    Trace,
    TraceEdge,
    TraceNode,
    TraceSummary,
    TradeView,
)

Direction = Literal["upstream", "downstream"]

#: What a non-party sees in place of a hidden detail.
REDACTED: Redacted = {"redacted": True}

#: A view caught up with every event recorded so far (read-your-writes on the embedded
#: default): the gateway passes its ``fresh_view``.
ViewSource = Callable[[], genealogy.GenealogyView]


def batch_id(ledger: Ledger, actor: str, lot: str) -> UUID:
    """The id of batch ACTOR/LOT, or NotFound."""
    found: UUID = ledger.batch(f"{actor}/{lot}").id
    return found


def parties(batch: Batch) -> set[UUID]:
    """Who holds, held, reported or received the batch."""
    found = {*batch.holders, batch.reporter_id}
    if batch.export:
        found |= {batch.export["exporter_id"], batch.export["consignee_id"]}
    return found


def sees(batch: Batch, principal: Principal) -> bool:
    return principal.sees_commercial(*parties(batch))


def state(
    ledger: Ledger, batch: Batch, principal: Principal, *, named_by_caller: bool = True
) -> BatchState:
    """The authoritative current state, read from the event store. ``named_by_caller``:
    the caller gave ACTOR/LOT, so the reference tells it nothing new; found by id, a
    non-party gets no reference (ACTOR/LOT names the holder's company)."""
    facility = ledger.facility(batch.facility_id)
    custodian = ledger.actor(batch.custodian_id)
    party = sees(batch, principal)
    named = party or named_by_caller
    result: dict[str, Any] = {
        "id": batch.id,
        "batch": batch.reference if named else None,
        "lot_code": batch.lot_code if named else None,
        "material": batch.material.value,
        "status": batch.status.value,
        "initial_kg": batch.initial_kg,
        "remaining_kg": batch.remaining_kg,
        "composition": batch.composition,
        # A facility names its owner, so it is as commercial as the custodian.
        "facility": {
            "code": facility.code,
            "name": facility.name,
            "kind": facility.kind.value,
            "country": facility.country,
        }
        if party
        else {"kind": facility.kind.value, "country": facility.country, **REDACTED},
        "custodian": {"code": custodian.code, "name": custodian.name, "country": custodian.country}
        if party
        else REDACTED,
        "created_at": batch.created_at,
        "version": batch.version,
        # A parent's lot reference names the company that made it: shown when that
        # company is a party here, or the caller may see the parent itself (a
        # supplier's supplier is not the buyer's business).
        "parents": [
            {
                "batch": _reference(ledger, p["batch_id"], principal, parties(batch))
                if party
                else None,
                "id": p["batch_id"],
                "kg": p["kg"],
            }
            for p in batch.parents
        ],
    }
    if batch.origin:
        origin_facility = ledger.facility(batch.origin["facility_id"])
        licence = (
            ledger.licence(batch.origin["licence_id"]) if batch.origin.get("licence_id") else None
        )
        result["origin"] = {
            "kind": batch.origin["kind"],
            "facility": origin_facility.code,
            "country": batch.origin["country"],
            "quota": licence.number if licence else None,
        }
    if batch.export:
        consignee = ledger.actor(batch.export["consignee_id"])
        licence_id = batch.export["licence_id"]  # None: uncontrolled, shipped without one
        result["export"] = {
            # A licence number is the regulator's, but it is issued to one exporter for
            # one consignee: it identifies them as well as their names do.
            "licence": (ledger.licence(licence_id).number if licence_id else None)
            if party
            else REDACTED,
            "destination_country": batch.export["destination_country"],
            "consignee": consignee.code if party else REDACTED,
            "kg": batch.export["kg"],
            # A shipment stored before v2 has no number; every one of those was controlled.
            "shipment": batch.export.get("shipment") if party else REDACTED,
            "controlled": batch.export.get("controlled", True),
        }
    corrections = getattr(batch, "corrections", [])
    result["corrected"] = bool(corrections)
    if corrections:
        # What was corrected and why; who corrected is for the parties and authorities.
        result["corrections"] = [
            {k: v for k, v in c.items() if party or k not in ("reported_by",)} for c in corrections
        ]
    if batch.quarantine:
        result["quarantine"] = {
            "reason": batch.quarantine["reason"],
            "by_role": batch.quarantine["by_role"],
        }
    return cast(BatchState, plain(result))


def state_by_id(ledger: Ledger, id: UUID, principal: Principal) -> BatchState:
    return state(ledger, ledger.batch(str(id)), principal, named_by_caller=False)


def state_by_ref(ledger: Ledger, actor: str, lot: str, principal: Principal) -> BatchState:
    return state(ledger, ledger.batch(f"{actor}/{lot}"), principal)


def _reference(ledger: Ledger, id: UUID, principal: Principal, known: set[UUID]) -> str | None:
    parent: Any = ledger.repository.get(id)
    if not isinstance(parent, Batch):
        return str(id)
    shown = parent.reporter_id in known or sees(parent, principal)
    return parent.reference if shown else None


# --- traces ------------------------------------------------------------------------------


def trace(
    ledger: Ledger,
    view: ViewSource,
    actor: str,
    lot: str,
    principal: Principal,
    direction: Direction,
) -> Trace:
    """Every ancestor back to the mines, or every descendant to whoever holds the
    material now, with the mass each step took from each input."""
    traced = _projected(ledger, view, actor, lot, direction)
    return present_trace(traced, principal, direction)


def provenance(
    ledger: Ledger, view: ViewSource, actor: str, lot: str, principal: Principal
) -> Provenance:
    """For each rare earth in the batch, the share of each origin (mine with its quota
    and country, or recycling intake) in its content, by mass balance: the shares the
    genealogy keeps for it, not a walk of its upstream."""
    id = batch_id(ledger, actor, lot)
    current = view()
    root = current.batches([id]).get(id)
    if root is None:
        raise NotFound("", "exists", f"batch {actor}/{lot} is not in the genealogy yet")
    return kept_provenance(current, root)


def kept_provenance(view: genealogy.GenealogyView, root: BatchRow) -> Provenance:
    """The provenance answer of the batch in ``root`` from the shares the view keeps."""
    # Every batch the view holds has its shares, written in the same transaction.
    shares = genealogy.answer(root, view.shares([root.id])[root.id])
    named = {
        i for origins in shares.values() for o in origins for i in (o.facility_id, o.licence_id)
    }
    return present_provenance(root, view.names(i for i in named if i is not None), shares)


def _projected(
    ledger: Ledger, view: ViewSource, actor: str, lot: str, direction: Direction
) -> Lineage:
    id = batch_id(ledger, actor, lot)
    walk = genealogy.upstream if direction == "upstream" else genealogy.downstream
    traced = walk(view(), id, compositions=False)
    if traced.root not in traced.batches:
        raise NotFound("", "exists", f"batch {actor}/{lot} is not in the genealogy yet")
    return traced


def _party(name: Name | None) -> PartyRef | None:
    if name is None:
        return None
    return {"code": name.code, "name": name.name, "country": name.country}


def present_trace(lineage_: Lineage, principal: Principal, direction: str) -> Trace:
    """A trace of hundreds or thousands of batches: built directly as JSON-ready text
    (ids spelt once each, decimals formatted once), not converted afterwards."""
    names = lineage_.names
    tid = _spelt

    parties_of: dict[UUID, str] = {}
    party = {id: _party(name) for id, name in names.items()}
    trades_by_batch: dict[UUID, list[Trade]] = {}
    for trade in lineage_.trades:
        trades_by_batch.setdefault(trade.batch_id, []).append(trade)
    nodes: list[TraceNode] = []
    for row in lineage_.batches.values():
        parties = {row.reporter_id, row.custodian_id}
        for trade in trades_by_batch.get(row.id, ()):
            parties |= {trade.from_id, trade.to_id}
        # Lot references and facilities name companies: shown to the parties of the
        # batch, auditors, regulators and admins; others see material, masses, the
        # country and the origin (mines are not clients).
        sees = principal.sees_commercial(*(p for p in parties if p))
        facility = names.get(row.facility_id) if row.facility_id else None
        custodian: PartyRef | None = (
            party.get(row.custodian_id) if sees and row.custodian_id else {"redacted": True}
        )
        node: TraceNode = {
            "id": tid(row.id),
            "batch": row.reference if sees or row.id == lineage_.root else None,
            "material": row.material,
            "status": row.status,
            "initial_kg": _decimal(row.initial_kg),
            "remaining_kg": _decimal(row.remaining_kg),
            "facility": party.get(row.facility_id)
            if sees and row.facility_id
            else None
            if sees
            else {"country": facility.country if facility else None, "redacted": True},
            "custodian": custodian,
        }
        if row.corrections:
            node["corrections"] = row.corrections  # its history was corrected: see /history
        if row.origin_kind:
            node["origin"] = {
                "kind": row.origin_kind,
                "facility": _code(names, row.origin_facility_id),
                "quota": _code(names, row.origin_licence_id),
                "country": row.origin_country,
            }
        if direction == "downstream" and row.id in trades_by_batch:
            node["trades"] = [_trade(t, names, principal) for t in trades_by_batch[row.id]]
        if custodian and "code" in custodian:
            parties_of[row.id] = custodian["code"]
        nodes.append(node)
    nodes.sort(key=lambda n: (n["batch"] or "", n["id"]))
    edges: list[TraceEdge] = [
        {
            "from": tid(e.parent_id),
            "to": tid(e.child_id),
            "kg": _decimal(e.kg),
            "operation": e.operation,
            "operation_id": tid(e.operation_id),
        }
        for e in lineage_.edges
    ]
    edges.sort(key=lambda e: (e["to"], e["from"]))
    root = lineage_.batches.get(lineage_.root)
    summary: dict[str, Any] = {"batches": len(nodes) - 1, "edges": len(edges)}
    if direction == "upstream":
        summary["origins"] = sum(1 for n in nodes if "origin" in n)
    else:
        children = {e.child_id for e in lineage_.edges}
        leaves = children - {e.parent_id for e in lineage_.edges} or {lineage_.root}
        summary["end_holders"] = sorted({parties_of.get(leaf, "redacted") for leaf in leaves})
    return {
        "batch": root.reference if root else None,
        "direction": direction,
        "summary": cast(TraceSummary, summary),
        "nodes": nodes,
        "edges": edges,
    }


@functools.lru_cache(maxsize=1 << 16)
def _spelt(id: UUID) -> str:
    # A trace spells each id once or more, and the same batches recur in the traces
    # asked for (every lot of a chain shares its upstream): each spelt once.
    return str(id)


def _decimal(value: Decimal | None) -> str | None:
    return None if value is None else decimal_text(value)


def _trade(trade: Trade, names: dict[UUID, Name], principal: Principal) -> TradeView:
    sees = principal.sees_commercial(trade.from_id, trade.to_id)
    hidden: Redacted = {"redacted": True}
    return cast(
        TradeView,
        plain(
            {
                "kind": trade.kind,
                "kg": trade.kg,
                "occurred_at": trade.occurred_at,
                "from": _party(names.get(trade.from_id))
                if trade.from_id and sees
                else (hidden if trade.from_id else None),
                "to": _party(names.get(trade.to_id))
                if trade.to_id and sees
                else (hidden if trade.to_id else None),
                "contract": trade.contract if sees else hidden,
                "price": trade.price if sees else hidden,
                "currency": trade.currency if sees else hidden,
                "destination_country": trade.destination_country or None,
            }
        ),
    )


def _code(names: Mapping[UUID, Name], id: UUID | None) -> str | None:
    if id is None:
        return None
    name = names.get(id)
    return name.code if name else str(id)


def present_provenance(
    root: BatchRow, names: Mapping[UUID, Name], shares: dict[str, list[OriginShare]]
) -> Provenance:
    """``names``: at least those of the origins' facilities and quotas."""
    by_country: dict[str, dict[str, Decimal]] = {}
    elements = {}
    for element, origins in shares.items():
        content = sum((o.kg for o in origins), Decimal(0))
        elements[element] = {
            "kg": content,
            "origins": [
                {
                    "kind": o.kind,
                    "mine": _code(names, o.facility_id) if o.kind == "mined" else None,
                    "facility": _code(names, o.facility_id),
                    "quota": _code(names, o.licence_id),
                    "country": o.country,
                    "share": o.share,
                    "kg": o.kg,
                }
                for o in origins
            ],
        }
        for o in origins:
            country = by_country.setdefault(element, {})
            country[o.country or "unknown"] = (
                country.get(o.country or "unknown", Decimal(0)) + o.share
            )
    return cast(
        Provenance,
        plain(
            {
                "batch": root.reference,
                "model": "mass balance (ISO 22095): inputs of each step pooled per element",
                # A consumed batch is described as it was made.
                "basis": "remaining" if root.remaining_kg else "initial",
                "basis_kg": root.remaining_kg or root.initial_kg,
                "elements": elements,
                "by_country": by_country,
            }
        ),
    )
