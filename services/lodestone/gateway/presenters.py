"""Turning aggregates and read-model rows into JSON, hiding commercial details
(client names, contracts, prices) from callers who are not party to them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from lodestone.domain.access import Principal
from lodestone.domain.batches import Batch
from lodestone.ledger import Ledger
from lodestone.projections.genealogy import Lineage, Name, OriginShare

REDACTED = {"redacted": True}


def plain(value: Any) -> Any:
    """Exact JSON: decimals as strings (never floats), ids as strings."""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")  # one spelling per value: "0.5", never "0.500000"
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def _party(name: Name | None) -> dict[str, Any] | None:
    if name is None:
        return None
    return {"code": name.code, "name": name.name, "country": name.country}


def batch_state(ledger: Ledger, batch: Batch, principal: Principal) -> dict[str, Any]:
    """The authoritative current state, read from the event store."""
    facility = ledger.facility(batch.facility_id)
    custodian = ledger.actor(batch.custodian_id)
    parties = {*batch.holders, batch.reporter_id}
    if batch.export:
        parties |= {batch.export["exporter_id"], batch.export["consignee_id"]}
    sees = principal.sees_commercial(*parties)
    state: dict[str, Any] = {
        "id": batch.id,
        "batch": batch.reference,
        "lot_code": batch.lot_code,
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
        if sees
        else {"kind": facility.kind.value, "country": facility.country, **REDACTED},
        "custodian": {"code": custodian.code, "name": custodian.name, "country": custodian.country}
        if sees
        else REDACTED,
        "created_at": batch.created_at,
        "version": batch.version,
        # Parent lot references name the suppliers.
        "parents": [
            {
                "batch": _reference(ledger, p["batch_id"]) if sees else None,
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
        state["origin"] = {
            "kind": batch.origin["kind"],
            "facility": origin_facility.code,
            "country": batch.origin["country"],
            "quota": licence.number if licence else None,
        }
    if batch.export:
        consignee = ledger.actor(batch.export["consignee_id"])
        state["export"] = {
            "licence": ledger.licence(batch.export["licence_id"]).number,
            "destination_country": batch.export["destination_country"],
            "consignee": consignee.code if sees else REDACTED,
            "kg": batch.export["kg"],
        }
    corrections = getattr(batch, "corrections", [])
    state["corrected"] = bool(corrections)
    if corrections:
        # What was corrected and why; who corrected is for the parties and authorities.
        state["corrections"] = [
            {k: v for k, v in c.items() if sees or k not in ("reported_by",)} for c in corrections
        ]
    if batch.quarantine:
        state["quarantine"] = {
            "reason": batch.quarantine["reason"],
            "by_role": batch.quarantine["by_role"],
        }
    return plain(state)


def _reference(ledger: Ledger, batch_id: UUID) -> str:
    parent = ledger.repository.get(batch_id)
    return parent.reference if isinstance(parent, Batch) else str(batch_id)


def lineage(lineage_: Lineage, principal: Principal, direction: str) -> dict[str, Any]:
    """A trace of hundreds or thousands of batches: built directly as JSON-ready text
    (ids spelt once each, decimals formatted once), not converted afterwards."""
    names = lineage_.names
    text: dict[UUID, str] = {}

    def tid(id: UUID) -> str:
        spelt = text.get(id)
        if spelt is None:
            spelt = text[id] = str(id)
        return spelt

    parties_of: dict[UUID, str] = {}
    party = {id: _party(name) for id, name in names.items()}
    trades_by_batch: dict[UUID, list[Any]] = {}
    for trade in lineage_.trades:
        trades_by_batch.setdefault(trade.batch_id, []).append(trade)
    nodes = []
    for row in lineage_.batches.values():
        parties = {row.reporter_id, row.custodian_id}
        for trade in trades_by_batch.get(row.id, ()):
            parties |= {trade.from_id, trade.to_id}
        # Lot references and facilities name companies: shown to the parties of the
        # batch, auditors, regulators and admins; others see material, masses, the
        # country and the origin (mines are not clients).
        sees = principal.sees_commercial(*(p for p in parties if p))
        facility = names.get(row.facility_id) if row.facility_id else None
        node: dict[str, Any] = {
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
            else {"country": facility.country if facility else None, **REDACTED},
            "custodian": party.get(row.custodian_id) if sees and row.custodian_id else REDACTED,
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
            node["trades"] = [plain(_trade(t, names, principal)) for t in trades_by_batch[row.id]]
        if node["custodian"] is not REDACTED and node["custodian"]:
            parties_of[row.id] = node["custodian"]["code"]
        nodes.append(node)
    nodes.sort(key=lambda n: (n["batch"] or "", n["id"]))
    edges = [
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
        "summary": summary,
        "nodes": nodes,
        "edges": edges,
    }


def _decimal(value: Decimal | None) -> str | None:
    return None if value is None else format(value.normalize(), "f")


def _trade(trade: Any, names: dict[UUID, Name], principal: Principal) -> dict[str, Any]:
    sees = principal.sees_commercial(trade.from_id, trade.to_id)
    return {
        "kind": trade.kind,
        "kg": trade.kg,
        "occurred_at": trade.occurred_at,
        "from": _party(names.get(trade.from_id))
        if trade.from_id and sees
        else (REDACTED if trade.from_id else None),
        "to": _party(names.get(trade.to_id))
        if trade.to_id and sees
        else (REDACTED if trade.to_id else None),
        "contract": trade.contract if sees else REDACTED,
        "price": trade.price if sees else REDACTED,
        "currency": trade.currency if sees else REDACTED,
        "destination_country": trade.destination_country or None,
    }


def _code(names: dict[UUID, Name], id: UUID | None) -> str | None:
    if id is None:
        return None
    name = names.get(id)
    return name.code if name else str(id)


def provenance(lineage_: Lineage, shares: dict[str, list[OriginShare]]) -> dict[str, Any]:
    root = lineage_.batches[lineage_.root]
    names = lineage_.names
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
    return plain(
        {
            "batch": root.reference,
            "model": "mass balance (ISO 22095): inputs of each step pooled per element",
            # A consumed batch is described as it was made.
            "basis": "remaining" if root.remaining_kg else "initial",
            "basis_kg": root.remaining_kg or root.initial_kg,
            "elements": elements,
            "by_country": by_country,
        }
    )


def names_of(items: Iterable[Name]) -> list[dict[str, Any]]:
    return [_party(n) or {} for n in items]
