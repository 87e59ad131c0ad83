"""The sentence a person reads for each event: what the step was, with names instead of
ids. One function per event type in ``SENTENCES``: a new event type gets its sentence
there (without one, the report shows the type's name)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from uuid import UUID

from lodestone.audit.report.context import Context, is_correction
from lodestone.audit.report.formats import kg
from lodestone.domain.batches import Batch
from lodestone.reads.history import Entry
from lodestone.reads.json import plain

Facts = Mapping[str, Any]
Sentence = Callable[[Context, Facts], str]


def summary(context: Context, entry: Entry) -> str:
    """One sentence a person reads: what the step was, with names instead of ids."""
    sentence = SENTENCES.get(entry.type)
    if sentence is None and is_correction(entry):
        sentence = _corrected
    if sentence is None:
        return entry.type.rpartition(".")[2]
    return sentence(context, entry.facts)


def _who(context: Context, id: UUID | None) -> str:
    """An actor by code and name: ``MAGCO (Ningbo Magnets)``."""
    p = context.party(id)
    if p is None:
        return "?"
    return f"{p['code']} ({p['name']})" if p.get("name") else str(p["code"])


def _taken(context: Context, inputs: list[Mapping[str, Any]]) -> str:
    return ", ".join(f"{context.ref(i['batch_id'])} ({kg(i['kg'])})" for i in inputs)


def _ore_extracted(c: Context, f: Facts) -> str:
    return (
        f"Extracted {kg(f['mass_kg'])} of {f['material']} at {c.ref(f['facility_id'])} "
        f"({f['country']}) under quota {c.ref(f['quota_id'])}, drawing {plain(f['reo_kg'])} kg REO"
    )


def _scrap_collected(c: Context, f: Facts) -> str:
    return (
        f"Collected {kg(f['mass_kg'])} of {f['material']} at {c.ref(f['facility_id'])} "
        f"({f['country']}) from {f['source']}"
    )


def _produced(c: Context, f: Facts) -> str:
    return (
        f"Made {kg(f['mass_kg'])} of {f['material']} by {f['process']} at "
        f"{c.ref(f['facility_id'])} ({c.ref(f['transformation_id'])}) from {_taken(c, f['inputs'])}"
    )


def _split_off(c: Context, f: Facts) -> str:
    return f"Split off {kg(f['mass_kg'])} of {f['material']} from {c.ref(f['parent_id'])}"


def _merged(c: Context, f: Facts) -> str:
    return f"Merged {kg(f['mass_kg'])} of {f['material']} from {_taken(c, f['inputs'])}"


def _consumed(c: Context, f: Facts) -> str:
    return (
        f"{kg(f['kg'])} taken by {f['cause']} into {c.ref(f['into_id'])}; "
        f"{kg(f['remaining_kg'])} remain"
    )


def _split(c: Context, f: Facts) -> str:
    parts = ", ".join(f"{p.get('lot_code')} ({kg(p['kg'])})" for p in f["parts"])
    return f"Split into {parts}; {kg(f['remaining_kg'])} remain"


def _sold(c: Context, f: Facts) -> str:
    price = f", price {plain(f['price'])} {f['currency']}" if f.get("price") is not None else ""
    return (
        f"Sold {kg(f['volume_kg'])} by {_who(c, f['seller_id'])} to {_who(c, f['buyer_id'])} "
        f"under contract {f['contract']}{price}; goods to {c.ref(f['to_facility_id'])}"
    )


def _exported(c: Context, f: Facts) -> str:
    # Shipments recorded before they had numbers name none (and all had a licence).
    shipment = f" as shipment {f['shipment']}" if f.get("shipment") else ""
    under = (
        f"under licence {c.ref(f['licence_id'])}"
        if f.get("licence_id")
        else "without a licence (uncontrolled goods)"
    )
    return (
        f"Exported {kg(f['kg'])} by {_who(c, f['exporter_id'])} to {f['destination_country']}"
        f"{shipment} {under}: consignee {_who(c, f['consignee_id'])}, "
        f"end user {f['end_user']}, customs code {f['customs_code']}"
    )


def _received(c: Context, f: Facts) -> str:
    shipment = f" from shipment {f['shipment']}" if f.get("shipment") else ""
    return (
        f"Received {kg(f['received_kg'])}{shipment} by {_who(c, f['receiver_id'])} "
        f"at {c.ref(f['facility_id'])}"
    )


def _moved(c: Context, f: Facts) -> str:
    return f"Moved from {c.ref(f['from_facility_id'])} to {c.ref(f['to_facility_id'])}"


def _quarantined(c: Context, f: Facts) -> str:
    return f"Quarantined by a {f['by_role']}: {f['reason']}"


def _released(c: Context, f: Facts) -> str:
    return f"Released to {f['restored_status']}: {f['reason']}"


def _corrected(c: Context, f: Facts) -> str:
    """Any correction (``Batch.Corrected``, ``Licence.DrawCorrected``): what it names,
    why, and the facts it gives instead."""
    what = f"version {f['corrects_version']}" if "corrects_version" in f else "an event"
    if f.get("corrects_type"):
        what += f" ({f['corrects_type']})"
    text = f"Corrects {what}: {f.get('reason') or 'no reason given'}"
    if f.get("note"):
        text += f", {f['note']}"
    if isinstance(f.get("facts"), dict) and f["facts"]:
        text += "; now " + ", ".join(f"{k} {plain(v)}" for k, v in f["facts"].items())
    return text


#: Event type (as the history names it, ``Batch.OreExtracted``) -> its sentence.
SENTENCES: dict[str, Sentence] = {
    event.__qualname__: sentence
    for event, sentence in (
        (Batch.OreExtracted, _ore_extracted),
        (Batch.ScrapCollected, _scrap_collected),
        (Batch.Produced, _produced),
        (Batch.SplitOff, _split_off),
        (Batch.BatchesMerged, _merged),
        (Batch.Consumed, _consumed),
        (Batch.BatchSplit, _split),
        (Batch.CustodyTransferred, _sold),
        (Batch.ShipmentExported, _exported),
        (Batch.ShipmentReceived, _received),
        (Batch.BatchMoved, _moved),
        (Batch.BatchQuarantined, _quarantined),
        (Batch.BatchReleased, _released),
        (Batch.Corrected, _corrected),
    )
}
