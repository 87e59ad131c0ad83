"""Turns ledger events into trade-ledger rows.

Every row is an upsert keyed by ids and gated by a batch version, and a receipt reads
only its own batch's rows, so the result does not depend on how events of different
batches interleave (Kafka keeps one batch's events in order, nothing more) and a
repeated event changes nothing. The element content of a line is its mass times its
batch's composition, kept with the line (one content row per element) and rewritten
when the composition changes: the composition comes from the batch's Created event or
a later correction (a correction states what was true all along, so it holds for the
sales before it too).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from lodestone.domain.actors import Actor
from lodestone.domain.batches import Batch
from lodestone.domain.licences import Licence
from lodestone.projections.base import Dispatching, handles
from lodestone.projections.trades.rows import Element, Line, Party, TradedBatch
from lodestone.projections.trades.view import Writer

NAME = "trades"
# Bump when the rows change meaning: a rebuild from position 0 follows.
# 2: each line's element content kept with it (trade_contents).
# 3: totals kept as rows (trade_totals), per batch what it adds (trade_batch_totals).
VERSION = 3

#: The event types that make a line, as a correction names them.
LINE_EVENTS = frozenset({"CustodyTransferred", "ShipmentExported", "ShipmentReceived"})


def month(at: datetime) -> str:
    """``YYYY-MM`` of an instant, in UTC."""
    return at.astimezone(UTC).strftime("%Y-%m")


class TradesProjection(Dispatching):
    name = NAME
    version = VERSION

    @handles(Batch.Created)
    def _created(self, event: Batch.Created, writer: Writer) -> None:
        version = event.originator_version
        writer.upsert_batch(
            TradedBatch(
                event.originator_id,
                version,
                reference=f"{event.actor_code}/{event.lot_code}",
                material=event.material,
                composition_version=version,
            )
        )
        writer.set_composition(_elements(event.originator_id, version, event.composition))

    @handles(Batch.CustodyTransferred)
    def _sold(self, event: Batch.CustodyTransferred, writer: Writer) -> None:
        writer.upsert_line(
            replace(
                _line(event, "sale"),
                seller_id=event.seller_id,
                client_id=event.buyer_id,
                kg=event.volume_kg,
                price=event.price,
                currency=event.currency or None,
                contract=event.contract or None,
            )
        )

    @handles(Batch.ShipmentExported)
    def _exported(self, event: Batch.ShipmentExported, writer: Writer) -> None:
        writer.upsert_line(
            replace(
                _line(event, "export"),
                seller_id=event.exporter_id,
                client_id=event.consignee_id,
                end_user=event.end_user,
                kg=event.kg,
                destination_country=event.destination_country,
                customs_code=event.customs_code,
                licence_id=event.licence_id,
                shipment=event.shipment,
                controlled=int(event.controlled),
            )
        )

    @handles(Batch.ShipmentReceived)
    def _received(self, event: Batch.ShipmentReceived, writer: Writer) -> None:
        writer.upsert_line(
            replace(
                _line(event, "receipt"),
                client_id=event.receiver_id,
                kg=event.received_kg,
                shipment=event.shipment,
            )
        )
        writer.fill_receipt(event.originator_id, event.originator_version)

    @handles(Batch.Corrected)
    def _corrected(self, event: Batch.Corrected, writer: Writer) -> None:
        version = event.originator_version
        if "composition" in event.resulting:
            writer.upsert_batch(
                TradedBatch(event.originator_id, version, composition_version=version)
            )
            writer.set_composition(
                _elements(event.originator_id, version, event.resulting["composition"])
            )
        at = event.facts.get("occurred_at")
        if isinstance(at, str):
            at = datetime.fromisoformat(at)
        if event.corrects_type in LINE_EVENTS and isinstance(at, datetime):
            # The sale (export, receipt) happened at another time: the line moves, and
            # says which correction moved it (the history shows both).
            writer.upsert_line(
                Line(
                    event.originator_id,
                    event.corrects_version,
                    version,
                    occurred_at=at.astimezone(UTC),
                    month=month(at),
                    corrected_by=version,
                )
            )

    @handles(Actor.Registered)
    def _actor(self, event: Actor.Registered, writer: Writer) -> None:
        writer.upsert_party(
            Party(event.originator_id, "actor", event.code, event.name, event.country)
        )

    @handles(Licence.Issued)
    def _licence(self, event: Licence.Issued, writer: Writer) -> None:
        writer.upsert_party(
            Party(
                event.originator_id, "licence", event.number, event.kind, event.destination_country
            )
        )


def _line(event: Batch.Step, kind: str) -> Line:
    """The line of ``event`` with what every line has; the handler adds the rest."""
    return Line(
        event.originator_id,
        event.originator_version,
        event.originator_version,
        kind=kind,
        occurred_at=event.occurred_at.astimezone(UTC),
        month=month(event.occurred_at),
    )


def _elements(batch_id: UUID, version: int, composition: Mapping[str, Any]) -> list[Element]:
    """A composition as element rows (a correction's may hold its fractions as text).
    An element with no share carries no content: it is not written, so an element
    query never meets it."""
    fractions = {element: Decimal(str(share)) for element, share in composition.items()}
    return [
        Element(batch_id, element, version, fraction)
        for element, fraction in sorted(fractions.items())
        if fraction
    ]
