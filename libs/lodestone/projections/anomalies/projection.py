"""Turns ledger events into the facts the anomaly rules read.

Facts only: the projection writes what each event states, keyed by ids (batch rows
gated by the batch's version, movements by the version of their latest correction), so
the rows do not depend on how events of different aggregates interleave and a repeated
event changes nothing. The rules themselves need the whole picture (everything a company
ever produced, a month's median price, a mine's history): they are evaluated over these
facts when the view is read (``rules.evaluate``), never while events arrive.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

from lodestone.domain.actors import Actor, Facility
from lodestone.domain.anomalies import AnomalyReview
from lodestone.domain.batches import Batch, Transformation
from lodestone.domain.licences import Licence
from lodestone.domain.values import EXACT, ZERO
from lodestone.projections.anomalies.rows import (
    BatchFact,
    InputFact,
    LicenceFact,
    MovementFact,
    PartyFact,
    ReviewFact,
    StepFact,
)
from lodestone.projections.anomalies.view import Writer
from lodestone.projections.base import Dispatching, handles

NAME = "anomalies"
VERSION = 1  # bump when the rows change meaning: a rebuild from position 0 follows

#: Batch fields a correction may change that the facts keep.
CORRECTED = {"initial_kg": "initial_kg", "composition": "composition", "created_at": "created_at"}


def _element_kg(parts: Any) -> dict[str, Decimal]:
    """kg of each element over (kg, composition) parts."""
    found: dict[str, Decimal] = {}
    for kg, composition in parts:
        for element, share in (composition or {}).items():
            found[element] = EXACT.add(found.get(element, ZERO), EXACT.multiply(kg, share))
    return found


class AnomaliesProjection(Dispatching):
    name = NAME
    version = VERSION

    # --- batches as made ------------------------------------------------------------------

    @handles(Batch.Created)
    def _created(self, event: Batch.Created, writer: Writer, **how: Any) -> None:
        writer.upsert_batch(
            BatchFact(
                event.originator_id,
                event.originator_version,
                reference=f"{event.actor_code}/{event.lot_code}",
                actor_id=event.actor_id,
                material=event.material,
                initial_kg=event.mass_kg,
                composition=dict(event.composition),
                facility_id=event.facility_id,
                created_at=event.occurred_at,
                **how,
            )
        )

    @handles(Batch.OreExtracted)
    def _mined(self, event: Batch.OreExtracted, writer: Writer) -> None:
        self._created(
            event, writer, kind="mined", origin_country=event.country, quota_id=event.quota_id
        )

    @handles(Batch.ScrapCollected)
    def _collected(self, event: Batch.ScrapCollected, writer: Writer) -> None:
        self._created(event, writer, kind="recycled", origin_country=event.country)

    @handles(Batch.Produced)
    def _produced(self, event: Batch.Produced, writer: Writer) -> None:
        self._created(event, writer, kind="produced", made_by=event.transformation_id)

    @handles(Batch.SplitOff)
    def _split_off(self, event: Batch.SplitOff, writer: Writer) -> None:
        self._created(event, writer, kind="split", made_by=event.parent_id)

    @handles(Batch.BatchesMerged)
    def _merged(self, event: Batch.BatchesMerged, writer: Writer) -> None:
        self._created(event, writer, kind="merged", made_by=event.originator_id)
        writer.add_inputs(
            [InputFact(event.originator_id, i["batch_id"], i["kg"]) for i in event.inputs]
        )

    @handles(Transformation.BatchTransformed)
    def _transformed(self, event: Transformation.BatchTransformed, writer: Writer) -> None:
        outputs = [(o["kg"], o["composition"]) for o in event.outputs]
        writer.add_step(
            StepFact(
                event.originator_id,
                event.actor_id,
                event.facility_id,
                event.process,
                event.reference,
                event.tolerance,
                _element_kg(outputs),
                sum((kg for kg, _ in outputs), ZERO),
                _element_kg((u["kg"], u["composition"]) for u in event.untraced_inputs),
                event.occurred_at,
            )
        )
        writer.add_inputs(
            [InputFact(event.originator_id, i["batch_id"], i["kg"]) for i in event.inputs]
        )

    @handles(Batch.Corrected)
    def _corrected(self, event: Batch.Corrected, writer: Writer) -> None:
        changed = {CORRECTED[k]: v for k, v in event.resulting.items() if k in CORRECTED}
        if event.resulting.get("status") == "void":
            changed["status"] = "void"
        writer.upsert_batch(BatchFact(event.originator_id, event.originator_version, **changed))
        if event.reason == "did-not-occur" and event.corrects_version > 1:
            # A move that never happened: its movement no longer counts.
            writer.upsert_movement(
                MovementFact(
                    event.originator_id,
                    event.corrects_version,
                    kind="void",
                    corrected_by=event.originator_version,
                )
            )
        elif "occurred_at" in event.facts and event.corrects_version > 1:
            # A sale's, export's, receipt's or move's time corrected: its movement row.
            writer.upsert_movement(
                MovementFact(
                    event.originator_id,
                    event.corrects_version,
                    occurred_at=event.facts["occurred_at"],
                    corrected_by=event.originator_version,
                )
            )

    # --- movements ------------------------------------------------------------------------

    @handles(Batch.CustodyTransferred)
    def _sold(self, event: Batch.CustodyTransferred, writer: Writer) -> None:
        self._movement(
            event,
            writer,
            kind="sale",
            from_id=event.seller_id,
            to_id=event.buyer_id,
            kg=event.volume_kg,
            facility_id=event.to_facility_id,
            price=event.price,
            currency=event.currency,
            contract=event.contract,
        )

    @handles(Batch.ShipmentExported)
    def _exported(self, event: Batch.ShipmentExported, writer: Writer) -> None:
        self._movement(
            event,
            writer,
            kind="export",
            from_id=event.exporter_id,
            to_id=event.consignee_id,
            kg=event.kg,
            licence_id=event.licence_id,
            destination_country=event.destination_country,
            end_user=event.end_user,
            customs_code=event.customs_code,
        )

    @handles(Batch.ShipmentReceived)
    def _received(self, event: Batch.ShipmentReceived, writer: Writer) -> None:
        self._movement(
            event,
            writer,
            kind="receipt",
            to_id=event.receiver_id,
            kg=event.received_kg,
            facility_id=event.facility_id,
        )

    @handles(Batch.BatchMoved)
    def _moved(self, event: Batch.BatchMoved, writer: Writer) -> None:
        self._movement(event, writer, kind="move", facility_id=event.to_facility_id)

    def _movement(self, event: Batch.Step, writer: Writer, **facts: Any) -> None:
        writer.upsert_movement(
            MovementFact(
                event.originator_id,
                event.originator_version,
                occurred_at=event.occurred_at,
                corrected_by=0,
                **facts,
            )
        )

    # --- who and what is named ------------------------------------------------------------

    @handles(Actor.Registered)
    def _actor(self, event: Actor.Registered, writer: Writer) -> None:
        writer.upsert_party(
            PartyFact(event.originator_id, "actor", event.code, event.name, event.country, None, "")
        )

    @handles(Facility.Registered)
    def _facility(self, event: Facility.Registered, writer: Writer) -> None:
        writer.upsert_party(
            PartyFact(
                event.originator_id,
                "facility",
                event.code,
                event.name,
                event.country,
                event.owner_id,
                event.kind,
            )
        )

    @handles(Licence.Issued)
    def _licence(self, event: Licence.Issued, writer: Writer) -> None:
        writer.upsert_licence(
            LicenceFact(
                event.originator_id,
                event.number,
                event.kind,
                event.holder_id,
                event.consignee_id,
                event.end_user,
                event.destination_country,
            )
        )

    # --- decisions about anomalies --------------------------------------------------------

    @handles(AnomalyReview.Decided)
    def _reviewed(self, event: AnomalyReview.Decided, writer: Writer) -> None:
        writer.add_review(
            ReviewFact(
                UUID(event.anomaly_id),
                event.originator_version,
                event.rule,
                event.status,
                event.note,
                event.by_role,
                event.reported_by,
                event.occurred_at,
            )
        )
