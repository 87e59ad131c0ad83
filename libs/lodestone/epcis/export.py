"""A batch's ledger history (and optionally its upstream or downstream lineage) as one
GS1 EPCIS 2.0 ``EPCISDocument`` in JSON-LD.

What maps to what (class-level identifiers: every lot is an ``epcClass`` with a
``quantity`` in ``KGM``; lots are ``urn:lodestone:lot:<actor>:<lot>``, facilities
``urn:lodestone:facility:<owner>:<code>`` in ``readPoint`` / ``bizLocation``):

=====================  ====================================================================
ledger event           EPCIS event
=====================  ====================================================================
OreExtracted           ObjectEvent ADD ``commissioning``; ``ilmd``: material, composition,
                       REO kg, quota, country
ScrapCollected         ObjectEvent ADD ``commissioning``; ``ilmd``: material, composition,
                       recycling source
Produced               TransformationEvent: ``inputQuantityList`` (what the step took),
                       ``outputQuantityList`` (this lot), ``transformationID``, ``ilmd``:
                       material, composition, process, untraced inputs
BatchesMerged          TransformationEvent (inputs -> the merged lot)
SplitOff               TransformationEvent (the parent -> this part)
Consumed               TransformationEvent with the input side only, the same
                       ``transformationID`` as the step's outputs (EPCIS: the events that
                       share a transformationID together describe one transformation)
BatchSplit             TransformationEvent (the parent -> its parts)
CustodyTransferred     TransactionEvent ADD ``accepting`` with the contract in
                       ``bizTransactionList``, seller/buyer as owning parties, price; a caller
                       who may not see the contract gets an ObjectEvent OBSERVE
                       ``accepting`` without parties, contract or price
ShipmentExported       ObjectEvent OBSERVE ``shipping`` / ``in_transit``: destination country,
                       customs code, controlled; for parties also consignee, licence, end
                       user and shipment id
ShipmentReceived       ObjectEvent OBSERVE ``receiving`` / ``in_progress``
BatchMoved             ObjectEvent OBSERVE ``transporting``
BatchQuarantined       ObjectEvent OBSERVE ``holding`` / ``non_sellable_other``
BatchReleased          ObjectEvent OBSERVE ``holding`` / ``active``
Corrected              an ObjectEvent OBSERVE ``inspecting`` carrying the corrected facts
                       (``re:corrects`` names the event); the corrected event itself
                       carries an ``errorDeclaration`` (declaration time, reason
                       ``incorrect_data`` / ``did_not_occur``, ``correctiveEventIDs``)
=====================  ====================================================================

``eventTime`` is when the step happened, ``recordTime`` when the ledger stored it, and
``eventID`` the event's CBV 2.0 hash (``hashing``), which leaves out the record time and
the error declaration: a correction does not change the id of what it corrects.

Redaction is the query layer's (``lodestone.reads.batches.sees``): the lot references,
facilities, parties, contracts, prices, licences and shipment ids of a batch are shown
to its parties, auditors, regulators and admins; others get the batch as
``urn:lodestone:batch:<id>`` (the id the trace answers show them), no facility but the
origin (mine or recycling intake) and no commercial field, as the trace and state
answers do. The event hash is that of the
event as exported, so a redacted event has its own id.

Masses are exact: decimals are written as JSON numbers from their decimal text
(``dumps``), never through a float.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from lodestone.domain.access import Principal
from lodestone.domain.batches import Batch
from lodestone.epcis.hashing import event_hash
from lodestone.ledger import Ledger
from lodestone.ledger.stores import EventRows
from lodestone.reads import batches
from lodestone.reads import history as hist
from lodestone.reads.json import decimal_text

GS1_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
RE_PREFIX = "re"
RE_IRI = "urn:lodestone:epcis:re:"
NAMESPACES = {RE_PREFIX: RE_IRI}
CONTEXT_PATH = "/epcis/contexts/rare-earth.jsonld"
MEDIA_TYPE = "application/ld+json"

#: The rare-earth extension's JSON-LD context, served at ``CONTEXT_PATH``.
RARE_EARTH_CONTEXT: dict[str, Any] = {
    "@context": {
        "re": RE_IRI,
        "xsd": "http://www.w3.org/2001/XMLSchema#",
        "re:material": {"@type": "xsd:string"},
        "re:composition": {"@container": "@set"},
        "re:element": {"@type": "xsd:string"},
        "re:massFraction": {"@type": "xsd:decimal"},
        "re:reoKg": {"@type": "xsd:decimal"},
        "re:quota": {"@type": "xsd:string"},
        "re:licence": {"@type": "xsd:string"},
        "re:country": {"@type": "xsd:string"},
        "re:destinationCountry": {"@type": "xsd:string"},
        "re:customsCode": {"@type": "xsd:string"},
        "re:endUser": {"@type": "xsd:string"},
        "re:controlled": {"@type": "xsd:boolean"},
        "re:shipment": {"@type": "xsd:string"},
        "re:untracedInputs": {"@container": "@set"},
        "re:name": {"@type": "xsd:string"},
        "re:kg": {"@type": "xsd:decimal"},
        "re:process": {"@type": "xsd:string"},
        "re:operation": {"@type": "xsd:string"},
        "re:tolerance": {"@type": "xsd:decimal"},
        "re:source": {"@type": "xsd:string"},
        "re:price": {"@type": "xsd:decimal"},
        "re:currency": {"@type": "xsd:string"},
        "re:reason": {"@type": "xsd:string"},
        "re:note": {"@type": "xsd:string"},
        "re:corrects": {"@type": "@id"},
        "re:correctsLedgerEvent": {"@type": "xsd:string"},
        "re:correctedFacts": {"@type": "@json"},
        "re:ledgerEvent": {"@type": "xsd:string"},
    }
}

#: Facts of a correction a non-party may not see (they name companies or contracts).
COMMERCIAL_FACTS = frozenset(
    {
        "buyer_id",
        "seller_id",
        "consignee_id",
        "exporter_id",
        "contract",
        "price",
        "currency",
        "licence_id",
        "end_user",
        "shipment",
        "to_facility_id",
        "facility_id",
        "from_facility_id",
        "receiver_id",
    }
)


def re_(name: str) -> str:
    return f"{RE_PREFIX}:{name}"


def lot_urn(actor: str, lot: str) -> str:
    return f"urn:lodestone:lot:{actor}:{lot}"


def document(
    ledger: Ledger,
    rows: EventRows,
    view: batches.ViewSource,
    actor: str,
    lot: str,
    principal: Principal,
    lineage: hist.Lineage = "none",
    *,
    context_url: str | None = None,
    now: datetime,
) -> dict[str, Any]:
    """The EPCISDocument of batch ACTOR/LOT's events (and its lineage's), in store order,
    as ``principal`` may see them. ``context_url``: where the rare-earth context is served
    (the document carries the prefix inline as well, so it stands alone)."""
    id = batches.batch_id(ledger, actor, lot)
    ids = [id] if lineage == "none" else hist.lineage_ids(view(), id, lineage)
    mapper = _Mapper(ledger, rows, principal, root=id)
    events = mapper.events(hist.entries(ledger, rows.for_aggregates(ids)))
    context: list[Any] = [GS1_CONTEXT, dict(NAMESPACES)]
    if context_url:
        context.append(context_url)
    return {
        "@context": context,
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": _time(now),
        "epcisBody": {"eventList": events},
    }


# --- writing ----------------------------------------------------------------------------

_RAW = "\u0000decimal:"
_RAW_QUOTED = re.compile(r'"\\u0000decimal:(-?[0-9.]+)"')


def dumps(data: Any) -> bytes:
    """JSON with every Decimal written as a JSON number spelt from its decimal text."""

    def walk(value: Any) -> Any:
        if isinstance(value, Decimal):
            return _RAW + decimal_text(value)
        if isinstance(value, Mapping):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [walk(v) for v in value]
        return value

    text = json.dumps(walk(data), ensure_ascii=False, separators=(",", ":"))
    return _RAW_QUOTED.sub(lambda m: m.group(1), text).encode("utf-8")


# --- mapping ----------------------------------------------------------------------------


def _time(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def _offset(moment: datetime) -> str:
    delta = moment.utcoffset()
    minutes = int(delta.total_seconds() // 60) if delta is not None else 0
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _qty(cls: str, kg: Decimal) -> dict[str, Any]:
    return {"epcClass": cls, "quantity": Decimal(kg), "uom": "KGM"}


def _composition(composition: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [
        {re_("element"): element, re_("massFraction"): Decimal(str(fraction))}
        for element, fraction in sorted(composition.items())
    ]


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, UUID | datetime):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


class _Mapper:
    def __init__(self, ledger: Ledger, rows: EventRows, principal: Principal, root: UUID) -> None:
        self.ledger = ledger
        self.rows = rows
        self.principal = principal
        self.root = root
        self._batches: dict[UUID, Batch | None] = {}
        self._sees: dict[UUID, bool] = {}
        # A lineage names the same facilities, companies and steps many times: each is
        # read from the ledger once per export.
        self._names: dict[tuple[str, UUID], Any] = {}

    # --- who may see what: the query layer's rule, per batch ---------------------------

    def batch(self, id: UUID) -> Batch | None:
        if id not in self._batches:
            found: Any = self.ledger.repository.get(id)
            self._batches[id] = found if isinstance(found, Batch) else None
        return self._batches[id]

    def sees(self, id: UUID) -> bool:
        if id not in self._sees:
            found = self.batch(id)
            self._sees[id] = found is not None and batches.sees(found, self.principal)
        return self._sees[id]

    def lot(self, id: UUID) -> str:
        """The lot's URN for a caller who may see it (or named it), else its id."""
        found = self.batch(id)
        if found is not None and (id == self.root or self.sees(id)):
            actor, _, lot = found.reference.partition("/")
            return lot_urn(actor, lot)
        return f"urn:lodestone:batch:{id}"

    def _once(self, kind: str, id: UUID, read: Callable[[UUID], Any]) -> Any:
        if (kind, id) not in self._names:
            self._names[(kind, id)] = read(id)
        return self._names[(kind, id)]

    def facility(self, id: UUID) -> str:
        found: str = self._once("facility", id, self._facility)
        return found

    def _facility(self, id: UUID) -> str:
        facility = self.ledger.facility(id)
        owner = self.ledger.actor(facility.owner_id)
        return f"urn:lodestone:facility:{owner.code}:{facility.code}"

    def party(self, id: UUID) -> str:
        code: str = self._once("actor", id, lambda i: self.ledger.actor(i).code)
        return f"urn:lodestone:actor:{code}"

    def licence(self, id: UUID | None) -> str | None:
        if id is None:
            return None
        number: str = self._once("licence", id, lambda i: self.ledger.licence(i).number)
        return number

    # --- events -------------------------------------------------------------------------

    def events(self, entries: Iterable[hist.Entry]) -> list[dict[str, Any]]:
        mapped: list[tuple[hist.Entry, dict[str, Any]]] = []
        by_version: dict[tuple[UUID, int], dict[str, Any]] = {}
        for entry in entries:
            event = self.event(entry)
            if event is None:
                continue
            if entry.type == "Batch.Corrected":
                target = by_version.get((entry.aggregate_id, entry.facts["corrects_version"]))
                if target is not None:
                    event[re_("corrects")] = target["eventID"]
            event["eventID"] = event_hash(event, NAMESPACES)
            mapped.append((entry, event))
            by_version[(entry.aggregate_id, entry.version)] = event
        # The corrected event declares its error, naming the correction: the declaration
        # is not part of the hash, so its id stays what it was.
        for entry, event in mapped:
            if entry.type == "Batch.Corrected":
                target = by_version.get((entry.aggregate_id, entry.facts["corrects_version"]))
                if target is not None:
                    target["errorDeclaration"] = {
                        "declarationTime": _time(entry.facts["occurred_at"]),
                        "reason": entry.facts["reason"].replace("-", "_"),
                        "correctiveEventIDs": [event["eventID"]],
                    }
        return [event for _, event in mapped]

    def event(self, entry: hist.Entry) -> dict[str, Any] | None:
        kind = entry.type.partition(".")[2]
        build = _BUILDERS.get(kind)
        if build is None or entry.occurred_at is None:
            return None
        when: datetime = entry.occurred_at
        head: dict[str, Any] = {
            "type": "ObjectEvent",
            "eventTime": _time(when),
            "recordTime": _time(entry.recorded_at),
            "eventTimeZoneOffset": _offset(when),
        }
        body = build(self, entry.aggregate_id, entry.facts, self.sees(entry.aggregate_id))
        event = {**head, **body}
        event[re_("ledgerEvent")] = kind
        return event

    def _where(self, facility_id: UUID | None, sees: bool) -> dict[str, Any]:
        if facility_id is None or not sees:
            return {}
        place = {"id": self.facility(facility_id)}
        return {"readPoint": place, "bizLocation": dict(place)}

    def created(self, id: UUID, f: Mapping[str, Any], sees: bool) -> dict[str, Any]:
        ilmd: dict[str, Any] = {
            re_("material"): f["material"],
            re_("composition"): _composition(f["composition"]),
        }
        if "reo_kg" in f:
            ilmd[re_("reoKg")] = Decimal(f["reo_kg"])
            ilmd[re_("quota")] = self.licence(f.get("quota_id"))
        if "country" in f:
            ilmd[re_("country")] = f["country"]
        if "source" in f:
            ilmd[re_("source")] = f["source"]
        return {
            "action": "ADD",
            "quantityList": [_qty(self.lot(id), f["mass_kg"])],
            "bizStep": "commissioning",
            "disposition": "active",
            # The mine or recycling intake is provenance, shown to everyone (mines are not
            # clients), as the trace answers show it.
            **self._where(f["facility_id"], True),
            "ilmd": {k: v for k, v in ilmd.items() if v is not None},
        }

    def produced(self, id: UUID, f: Mapping[str, Any], sees: bool) -> dict[str, Any]:
        ilmd: dict[str, Any] = {
            re_("material"): f["material"],
            re_("composition"): _composition(f["composition"]),
        }
        event: dict[str, Any] = {
            "type": "TransformationEvent",
            "inputQuantityList": [_qty(self.lot(i["batch_id"]), i["kg"]) for i in f["inputs"]],
            "outputQuantityList": [_qty(self.lot(id), f["mass_kg"])],
        }
        if "transformation_id" in f:
            event["transformationID"] = f"urn:lodestone:transformation:{f['transformation_id']}"
            ilmd[re_("process")] = f["process"]
            untraced = self.untraced(f["transformation_id"])
            if untraced:
                ilmd[re_("untracedInputs")] = untraced
        else:
            ilmd[re_("operation")] = "split" if "parent_id" in f else "merge"
        event["bizStep"] = "commissioning"
        event["disposition"] = "active"
        event.update(self._where(f["facility_id"], sees))
        event["ilmd"] = ilmd
        return event

    def split_off(self, id: UUID, f: Mapping[str, Any], sees: bool) -> dict[str, Any]:
        return self.produced(
            id, {**f, "inputs": [{"batch_id": f["parent_id"], "kg": f["mass_kg"]}]}, sees
        )

    def consumed(self, id: UUID, f: Mapping[str, Any], sees: bool) -> dict[str, Any]:
        event: dict[str, Any] = {
            "type": "TransformationEvent",
            "inputQuantityList": [_qty(self.lot(id), f["kg"])],
        }
        if f["cause"] == "transformation":
            event["transformationID"] = f"urn:lodestone:transformation:{f['into_id']}"
        else:
            event["outputQuantityList"] = [_qty(self.lot(f["into_id"]), f["kg"])]
        event[re_("operation")] = f["cause"]
        return event

    def split(self, id: UUID, f: Mapping[str, Any], sees: bool) -> dict[str, Any]:
        parts = f["parts"]
        total = sum((Decimal(p["kg"]) for p in parts), Decimal(0))
        return {
            "type": "TransformationEvent",
            "inputQuantityList": [_qty(self.lot(id), total)],
            "outputQuantityList": [_qty(self.lot(p["batch_id"]), p["kg"]) for p in parts],
            re_("operation"): "split",
        }

    def sale(self, id: UUID, f: Mapping[str, Any], sees: bool) -> dict[str, Any]:
        quantity = [_qty(self.lot(id), f["volume_kg"])]
        if not sees:
            return {"action": "OBSERVE", "quantityList": quantity, "bizStep": "accepting"}
        event: dict[str, Any] = {
            "type": "TransactionEvent",
            "action": "ADD",
            "quantityList": quantity,
            "bizStep": "accepting",
            "bizLocation": {"id": self.facility(f["to_facility_id"])},
            "bizTransactionList": [
                {
                    "type": "po",
                    "bizTransaction": f"urn:lodestone:contract:{_urn_part(f['contract'])}",
                }
            ],
            "sourceList": [{"type": "owning_party", "source": self.party(f["seller_id"])}],
            "destinationList": [{"type": "owning_party", "destination": self.party(f["buyer_id"])}],
        }
        if f.get("price") is not None:
            event[re_("price")] = Decimal(f["price"])
            event[re_("currency")] = f["currency"]
        return event

    def shipment(self, id: UUID, f: Mapping[str, Any], sees: bool) -> dict[str, Any]:
        event: dict[str, Any] = {
            "action": "OBSERVE",
            "quantityList": [_qty(self.lot(id), f["kg"])],
            "bizStep": "shipping",
            "disposition": "in_transit",
            re_("destinationCountry"): f["destination_country"],
            re_("customsCode"): f["customs_code"],
            re_("controlled"): bool(f.get("controlled", True)),
        }
        if sees:
            event["sourceList"] = [{"type": "owning_party", "source": self.party(f["exporter_id"])}]
            event["destinationList"] = [
                {"type": "owning_party", "destination": self.party(f["consignee_id"])}
            ]
            licence = self.licence(f.get("licence_id"))
            if licence:
                event[re_("licence")] = licence
            if f.get("shipment"):
                event[re_("shipment")] = f["shipment"]
            event[re_("endUser")] = f["end_user"]
        return event

    def receipt(self, id: UUID, f: Mapping[str, Any], sees: bool) -> dict[str, Any]:
        event: dict[str, Any] = {
            "action": "OBSERVE",
            "quantityList": [_qty(self.lot(id), f["received_kg"])],
            "bizStep": "receiving",
            "disposition": "in_progress",
            **self._where(f["facility_id"], sees),
        }
        if sees and f.get("shipment"):
            event[re_("shipment")] = f["shipment"]
        return event

    def moved(self, id: UUID, f: Mapping[str, Any], sees: bool) -> dict[str, Any]:
        return {
            "action": "OBSERVE",
            "quantityList": [{"epcClass": self.lot(id)}],
            "bizStep": "transporting",
            **self._where(f["to_facility_id"], sees),
        }

    def held(self, id: UUID, f: Mapping[str, Any], sees: bool) -> dict[str, Any]:
        return {
            "action": "OBSERVE",
            "quantityList": [{"epcClass": self.lot(id)}],
            "bizStep": "holding",
            "disposition": "non_sellable_other",
            re_("reason"): f["reason"],
        }

    def released(self, id: UUID, f: Mapping[str, Any], sees: bool) -> dict[str, Any]:
        return {
            "action": "OBSERVE",
            "quantityList": [{"epcClass": self.lot(id)}],
            "bizStep": "holding",
            "disposition": "active",
            re_("reason"): f["reason"],
        }

    def corrected(self, id: UUID, f: Mapping[str, Any], sees: bool) -> dict[str, Any]:
        facts = {k: v for k, v in f["facts"].items() if sees or k not in COMMERCIAL_FACTS}
        return {
            "action": "OBSERVE",
            "quantityList": [{"epcClass": self.lot(id)}],
            "bizStep": "inspecting",
            re_("reason"): f["reason"],
            re_("note"): f["note"],
            re_("correctsLedgerEvent"): f"{f['corrects_type']} version {f['corrects_version']}",
            re_("correctedFacts"): json.dumps(_plain(facts), sort_keys=True),
        }

    def untraced(self, transformation_id: UUID) -> list[dict[str, Any]]:
        """The untraced inputs the step declared (iron, boron...), from its record."""
        found: list[dict[str, Any]] = self._once("step", transformation_id, self._untraced)
        return found

    def _untraced(self, transformation_id: UUID) -> list[dict[str, Any]]:
        found = hist.entries(self.ledger, self.rows.for_aggregates([transformation_id]))
        inputs: list[dict[str, Any]] = found[0].facts.get("untraced_inputs", []) if found else []
        return [
            {
                re_("name"): i["name"],
                re_("kg"): Decimal(i["kg"]),
                re_("composition"): _composition(i.get("composition") or {}),
            }
            for i in inputs
        ]


def _urn_part(text: str) -> str:
    # A URN's specific string: unreserved characters kept, the rest percent-encoded.
    return re.sub(
        r"[^A-Za-z0-9._~:-]", lambda m: "".join(f"%{b:02X}" for b in m.group(0).encode()), text
    )


_BUILDERS: dict[str, Callable[[_Mapper, UUID, Mapping[str, Any], bool], dict[str, Any]]] = {
    "OreExtracted": _Mapper.created,
    "ScrapCollected": _Mapper.created,
    "Produced": _Mapper.produced,
    "BatchesMerged": _Mapper.produced,
    "SplitOff": _Mapper.split_off,
    "Consumed": _Mapper.consumed,
    "BatchSplit": _Mapper.split,
    "CustodyTransferred": _Mapper.sale,
    "ShipmentExported": _Mapper.shipment,
    "ShipmentReceived": _Mapper.receipt,
    "BatchMoved": _Mapper.moved,
    "BatchQuarantined": _Mapper.held,
    "BatchReleased": _Mapper.released,
    "Corrected": _Mapper.corrected,
}
