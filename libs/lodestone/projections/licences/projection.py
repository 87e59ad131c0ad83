"""Turns licence events into licences, draws and quota use by month.

Each draw adds to what its licence has drawn, read back through the writer: a
licence's events arrive in order whatever the interleaving with other aggregates, and
an event of a version the view already has is a repeat and changes nothing. A
correction of a draw (a corrected extraction gives REO back or draws more) counts in
the month of the draw it corrects, so that quota use by month says what was really
drawn when. Times are kept in UTC.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from lodestone.domain.actors import Actor
from lodestone.domain.licences import Licence
from lodestone.domain.values import EXACT, ZERO
from lodestone.projections.base import Dispatching, handles
from lodestone.projections.licences.rows import Draw, LicenceRow, Party
from lodestone.projections.licences.view import Writer

NAME = "licences"
VERSION = 1  # bump when the rows change meaning: a rebuild from position 0 follows


def utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def month(moment: datetime) -> str:
    return utc(moment).strftime("%Y-%m")


class LicencesProjection(Dispatching):
    name = NAME
    version = VERSION

    @handles(Licence.Issued)
    def _issued(self, event: Licence.Issued, writer: Writer) -> None:
        if writer.licence(event.originator_id) is not None:
            return  # a repeat
        writer.save_licence(
            LicenceRow(
                event.originator_id,
                event.originator_version,
                event.number,
                event.kind,
                event.holder_id,
                event.max_kg,
                utc(event.valid_from),
                utc(event.valid_until),
                event.consignee_id,
                event.end_user,
                event.end_use,
                event.destination_country,
                event.contract,
                json.dumps(_plain(event.items), sort_keys=True, separators=(",", ":")),
                utc(event.occurred_at),
                ZERO,
                0,
            )
        )

    @handles(Licence.Drawn)
    def _drawn(self, event: Licence.Drawn, writer: Writer) -> None:
        licence = self._next(event, writer)
        if licence is None:
            return
        writer.save_draw(
            Draw(
                licence.id,
                event.originator_version,
                "draw",
                event.cause,
                event.batch_id,
                event.kg,
                utc(event.occurred_at),
                month(event.occurred_at),
                None,
            )
        )
        writer.save_licence(
            replace(
                licence,
                version=event.originator_version,
                drawn_kg=EXACT.add(licence.drawn_kg, event.kg),
                draws=licence.draws + 1,
            )
        )

    @handles(Licence.DrawCorrected)
    def _draw_corrected(self, event: Licence.DrawCorrected, writer: Writer) -> None:
        licence = self._next(event, writer)
        if licence is None:
            return
        drawn = [
            d
            for d in writer.draws(licence.id)
            if d.kind == "draw"
            and d.batch_id == event.batch_id
            and d.version < event.originator_version
        ]
        corrects = max(drawn, key=lambda d: d.version) if drawn else None
        writer.save_draw(
            Draw(
                licence.id,
                event.originator_version,
                "correction",
                "correction",
                event.batch_id,
                event.kg,
                utc(event.occurred_at),
                corrects.month if corrects else month(event.occurred_at),
                corrects.version if corrects else None,
            )
        )
        writer.save_licence(
            replace(
                licence,
                version=event.originator_version,
                drawn_kg=EXACT.add(licence.drawn_kg, event.kg),
            )
        )

    @handles(Actor.Registered)
    def _actor(self, event: Actor.Registered, writer: Writer) -> None:
        writer.save_party(Party(event.originator_id, event.code, event.name, event.country))

    @staticmethod
    def _next(event: Any, writer: Writer) -> LicenceRow | None:
        """The licence this event is the next version of; None for a repeat."""
        licence = writer.licence(event.originator_id)
        if licence is None or licence.version >= event.originator_version:
            return None
        return licence


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, str | int | bool) or value is None:
        return value
    return str(value)
