"""Gathering the report: ``build`` reads the batch, its genealogy and every event of it
once, into a ``Context``, and writes each section from there as plain JSON (decimals,
ids and times as strings):

- the batch's current state, from the event store;
- its custody timeline: each of its own events with both clocks (when the step
  happened, when the ledger recorded it), who reported it and its sentence;
- its genealogy upstream to the mines and downstream to the end clients, with the mass
  each step took, the processing steps behind it and the trades along it;
- provenance shares per element (mass balance through the whole genealogy);
- the quotas and licences the genealogy drew, with what it drew;
- corrections (events whose type ends in ``Corrected``) found on the batches, steps
  and licences of the genealogy, each shown with what it corrects;
- the anomalies the rules of ``anomalies.py`` find, and those the anomalies read model
  finds about a batch or step of the genealogy (when given its book);
- the verification of the batch's audit bundle and the checkpoint it relies on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from lodestone import integrity
from lodestone.audit import bundle as bundles
from lodestone.audit.checkpointer import Checkpointer, TamperDetected
from lodestone.audit.report.anomalies import SEVERITY_ORDER, anomalies
from lodestone.audit.report.context import Context, is_correction, lag_days
from lodestone.audit.report.wording import summary
from lodestone.domain.access import Principal, Role
from lodestone.domain.licences import QUOTAS, Licence, LicenceKind
from lodestone.domain.refusals import Conflict, NotFound
from lodestone.ledger import Ledger
from lodestone.ledger.stores import CheckpointStore, EventRows
from lodestone.projections import genealogy
from lodestone.reads import anomalies as oversight
from lodestone.reads.history import Entry, entries
from lodestone.reads.json import plain

FORMAT = "lodestone.audit-report.v1"
#: Said elsewhere in an event's entry (its time, its reporter) or internal to the store.
EXCLUDED_FACTS = {"reported_by", "occurred_at", "originator_topic"}


def build(
    ledger: Ledger,
    rows: EventRows,
    view: genealogy.GenealogyView,
    checkpoints: CheckpointStore,
    checkpointer: Checkpointer,
    batch_id: UUID,
    *,
    now: datetime | None = None,
    anomaly_book: oversight.AnomalyBook | None = None,
) -> dict[str, Any]:
    """The audit report of ``batch_id`` as plain JSON. ``view`` must be caught up with
    the event store (the gateway's ``fresh_view()``); ``anomaly_book``: the anomalies
    read model, whose findings about the genealogy join the report's own."""
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
    context = Context(
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
        "anomalies": _with_oversight(
            anomalies(context, shares, verification), context, anomaly_book, step_ids
        ),
        "verification": verification,
    }
    return plain(report)


#: The report is for auditors, regulators and admins: it reads anomalies as they do.
AUDITOR = Principal("audit-report", Role.AUDITOR)


def _with_oversight(
    found: list[dict[str, Any]],
    context: Context,
    book: oversight.AnomalyBook | None,
    step_ids: Iterable[UUID],
) -> list[dict[str, Any]]:
    if book is None:
        return found
    positions = {(e.aggregate_id, e.version): e.position for e in context.events}
    for anomaly, reason in oversight.naming(book, [*context.rows, *step_ids], AUDITOR):
        event = next((e for e in anomaly.events if (e.aggregate_id, e.version) in positions), None)
        subject = next((b for b in anomaly.subjects if b in context.rows), None)
        found.append(
            {
                "kind": anomaly.rule,
                "severity": anomaly.severity,
                "subject": context.ref(subject) if subject else context.batch.reference,
                "position": positions[(event.aggregate_id, event.version)] if event else None,
                "type": event.type if event else None,
                "detail": reason,
            }
        )
    found.sort(key=lambda a: (SEVERITY_ORDER[a["severity"]], a["position"] or 0, a["kind"]))
    return found


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


def _state(context: Context) -> dict[str, Any]:
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


def _timeline(context: Context) -> list[dict[str, Any]]:
    """The batch's own events; an event a later one corrects says by which versions."""
    own = [e for e in context.events if e.aggregate_id == context.batch.id]
    corrected_by = _corrected_by(own)
    return [
        _timeline_entry(context, e)
        | {"corrected_by": corrected_by.get((e.aggregate_id, e.version))}
        for e in own
    ]


def _timeline_entry(context: Context, entry: Entry) -> dict[str, Any]:
    return {
        "position": entry.position,
        "version": entry.version,
        "type": entry.type,
        "summary": summary(context, entry),
        "occurred_at": entry.occurred_at,
        "recorded_at": entry.recorded_at,
        "recorded_after_days": lag_days(entry),
        "reported_by": context.reporter(entry.reported_by),
        "hash": entry.hash,
        "intact": entry.intact,
        "facts": {k: v for k, v in entry.facts.items() if k not in EXCLUDED_FACTS},
    }


# --- genealogy --------------------------------------------------------------------------


def _genealogy(context: Context) -> dict[str, Any]:
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


def _step(context: Context, entry: Entry) -> dict[str, Any]:
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
    context: Context, shares: Mapping[str, list[genealogy.OriginShare]]
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


def _licences(context: Context, licence_ids: Sequence[UUID]) -> list[dict[str, Any]]:
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


def _corrections(context: Context) -> list[dict[str, Any]]:
    """Every correction on the batches and licences of the genealogy (events whose type
    ends in ``Corrected``, such as ``Batch.Corrected``): the event it corrects (named by
    its ``corrects_version``, or a ``corrects...`` position), why, the corrected facts
    and all its own facts. Both stay in the history: the corrected event as recorded."""
    everything = [*context.events, *context.licence_events]
    found = []
    for entry in everything:
        if not is_correction(entry):
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
        if is_correction(entry) and isinstance(version, int):
            found.setdefault((entry.aggregate_id, version), []).append(entry.version)
    return found


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
