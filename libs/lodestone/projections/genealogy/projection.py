"""Turns ledger events into genealogy rows.

The projection only upserts rows keyed by ids, gated by each batch's version, so the
result does not depend on how events from different batches interleave (an edge may
arrive before its parent batch) and a repeated event changes nothing.
"""

from __future__ import annotations

from typing import Any

from lodestone.domain.actors import Actor, Facility
from lodestone.domain.batches import Batch
from lodestone.domain.licences import Licence
from lodestone.domain.values import ZERO
from lodestone.projections.base import Dispatching, handles
from lodestone.projections.genealogy.rows import BatchRow, Edge, Name, Trade
from lodestone.projections.genealogy.view import Writer

NAME = "genealogy"
# Bump when the rows change meaning: a rebuild from position 0 follows.
# 2: each batch's provenance shares kept beside its row (batch_provenance).
VERSION = 2

#: Batch fields a correction may change that the view keeps.
CORRECTED_COLUMNS = frozenset(
    {"initial_kg", "remaining_kg", "composition", "facility_id", "status", "created_at"}
)


class GenealogyProjection(Dispatching):
    name = NAME
    version = VERSION

    @handles(Batch.Created)
    def _created(self, event: Batch.Created, writer: Writer, **origin: Any) -> None:
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

    @handles(Batch.OreExtracted)
    def _ore_extracted(self, event: Batch.OreExtracted, writer: Writer) -> None:
        self._created(
            event,
            writer,
            origin_kind="mined",
            origin_licence_id=event.quota_id,
            origin_country=event.country,
            origin_facility_id=event.facility_id,
        )

    @handles(Batch.ScrapCollected)
    def _scrap_collected(self, event: Batch.ScrapCollected, writer: Writer) -> None:
        self._created(
            event,
            writer,
            origin_kind="recycled",
            origin_country=event.country,
            origin_facility_id=event.facility_id,
        )

    @handles(Batch.Produced)
    def _produced(self, event: Batch.Produced, writer: Writer) -> None:
        self._created(event, writer)
        edges = [
            Edge(
                i["batch_id"], event.originator_id, i["kg"], event.process, event.transformation_id
            )
            for i in event.inputs
        ]
        if edges:
            writer.add_edges(edges)

    @handles(Batch.BatchesMerged)
    def _merged(self, event: Batch.BatchesMerged, writer: Writer) -> None:
        self._created(event, writer)
        edges = [
            Edge(i["batch_id"], event.originator_id, i["kg"], "merge", event.originator_id)
            for i in event.inputs
        ]
        if edges:
            writer.add_edges(edges)

    @handles(Batch.SplitOff)
    def _split_off(self, event: Batch.SplitOff, writer: Writer) -> None:
        self._created(event, writer)
        writer.add_edges(
            [Edge(event.parent_id, event.originator_id, event.mass_kg, "split", event.parent_id)]
        )

    @handles(Batch.Consumed, Batch.BatchSplit)
    def _mass_taken(self, event: Batch.Consumed | Batch.BatchSplit, writer: Writer) -> None:
        writer.upsert_batch(
            BatchRow(
                event.originator_id,
                event.originator_version,
                remaining_kg=event.remaining_kg,
                status="consumed" if event.remaining_kg == ZERO else None,
            )
        )

    @handles(Batch.CustodyTransferred)
    def _sold(self, event: Batch.CustodyTransferred, writer: Writer) -> None:
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

    @handles(Batch.BatchMoved)
    def _moved(self, event: Batch.BatchMoved, writer: Writer) -> None:
        writer.upsert_batch(
            BatchRow(
                event.originator_id, event.originator_version, facility_id=event.to_facility_id
            )
        )

    @handles(Batch.ShipmentExported)
    def _exported(self, event: Batch.ShipmentExported, writer: Writer) -> None:
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

    @handles(Batch.ShipmentReceived)
    def _received(self, event: Batch.ShipmentReceived, writer: Writer) -> None:
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

    @handles(Batch.BatchQuarantined)
    def _quarantined(self, event: Batch.BatchQuarantined, writer: Writer) -> None:
        writer.upsert_batch(
            BatchRow(event.originator_id, event.originator_version, status="quarantined")
        )

    @handles(Batch.BatchReleased)
    def _released(self, event: Batch.BatchReleased, writer: Writer) -> None:
        writer.upsert_batch(
            BatchRow(event.originator_id, event.originator_version, status=event.restored_status)
        )

    @handles(Batch.Corrected)
    def _corrected(self, event: Batch.Corrected, writer: Writer) -> None:
        fields = {k: v for k, v in event.resulting.items() if k in CORRECTED_COLUMNS}
        writer.upsert_batch(
            BatchRow(
                event.originator_id, event.originator_version, corrections=event.number, **fields
            )
        )

    @handles(Actor.Registered)
    def _actor(self, event: Actor.Registered, writer: Writer) -> None:
        writer.upsert_name(
            Name(event.originator_id, "actor", event.code, event.name, event.country)
        )

    @handles(Facility.Registered)
    def _facility(self, event: Facility.Registered, writer: Writer) -> None:
        writer.upsert_name(
            Name(event.originator_id, "facility", event.code, event.name, event.country)
        )

    @handles(Licence.Issued)
    def _licence(self, event: Licence.Issued, writer: Writer) -> None:
        writer.upsert_name(
            Name(
                event.originator_id, "licence", event.number, event.kind, event.destination_country
            )
        )
