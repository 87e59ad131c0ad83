"""An audit report for one batch: everything an auditor or a regulator asks of it, in
one document.

``build`` gathers, as plain JSON (decimals, ids and times as strings):

- the batch's current state, from the event store;
- its custody timeline: each of its own events with both clocks (when the step
  happened, when the ledger recorded it) and who reported it;
- its genealogy upstream to the mines and downstream to the end clients, with the mass
  each step took, the processing steps behind it and the trades along it;
- provenance shares per element (mass balance through the whole genealogy);
- the quotas and licences the genealogy drew, with what it drew;
- corrections (events whose type ends in ``Corrected``) found on the batches, steps
  and licences of the genealogy, each shown with what it corrects;
- anomalies: rows that no longer match their hash, a failed verification, steps
  recorded more than 30 days after they happened, quarantines, corrections (a step
  that did not occur is a warning), untraced inputs, unattributed provenance;
- the verification of the batch's audit bundle and the checkpoint it relies on.

The report shows client names, contracts and prices: it is for auditors, regulators
and admins only. ``html`` and ``pdf`` render the JSON alone, so a report kept as JSON
can be rendered again later exactly as it was.
"""

from __future__ import annotations

import html as html_escape
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from lodestone import integrity
from lodestone.audit import bundle as bundles
from lodestone.audit.checkpointer import Checkpointer, TamperDetected
from lodestone.audit.history import Entry, entries
from lodestone.domain.access import Credential
from lodestone.domain.batches import Batch
from lodestone.domain.licences import QUOTAS, Licence, LicenceKind
from lodestone.domain.refusals import Conflict, NotFound
from lodestone.domain.values import RARE_EARTHS
from lodestone.ledger import Ledger
from lodestone.ledger.stores import CheckpointStore, EventRows
from lodestone.projections import genealogy

FORMAT = "lodestone.audit-report.v1"
#: A step recorded this long after it happened is flagged: late reports are how
#: material laundered into the chain is usually made to look old.
LATE_AFTER = timedelta(days=30)
#: Beyond this many nodes the drawn graph groups batches; the JSON keeps every one.
MAX_DRAWN_NODES = 60
MAX_DRAWN_CLIENTS = 20
SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}
EXCLUDED_FACTS = {"reported_by", "occurred_at", "originator_topic"}


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


# --- building the report --------------------------------------------------------------


@dataclass
class _Context:
    """What every section reads: the two lineages, the decoded events and the names."""

    ledger: Ledger
    batch: Batch
    up: genealogy.Lineage
    down: genealogy.Lineage
    rows: dict[UUID, genealogy.BatchRow]
    names: dict[UUID, genealogy.Name]
    events: list[Entry]  # of every batch and step in the genealogy, in store order
    steps: dict[UUID, Entry]  # transformation id -> its BatchTransformed event
    licence_events: list[Entry]
    reporters: dict[str, dict[str, Any]]

    def ref(self, id: UUID | None) -> str | None:
        """A batch's ACTOR/LOT, a step's work order, or an actor, facility or licence code."""
        if id is None:
            return None
        row = self.rows.get(id)
        if row is not None and row.reference:
            return row.reference
        if id in self.steps:
            return f"work order {self.work_order(id)}"
        name = self.names.get(id)
        return name.code if name else str(id)

    def work_order(self, step_id: UUID) -> str | None:
        step = self.steps.get(step_id)
        return str(step.facts.get("reference")) if step is not None else None

    def party(self, id: UUID | None) -> dict[str, Any] | None:
        if id is None:
            return None
        name = self.names.get(id)
        if name is None:
            return {"code": str(id), "name": None, "country": None}
        return {"code": name.code, "name": name.name, "country": name.country}

    def reporter(self, principal_id: str | None) -> dict[str, Any] | None:
        if not principal_id:
            return None
        if principal_id not in self.reporters:
            self.reporters[principal_id] = _principal(self.ledger, principal_id)
        return self.reporters[principal_id]


def build(
    ledger: Ledger,
    rows: EventRows,
    view: genealogy.GenealogyView,
    checkpoints: CheckpointStore,
    checkpointer: Checkpointer,
    batch_id: UUID,
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The audit report of ``batch_id`` as plain JSON. ``view`` must be caught up with
    the event store (the gateway's ``fresh_view()``)."""
    batch = ledger.batch(str(batch_id))
    up = genealogy.upstream(view, batch_id)
    if batch_id not in up.batches:
        raise NotFound("", "exists", f"batch {batch.reference} is not in the genealogy yet")
    down = genealogy.downstream(view, batch_id)
    lineage_rows = {**up.batches, **down.batches}
    edges = [*up.edges, *down.edges]
    step_ids = {e.operation_id for e in edges if e.operation not in ("split", "merge")}
    events = entries(ledger, rows.for_aggregates([*lineage_rows, *step_ids]))
    steps = {e.aggregate_id: e for e in events if e.type == "Transformation.BatchTransformed"}
    licence_ids = _licence_ids(lineage_rows.values(), events)
    licence_events = entries(ledger, rows.for_aggregates(licence_ids))
    names = {**up.names, **down.names}
    names.update(view.names(_referenced(events, licence_events) - names.keys()))
    context = _Context(
        ledger, batch, up, down, lineage_rows, names, events, steps, licence_events, {}
    )
    shares = genealogy.provenance(up)
    verification = _verification(ledger, rows, checkpoints, checkpointer, batch_id)
    report = {
        "format": FORMAT,
        "generated_at": (now or datetime.now(UTC)).isoformat(),
        "audience": "auditors, regulators and admins",
        "confidential": "shows client names, contracts and prices",
        "batch": batch.reference,
        "id": str(batch_id),
        "state": _state(context),
        "timeline": _timeline(context),
        "genealogy": _genealogy(context),
        "provenance": _provenance(context, shares),
        "licences": _licences(context, licence_ids),
        "corrections": _corrections(context),
        "anomalies": _anomalies(context, shares, verification),
        "verification": verification,
    }
    return plain(report)


def _principal(ledger: Ledger, principal_id: str) -> dict[str, Any]:
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
    return {"principal": principal_id, "role": "admin", "label": principal_id, "actor": None}


def _licence_ids(batches: Iterable[genealogy.BatchRow], events: Sequence[Entry]) -> list[UUID]:
    """Mining quotas of the origins, separation quotas of the steps, export licences of
    the shipments: in that order, each once."""
    found: dict[UUID, None] = {}
    for row in batches:
        if row.origin_licence_id is not None:
            found[row.origin_licence_id] = None
    for entry in events:
        for key in ("quota_id", "licence_id"):
            value = entry.facts.get(key)
            if isinstance(value, UUID):
                found[value] = None
    return list(found)


def _referenced(*groups: Sequence[Entry]) -> set[UUID]:
    """Every actor, facility and licence id named in these events' facts."""
    ids: set[UUID] = set()
    for group in groups:
        for entry in group:
            for key, value in entry.facts.items():
                if isinstance(value, UUID) and key.endswith("_id"):
                    ids.add(value)
    return ids


def _state(context: _Context) -> dict[str, Any]:
    batch, ledger = context.batch, context.ledger
    facility = ledger.facility(batch.facility_id)
    custodian = ledger.actor(batch.custodian_id)
    state: dict[str, Any] = {
        "batch": batch.reference,
        "id": batch.id,
        "lot_code": batch.lot_code,
        "material": batch.material.value,
        "status": batch.status.value,
        "initial_kg": batch.initial_kg,
        "remaining_kg": batch.remaining_kg,
        "composition": batch.composition,
        "facility": {
            "code": facility.code,
            "name": facility.name,
            "kind": facility.kind.value,
            "country": facility.country,
        },
        "custodian": {"code": custodian.code, "name": custodian.name, "country": custodian.country},
        "holders": [context.party(h) for h in batch.holders],
        "created_at": batch.created_at,
        "version": batch.version,
        "corrections": len(getattr(batch, "corrections", None) or []),
        "parents": [{"batch": context.ref(p["batch_id"]), "kg": p["kg"]} for p in batch.parents],
        "origin": None,
        "export": None,
        "quarantine": None,
    }
    if batch.origin:
        quota = batch.origin.get("licence_id")
        state["origin"] = {
            "kind": batch.origin["kind"],
            "facility": context.ref(batch.origin["facility_id"]),
            "country": batch.origin["country"],
            "quota": context.ref(quota) if quota else None,
        }
    if batch.export:
        state["export"] = {
            "licence": context.ref(batch.export["licence_id"]),
            "destination_country": batch.export["destination_country"],
            "exporter": context.party(batch.export["exporter_id"]),
            "consignee": context.party(batch.export["consignee_id"]),
            "kg": batch.export["kg"],
        }
    if batch.quarantine:
        state["quarantine"] = {
            "reason": batch.quarantine["reason"],
            "by_role": batch.quarantine["by_role"],
        }
    return state


# --- timeline ---------------------------------------------------------------------------


def _lag_days(entry: Entry) -> Decimal | None:
    if entry.occurred_at is None:
        return None
    seconds = Decimal(int((entry.recorded_at - entry.occurred_at).total_seconds()))
    return (seconds / Decimal(86_400)).quantize(Decimal("0.1"))


def _timeline(context: _Context) -> list[dict[str, Any]]:
    """The batch's own events; an event a later one corrects says by which versions."""
    own = [e for e in context.events if e.aggregate_id == context.batch.id]
    corrected_by = _corrected_by(own)
    return [
        _timeline_entry(context, e)
        | {"corrected_by": corrected_by.get((e.aggregate_id, e.version))}
        for e in own
    ]


def _timeline_entry(context: _Context, entry: Entry) -> dict[str, Any]:
    return {
        "position": entry.position,
        "version": entry.version,
        "type": entry.type,
        "summary": _summary(context, entry),
        "occurred_at": entry.occurred_at,
        "recorded_at": entry.recorded_at,
        "recorded_after_days": _lag_days(entry),
        "reported_by": context.reporter(entry.reported_by),
        "hash": entry.hash,
        "intact": entry.intact,
        "facts": {k: v for k, v in entry.facts.items() if k not in EXCLUDED_FACTS},
    }


def _kg(value: Any) -> str:
    return f"{format_kg(plain(value))} kg"


def _summary(context: _Context, entry: Entry) -> str:
    """One sentence a person reads: what the step was, with names instead of ids."""
    f = entry.facts
    kind = entry.type.rpartition(".")[2]
    ref, party = context.ref, context.party

    def who(id: UUID | None) -> str:
        p = party(id)
        if p is None:
            return "?"
        return f"{p['code']} ({p['name']})" if p.get("name") else str(p["code"])

    if kind == "OreExtracted":
        return (
            f"Extracted {_kg(f['mass_kg'])} of {f['material']} at {ref(f['facility_id'])} "
            f"({f['country']}) under quota {ref(f['quota_id'])}, drawing {plain(f['reo_kg'])} kg REO"
        )
    if kind == "ScrapCollected":
        return (
            f"Collected {_kg(f['mass_kg'])} of {f['material']} at {ref(f['facility_id'])} "
            f"({f['country']}) from {f['source']}"
        )
    if kind == "Produced":
        taken = ", ".join(f"{ref(i['batch_id'])} ({_kg(i['kg'])})" for i in f["inputs"])
        return (
            f"Made {_kg(f['mass_kg'])} of {f['material']} by {f['process']} at "
            f"{ref(f['facility_id'])} ({ref(f['transformation_id'])}) from {taken}"
        )
    if kind == "SplitOff":
        return f"Split off {_kg(f['mass_kg'])} of {f['material']} from {ref(f['parent_id'])}"
    if kind == "BatchesMerged":
        taken = ", ".join(f"{ref(i['batch_id'])} ({_kg(i['kg'])})" for i in f["inputs"])
        return f"Merged {_kg(f['mass_kg'])} of {f['material']} from {taken}"
    if kind == "Consumed":
        return (
            f"{_kg(f['kg'])} taken by {f['cause']} into {ref(f['into_id'])}; "
            f"{_kg(f['remaining_kg'])} remain"
        )
    if kind == "BatchSplit":
        parts = ", ".join(f"{p.get('lot_code')} ({_kg(p['kg'])})" for p in f["parts"])
        return f"Split into {parts}; {_kg(f['remaining_kg'])} remain"
    if kind == "CustodyTransferred":
        price = f", price {plain(f['price'])} {f['currency']}" if f.get("price") is not None else ""
        return (
            f"Sold {_kg(f['volume_kg'])} by {who(f['seller_id'])} to {who(f['buyer_id'])} "
            f"under contract {f['contract']}{price}; goods to {ref(f['to_facility_id'])}"
        )
    if kind == "ShipmentExported":
        return (
            f"Exported {_kg(f['kg'])} by {who(f['exporter_id'])} to {f['destination_country']} "
            f"under licence {ref(f['licence_id'])}: consignee {who(f['consignee_id'])}, "
            f"end user {f['end_user']}, customs code {f['customs_code']}"
        )
    if kind == "ShipmentReceived":
        return (
            f"Received {_kg(f['received_kg'])} by {who(f['receiver_id'])} "
            f"at {ref(f['facility_id'])}"
        )
    if kind == "BatchMoved":
        return f"Moved from {ref(f['from_facility_id'])} to {ref(f['to_facility_id'])}"
    if kind == "BatchQuarantined":
        return f"Quarantined by a {f['by_role']}: {f['reason']}"
    if kind == "BatchReleased":
        return f"Released to {f['restored_status']}: {f['reason']}"
    if kind.endswith("Corrected"):
        what = f"version {f['corrects_version']}" if "corrects_version" in f else "an event"
        if f.get("corrects_type"):
            what += f" ({f['corrects_type']})"
        text = f"Corrects {what}: {f.get('reason') or 'no reason given'}"
        if f.get("note"):
            text += f", {f['note']}"
        if isinstance(f.get("facts"), dict) and f["facts"]:
            text += "; now " + ", ".join(f"{k} {plain(v)}" for k, v in f["facts"].items())
        return text
    return kind


# --- genealogy --------------------------------------------------------------------------


def _genealogy(context: _Context) -> dict[str, Any]:
    up, down, root = context.up, context.down, context.batch.id
    trades: dict[UUID, list[genealogy.Trade]] = {}
    for trade in {(t.batch_id, t.version): t for t in [*up.trades, *down.trades]}.values():
        trades.setdefault(trade.batch_id, []).append(trade)
    children = {e.parent_id for e in down.edges}
    leaves = ({e.child_id for e in down.edges} - children) or {root}
    nodes = []
    for id, row in context.rows.items():
        side = "root" if id == root else "upstream" if id in up.batches else "downstream"
        node: dict[str, Any] = {
            "id": id,
            "batch": row.reference,
            "side": side,
            "material": row.material,
            "status": row.status,
            "initial_kg": row.initial_kg,
            "remaining_kg": row.remaining_kg,
            "facility": context.party(row.facility_id),
            "holder": context.party(row.custodian_id),
            "created_at": row.created_at,
            "origin": None,
            "end": id in leaves,
            "trades": [
                {
                    "kind": t.kind,
                    "kg": t.kg,
                    "occurred_at": t.occurred_at,
                    "from": context.party(t.from_id),
                    "to": context.party(t.to_id),
                    "contract": t.contract or None,
                    "price": t.price,
                    "currency": t.currency or None,
                    "destination_country": t.destination_country or None,
                }
                for t in sorted(trades.get(id, []), key=lambda t: t.version)
            ],
        }
        if row.origin_kind:
            node["origin"] = {
                "kind": row.origin_kind,
                "facility": context.ref(row.origin_facility_id),
                "quota": context.ref(row.origin_licence_id),
                "country": row.origin_country,
            }
        nodes.append(node)
    order = {"upstream": 0, "root": 1, "downstream": 2}
    nodes.sort(key=lambda n: (order[n["side"]], str(n["created_at"]), n["batch"] or ""))
    edges = sorted(
        (
            {
                "from": e.parent_id,
                "to": e.child_id,
                "from_batch": context.ref(e.parent_id),
                "to_batch": context.ref(e.child_id),
                "kg": e.kg,
                "operation": e.operation,
                "work_order": context.work_order(e.operation_id),
            }
            for e in [*up.edges, *down.edges]
        ),
        key=lambda e: (str(e["from_batch"]), str(e["to_batch"])),
    )
    origins: Counter[tuple[str, str | None, str | None, str | None]] = Counter()
    for node in nodes:
        if node["origin"]:
            o = node["origin"]
            origins[(o["kind"], o["facility"], o["country"], o["quota"])] += 1
    end_holders: dict[str, dict[str, Any]] = {}
    for node in nodes:
        if node["end"] and node["holder"]:
            end_holders[node["holder"]["code"]] = node["holder"]
    return {
        "summary": {
            "upstream_batches": len(up.batches) - 1,
            "downstream_batches": len(down.batches) - 1,
            "edges": len(edges),
            "origins": [
                {"kind": k, "facility": f, "country": c, "quota": q, "batches": n}
                for (k, f, c, q), n in sorted(origins.items(), key=lambda i: str(i[0]))
            ],
            "end_holders": [end_holders[c] for c in sorted(end_holders)],
        },
        "nodes": nodes,
        "edges": edges,
        "steps": [_step(context, e) for e in context.steps.values()],
    }


def _step(context: _Context, entry: Entry) -> dict[str, Any]:
    """A processing step: what it took, what it made, untraced material, quota drawn."""
    f = entry.facts
    return {
        "reference": f.get("reference"),
        "process": f.get("process"),
        "facility": context.ref(f.get("facility_id")),
        "actor": context.ref(f.get("actor_id")),
        "occurred_at": entry.occurred_at,
        "recorded_at": entry.recorded_at,
        "inputs": [{"batch": context.ref(i["batch_id"]), "kg": i["kg"]} for i in f["inputs"]],
        "outputs": [
            {
                # Outputs beside the genealogy (other products of the same step) are not
                # in the lineage: named by the step's actor and their lot code.
                "batch": context.rows[o["batch_id"]].reference
                if o["batch_id"] in context.rows
                else f"{context.ref(f.get('actor_id'))}/{o.get('lot_code')}",
                "material": o.get("material"),
                "kg": o["kg"],
            }
            for o in f["outputs"]
        ],
        "untraced_inputs": [
            {"name": u.get("name"), "kg": u.get("kg"), "composition": u.get("composition", {})}
            for u in f.get("untraced_inputs", [])
        ],
        "tolerance": f.get("tolerance"),
        "quota": context.ref(f.get("quota_id")),
        "quota_drawn_kg": f.get("quota_drawn_kg"),
    }


# --- provenance -------------------------------------------------------------------------


def _provenance(
    context: _Context, shares: Mapping[str, list[genealogy.OriginShare]]
) -> dict[str, Any]:
    root = context.up.batches[context.batch.id]
    elements: dict[str, Any] = {}
    by_country: dict[str, dict[str, Decimal]] = {}
    for element, origins in shares.items():
        elements[element] = {
            "kg": sum((o.kg for o in origins), Decimal(0)),
            "origins": [
                {
                    "kind": o.kind,
                    "facility": context.ref(o.facility_id),
                    "quota": context.ref(o.licence_id),
                    "country": o.country,
                    "share": o.share,
                    "kg": o.kg,
                }
                for o in origins
            ],
        }
        countries = by_country.setdefault(element, {})
        for o in origins:
            country = o.country or "unknown"
            countries[country] = countries.get(country, Decimal(0)) + o.share
    return {
        "model": "mass balance (ISO 22095): the inputs of each step pooled per element",
        "basis": "remaining" if root.remaining_kg else "initial",
        "basis_kg": root.remaining_kg or root.initial_kg,
        "elements": elements,
        "by_country": by_country,
    }


# --- licences and quotas ----------------------------------------------------------------


def _licences(context: _Context, licence_ids: Sequence[UUID]) -> list[dict[str, Any]]:
    ours = set(context.rows) | set(context.steps)
    draws: dict[UUID, list[Entry]] = {}
    for entry in context.licence_events:
        if entry.type == "Licence.Drawn" and entry.facts.get("batch_id") in ours:
            draws.setdefault(entry.aggregate_id, []).append(entry)
    found = []
    for id in licence_ids:
        licence: Licence = context.ledger.licence(id)
        quota = licence.kind in QUOTAS
        drawn_here = draws.get(id, [])
        item: dict[str, Any] = {
            "number": licence.number,
            "kind": licence.kind.value,
            "unit": "kg REO" if quota else "kg",
            "holder": context.party(licence.holder_id),
            "valid_from": licence.valid_from,
            "valid_until": licence.valid_until,
            "max_kg": licence.max_kg,
            "drawn_kg": licence.drawn_kg,
            "remaining_kg": licence.remaining_kg,
            "drawn_here_kg": sum((e.facts["kg"] for e in drawn_here), Decimal(0)),
            "draws": [
                {
                    "for": context.ref(e.facts["batch_id"]),
                    "cause": e.facts["cause"],
                    "kg": e.facts["kg"],
                    "occurred_at": e.occurred_at,
                    "position": e.position,
                }
                for e in drawn_here
            ],
        }
        if licence.kind is LicenceKind.EXPORT_LICENCE:
            item |= {
                "destination_country": licence.destination_country,
                "consignee": context.party(licence.consignee_id),
                "end_user": licence.end_user,
                "end_use": licence.end_use,
                "contract": licence.contract,
                "items": licence.items,
            }
        found.append(item)
    return found


# --- corrections ------------------------------------------------------------------------


def _corrections(context: _Context) -> list[dict[str, Any]]:
    """Every correction on the batches and licences of the genealogy (events whose type
    ends in ``Corrected``, such as ``Batch.Corrected``): the event it corrects (named by
    its ``corrects_version``, or a ``corrects...`` position), why, the corrected facts
    and all its own facts. Both stay in the history: the corrected event as recorded."""
    everything = [*context.events, *context.licence_events]
    found = []
    for entry in everything:
        if not _is_correction(entry):
            continue
        facts = {k: v for k, v in entry.facts.items() if k not in EXCLUDED_FACTS}
        pointers = {k: v for k, v in facts.items() if k.startswith("correct")}
        target = _corrected_event(entry, pointers, everything)
        corrected_facts = facts.get("facts")
        found.append(
            {
                "position": entry.position,
                "aggregate": context.ref(entry.aggregate_id),
                "version": entry.version,
                "type": entry.type,
                "occurred_at": entry.occurred_at,
                "recorded_at": entry.recorded_at,
                "reported_by": context.reporter(entry.reported_by),
                "corrects": pointers or None,
                "corrected_event": None
                if target is None
                else {
                    "position": target.position,
                    "version": target.version,
                    "type": target.type,
                    "occurred_at": target.occurred_at,
                    "recorded_at": target.recorded_at,
                },
                "reason": facts.get("reason"),
                "note": facts.get("note"),
                "corrected_facts": corrected_facts if isinstance(corrected_facts, dict) else None,
                "facts": facts,
            }
        )
    return found


def _is_correction(entry: Entry) -> bool:
    return entry.type.endswith("Corrected")


def _corrected_event(
    correction: Entry, pointers: Mapping[str, Any], everything: Sequence[Entry]
) -> Entry | None:
    for key, value in pointers.items():
        if isinstance(value, bool) or not isinstance(value, int):
            continue
        for entry in everything:
            if (
                "version" in key
                and entry.aggregate_id == correction.aggregate_id
                and entry.version == value
            ) or ("position" in key and entry.position == value):
                return entry
    return None


def _corrected_by(events: Sequence[Entry]) -> dict[tuple[UUID, int], list[int]]:
    """(aggregate, version) -> the versions of the corrections that name it."""
    found: dict[tuple[UUID, int], list[int]] = {}
    for entry in events:
        version = entry.facts.get("corrects_version")
        if _is_correction(entry) and isinstance(version, int):
            found.setdefault((entry.aggregate_id, version), []).append(entry.version)
    return found


# --- anomalies --------------------------------------------------------------------------


def _anomalies(
    context: _Context,
    shares: Mapping[str, list[genealogy.OriginShare]],
    verification: Mapping[str, Any],
) -> list[dict[str, Any]]:
    """What an auditor should look at first, most severe first."""
    found: list[dict[str, Any]] = []

    def add(kind: str, severity: str, entry: Entry | None, detail: str) -> None:
        found.append(
            {
                "kind": kind,
                "severity": severity,
                # A batch's ACTOR/LOT, a step's work order or a licence's number.
                "subject": context.ref(entry.aggregate_id) if entry else context.batch.reference,
                "position": entry.position if entry else None,
                "type": entry.type if entry else None,
                "detail": detail,
            }
        )

    if not verification["ok"]:
        add("verification-failed", "critical", None, str(verification["error"]))
    for entry in [*context.events, *context.licence_events]:
        if not entry.intact:
            add(
                "not-intact",
                "critical",
                entry,
                f"the stored {entry.type} (version {entry.version}) of "
                f"{context.ref(entry.aggregate_id)} no longer matches its hash: it was "
                "altered after it was recorded",
            )
    for late in _late_steps(context.events):
        first = late[0]
        what = ", ".join(
            f"{e.type.rpartition('.')[2]} of {context.ref(e.aggregate_id)}" for e in late[:5]
        )
        if len(late) > 5:
            what += f" and {len(late) - 5} more events of the same step"
        happened = first.occurred_at.date().isoformat() if first.occurred_at else "?"
        add(
            "late-report",
            "warning",
            first,
            f"recorded {_lag_days(first)} days after it happened ({happened}): {what}",
        )
    for entry in context.events:
        if entry.type == "Batch.BatchQuarantined":
            add(*_quarantine(context, entry))
        elif _is_correction(entry):
            # A step that never happened is what laundering looks like afterwards.
            gone = entry.facts.get("reason") == "did-not-occur"
            add(
                "correction",
                "warning" if gone else "info",
                entry,
                f"{context.ref(entry.aggregate_id)}: {_summary(context, entry)}",
            )
    for entry in context.steps.values():
        for untraced in entry.facts.get("untraced_inputs", []):
            rare = sorted(
                e for e, share in (untraced.get("composition") or {}).items() if e in RARE_EARTHS
            )
            add(
                "untraced-input",
                "warning" if rare else "info",
                entry,
                f"{entry.facts.get('process')} ({context.ref(entry.aggregate_id)}) took "
                f"{_kg(untraced.get('kg'))} of {untraced.get('name')} not traced in the ledger"
                + (
                    f", carrying rare earths ({', '.join(rare)})"
                    if rare
                    else " (no rare earths declared)"
                ),
            )
    for element, origins in shares.items():
        for origin in origins:
            if origin.kind == "unattributed":
                add(
                    "unattributed-provenance",
                    "warning",
                    None,
                    f"{format_share(origin.share)} of the {element} ({_kg(origin.kg)}) "
                    "traces back to no mine or recycling intake",
                )
    found.sort(key=lambda a: (SEVERITY_ORDER[a["severity"]], a["position"] or 0, a["kind"]))
    return found


def _late_steps(events: Sequence[Entry]) -> list[list[Entry]]:
    """Events recorded more than ``LATE_AFTER`` after they happened, one group per
    reported step: the events one command stores share its reporter and event time
    (a transformation's outputs, the inputs it consumed and its record)."""
    groups: dict[tuple[datetime, str | None], list[Entry]] = {}
    for entry in events:
        if entry.occurred_at and entry.recorded_at - entry.occurred_at > LATE_AFTER:
            groups.setdefault((entry.occurred_at, entry.reported_by), []).append(entry)
    return list(groups.values())


def _quarantine(context: _Context, entry: Entry) -> tuple[str, str, Entry, str]:
    name = context.ref(entry.aggregate_id)
    detail = f"{name} quarantined by a {entry.facts.get('by_role')}: {entry.facts.get('reason')}"
    end = _quarantine_end(context.events, entry)
    if end is None:
        return "quarantine", "warning", entry, detail + "; still quarantined"
    when = end.occurred_at.date().isoformat() if end.occurred_at else ""
    return "quarantine", "info", entry, f"{detail}; released {when}: {end.facts.get('reason')}"


def _quarantine_end(events: Sequence[Entry], quarantine: Entry) -> Entry | None:
    for entry in events:
        if (
            entry.aggregate_id == quarantine.aggregate_id
            and entry.position > quarantine.position
            and entry.type in ("Batch.BatchReleased", "Batch.BatchQuarantined")
        ):
            return entry if entry.type == "Batch.BatchReleased" else None
    return None


# --- verification -----------------------------------------------------------------------


def _verification(
    ledger: Ledger,
    rows: EventRows,
    checkpoints: CheckpointStore,
    checkpointer: Checkpointer,
    batch_id: UUID,
) -> dict[str, Any]:
    """Builds the batch's audit bundle and checks it exactly as the standalone verifier
    does: the result, and the checkpoint (Merkle root) every event is proven against."""
    try:
        data = bundles.build(ledger.recorder, rows, checkpoints, checkpointer, batch_id)
        summary = integrity.verify_bundle(data)
    except (integrity.BundleError, TamperDetected, Conflict) as error:
        return {"ok": False, "error": str(error), "checkpoint": None}
    return {
        "ok": True,
        "error": None,
        "method": "audit bundle (RFC 8785 event hashes, per-batch hash chain, Merkle proofs) "
        "checked by lodestone/integrity.py",
        "events": summary["events"],
        "newest_event_hash": summary["newest_event_hash"],
        "bundle_sha256": integrity.sha256_hex(data),
        "checkpoint": summary["checkpoint"],
    }


# --- rendering for people ----------------------------------------------------------------


def _decimal(text: Any) -> Decimal | None:
    try:
        return Decimal(str(text))
    except (InvalidOperation, ValueError):
        return None


def format_kg(text: Any) -> str:
    """``"10000.5"`` -> ``"10,000.5"``: grouped for reading, never rounded."""
    value = _decimal(text) if text is not None else None
    return "" if value is None else format(value, ",f")


def format_share(text: Any) -> str:
    value = _decimal(text)
    return "" if value is None else f"{(value * 100).quantize(Decimal('0.01'))} %"


def format_time(text: Any) -> str:
    if not text:
        return ""
    moment = datetime.fromisoformat(str(text)).astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("lodestone.audit", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["kg"] = format_kg
    env.filters["share"] = format_share
    env.filters["time"] = format_time
    env.filters["n"] = "{:,}".format
    return env


def html(report: Mapping[str, Any], *, for_print: bool = False) -> str:
    """The report as one self-contained HTML page (styles and the graph inline)."""
    from markupsafe import Markup

    graph = draw_genealogy(report["genealogy"])
    template = _environment().get_template("report.html.j2")
    return str(
        template.render(
            r=report,
            graph_svg=Markup(graph.svg) if graph.svg else None,
            graph_note=graph.note,
            for_print=for_print,
        )
    )


def pdf(report: Mapping[str, Any]) -> bytes:
    """The report as PDF (A4 landscape), laid out by WeasyPrint from the same HTML."""
    import weasyprint

    document: bytes = weasyprint.HTML(string=html(report, for_print=True)).write_pdf()
    return document


# --- the genealogy drawn ----------------------------------------------------------------

MATERIAL_FILL = {
    "ore": "#eadbc8",
    "concentrate": "#f3e3b5",
    "oxide": "#d9ecd0",
    "metal": "#d3e2f2",
    "alloy": "#e2d8f0",
    "magnet": "#f4d3d3",
    "scrap": "#dedede",
}
FONT = "DejaVu Sans"
CLIENT_STYLE = {"shape": "ellipse", "style": "filled", "fillcolor": "#fff7d6", "color": "#b08900"}


@dataclass(frozen=True)
class Graph:
    svg: str | None
    note: str | None  # said under the graph: grouping, or why it is not drawn


@dataclass
class _Box:
    """One drawn node: a batch, or a group of batches of one side, material and holder."""

    lines: list[str]
    material: str | None
    side: str
    origin: bool
    end: bool


def _group_key(node: Mapping[str, Any], coarse: bool) -> str:
    if node["side"] == "root":
        return "root"
    base = f"{node['side']}|{node['material']}"
    if coarse:
        return base
    if node["origin"]:
        return f"{base}|origin|{node['origin']['facility']}"
    return f"{base}|{(node['holder'] or {}).get('code')}"


def draw_genealogy(genealogy_: Mapping[str, Any]) -> Graph:
    """The genealogy as SVG, drawn by Graphviz's ``dot``: mines on the left, end clients
    on the right, the mass each step took on its edge. Beyond ``MAX_DRAWN_NODES``
    batches, batches of the same side, material and holder (or mine) are drawn as one
    box with their count and total mass; beyond that again, by side and material."""
    import graphviz

    nodes: list[Mapping[str, Any]] = genealogy_["nodes"]
    edges: list[Mapping[str, Any]] = genealogy_["edges"]
    note = None
    if len(nodes) <= MAX_DRAWN_NODES:
        group = {n["id"]: n["id"] for n in nodes}
    else:
        coarse = len({_group_key(n, False) for n in nodes}) > MAX_DRAWN_NODES
        group = {n["id"]: _group_key(n, coarse) for n in nodes}
        how = "side and material" if coarse else "side, material and holder (or mine)"
        note = (
            f"The genealogy has {len(nodes):,} batches: drawn as "
            f"{len(set(group.values())):,} boxes, batches of the same {how} together. "
            "The JSON report lists every batch."
        )
    boxes: dict[str, _Box] = {}
    members: dict[str, list[Mapping[str, Any]]] = {}
    for node in nodes:
        members.setdefault(group[node["id"]], []).append(node)
    for key, batch_nodes in members.items():
        boxes[key] = _box(batch_nodes)

    dot = graphviz.Digraph(
        "genealogy",
        graph_attr={
            "rankdir": "LR",
            "fontname": FONT,
            "fontsize": "10",
            "nodesep": "0.25",
            "ranksep": "0.6",
            "bgcolor": "white",
            "pad": "0.2",
        },
        node_attr={"fontname": FONT, "fontsize": "9", "shape": "box", "style": "rounded,filled"},
        edge_attr={"fontname": FONT, "fontsize": "8", "color": "#555555", "arrowsize": "0.6"},
    )
    ids = {key: f"n{i}" for i, key in enumerate(boxes)}
    origins, ends = [], []
    for key, box in boxes.items():
        attrs = {
            "fillcolor": MATERIAL_FILL.get(box.material or "", "#ffffff"),
            "color": "#1f4e79" if box.side == "root" else "#777777",
            "penwidth": "2.5" if box.side == "root" else "1",
        }
        if box.origin:
            attrs["peripheries"] = "2"
        dot.node(ids[key], _html_label(box.lines, bold_first=True), **attrs)
        if box.origin:
            origins.append(ids[key])
        elif box.end:
            ends.append(ids[key])
    totals: dict[tuple[str, str, str], list[Decimal]] = {}
    for edge in edges:
        a, b = group.get(edge["from"]), group.get(edge["to"])
        if a is None or b is None:
            continue
        entry = totals.setdefault((a, b, edge["operation"]), [Decimal(0), Decimal(0)])
        entry[0] += Decimal(edge["kg"])
        entry[1] += 1
    for (a, b, operation), (kg, count) in totals.items():
        times = f" ×{count}" if count > 1 else ""
        label = f"{format_kg(kg)} kg\\n{graphviz.escape(operation)}{times}"
        dot.edge(ids[a], ids[b], label=graphviz.nohtml(label))
    clients = _draw_clients(dot, nodes, group, ids)
    # Mines in the first column, end clients (or the last batches) in the last.
    for name, rank, column_ids in (
        ("origins", "min", origins),
        ("ends", "max", clients or ends),
    ):
        with dot.subgraph(name=name) as column:
            column.attr(rank=rank)
            for node_id in column_ids:
                column.node(node_id)
    try:
        svg = dot.pipe(format="svg", encoding="utf-8")
    except graphviz.ExecutableNotFound:
        return Graph(None, "Graphviz (dot) is not installed here: the genealogy is not drawn.")
    start = svg.find("<svg")
    return Graph(svg[start:] if start >= 0 else svg, note)


def _box(batch_nodes: Sequence[Mapping[str, Any]]) -> _Box:
    first = batch_nodes[0]
    holder = first["holder"] or {}
    origin = first["origin"]
    if len(batch_nodes) == 1:
        lines = [
            str(first["batch"]),
            f"{first['material']} · {format_kg(first['initial_kg'])} kg",
            f"holder {holder.get('code')} ({holder.get('country')})",
        ]
        if first["status"] and first["status"] != "active":
            lines[1] += f" · {str(first['status']).replace('_', ' ')}"
        elif first["remaining_kg"] != first["initial_kg"]:
            lines[1] += f" ({format_kg(first['remaining_kg'])} kg left)"
    else:
        total = sum((Decimal(n["initial_kg"] or 0) for n in batch_nodes), Decimal(0))
        holders = {(n["holder"] or {}).get("code") for n in batch_nodes}
        lines = [
            f"{len(batch_nodes):,} {first['material']} batches",
            f"{format_kg(total)} kg in all",
            f"holder {holder.get('code')}" if len(holders) == 1 else f"{len(holders)} holders",
        ]
    if origin:
        if len(batch_nodes) == 1 or len({str(n["origin"]) for n in batch_nodes}) == 1:
            lines.append(f"{origin['kind']} at {origin['facility']}, {origin['country']}")
            if origin.get("quota"):
                lines.append(f"quota {origin['quota']}")
        else:
            lines.append(f"{origin['kind']}: several origins")
    return _Box(
        lines,
        first["material"],
        first["side"],
        origin=bool(origin),
        end=any(n["end"] for n in batch_nodes),
    )


def _html_label(lines: Sequence[str], bold_first: bool = False) -> str:
    """A Graphviz HTML-like label; every text is escaped, so lot codes and names are
    shown as written, never read as markup."""
    cells = []
    for n, line in enumerate(lines):
        text = html_escape.escape(line, quote=True)
        if n == 0 and bold_first:
            text = f"<b>{text}</b>"
        cells.append(f'<tr><td align="left">{text}</td></tr>')
    return f'<<table border="0" cellborder="0" cellspacing="0" cellpadding="1">{"".join(cells)}</table>>'


def _draw_clients(
    dot: Any,
    nodes: Sequence[Mapping[str, Any]],
    group: Mapping[str, str],
    ids: Mapping[str, str],
) -> list[str]:
    """Sales and exports of the batch and everything downstream, to the actor that bought
    or received them: the end clients at the right-hand edge of the drawing. Beyond
    ``MAX_DRAWN_CLIENTS`` the clients that took least are drawn as one."""
    import graphviz

    flows: dict[tuple[str, str, str], list[Any]] = {}
    clients: dict[str, Mapping[str, Any]] = {}
    taken: dict[str, Decimal] = {}
    for node in nodes:
        if node["side"] == "upstream":
            continue
        received = any(t["kind"] == "receipt" for t in node["trades"])
        for trade in node["trades"]:
            if trade["kind"] not in ("sale", "export") or not trade["to"]:
                continue
            client = trade["to"]
            clients[client["code"]] = client
            taken[client["code"]] = taken.get(client["code"], Decimal(0)) + Decimal(trade["kg"])
            how = "sold" if trade["kind"] == "sale" else "exported"
            if trade["kind"] == "export":
                how += f" to {trade['destination_country']}" + (", received" if received else "")
            flow = flows.setdefault((group[node["id"]], client["code"], how), [Decimal(0), 0])
            flow[0] += Decimal(trade["kg"])
            flow[1] += 1
    biggest = sorted(taken, key=lambda code: (-taken[code], code))[:MAX_DRAWN_CLIENTS]
    others = sorted(set(clients) - set(biggest))
    drawn: dict[str, str] = {}  # client code -> drawn node id
    for n, code in enumerate(sorted(biggest)):
        client = clients[code]
        drawn[code] = f"c{n}"
        lines = [code, str(client.get("name") or ""), str(client.get("country") or "")]
        dot.node(drawn[code], _html_label(lines), **CLIENT_STYLE)
    if others:
        for code in others:
            drawn[code] = "c-others"
        lines = [
            f"{len(others):,} more clients",
            f"{format_kg(sum((taken[c] for c in others), Decimal(0)))} kg",
        ]
        dot.node("c-others", _html_label(lines), **CLIENT_STYLE)
    merged: dict[tuple[str, str, str], list[Any]] = {}
    for (box, code, how), (kg, count) in flows.items():
        flow = merged.setdefault((ids[box], drawn[code], how), [Decimal(0), 0])
        flow[0] += kg
        flow[1] += count
    for (box_id, client_id, how), (kg, count) in merged.items():
        times = f" ×{count}" if count > 1 else ""
        label = f"{graphviz.escape(how)}\\n{format_kg(kg)} kg{times}"
        dot.edge(box_id, client_id, label=graphviz.nohtml(label), style="dashed", color="#b08900")
    return sorted(set(drawn.values()))
