"""Licences and quotas as a caller may see them: issued, drawn, remaining, expiry, the
refused attempts that named them, each draw with its event and quota use by month.

The rule of ``registry.licence`` holds for a licence the caller names (its draws): a
quota's holder is shown; an export licence's holder, consignee, end user, end use and
contract are commercial details, shown to its holder, its consignee, auditors,
regulators and admins only. The list goes one step further, because it names licences
nobody asked for: a licence number identifies its holder as well as its name does
(numbers often spell the holder's code), so a licence whose holder is not provenance
(an export licence, a separation quota) is listed to non-parties without its id,
number and holder: its kind, figures, validity and refused attempts only. A mining
quota's holder is a mine, provenance open to all. A holder filter matches only
licences listed with their holder, so that it cannot be probed. The draws of an export licence are its
shipments: an operator that is not party to it may not list them; each draw names its
batch to whoever may see that batch (a mine's ore lot drawing a quota: anyone).

Refused attempts (how many writes that named a licence were refused, per rule) are
shown to its parties, analysts, auditors, regulators and admins.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any, cast
from uuid import UUID

from lodestone.domain import ids
from lodestone.domain.access import Principal, Role
from lodestone.domain.licences import QUOTAS, LicenceKind
from lodestone.domain.refusals import Forbidden, NotFound
from lodestone.domain.values import EXACT, ZERO, aware, one_of
from lodestone.ledger import Ledger, handlers
from lodestone.ledger.stores import EventRows
from lodestone.projections.licences import Draw, LicenceRow, LicencesView, Party
from lodestone.projections.refusals import RefusalLog
from lodestone.reads import batches
from lodestone.reads.batches import REDACTED
from lodestone.reads.json import plain
from lodestone.reads.types import DrawView, LicenceDraws, LicenceList, LicenceSummary

#: A view caught up with every event recorded so far (the gateway's ``fresh``).
LicencesSource = Callable[[], LicencesView]

#: Roles that see every licence's refused attempts (operators: their own licences').
SEES_REFUSALS = frozenset({Role.ANALYST, Role.AUDITOR, Role.REGULATOR, Role.ADMIN})

EXPORT = LicenceKind.EXPORT_LICENCE.value
MINING = LicenceKind.MINING_QUOTA.value


def licences(
    view: LicencesSource,
    refusals: RefusalLog,
    principal: Principal,
    *,
    now: datetime,
    kind: str | None = None,
    holder: str | None = None,
    expiring_before: datetime | None = None,
) -> LicenceList:
    """Every licence and quota the filters let through, by number: ``kind``, ``holder``
    (an actor code) and ``expiring_before`` (valid until before that moment, expired
    ones included)."""
    wanted = one_of(LicenceKind, kind, "kind", "licence-kind").value if kind else None
    if expiring_before is not None:
        aware(expiring_before, "expiring_before")
    source = view()
    holder_id = None
    if holder is not None:
        holder_id = ids.actor_id(handlers.code(holder, "holder"))
        if holder_id not in source.parties([holder_id]):
            raise NotFound("holder", "exists", f"actor {holder} is not registered")
    rows = [
        row
        for row in source.licences()
        if (wanted is None or row.kind == wanted)
        and (holder_id is None or (row.holder_id == holder_id and listed_openly(row, principal)))
        and (expiring_before is None or row.valid_until < expiring_before)
    ]
    # Named ones by number, then the others in an order that says nothing of their numbers.
    rows.sort(
        key=lambda r: (
            (0, r.number, "", "")
            if listed_openly(r, principal)
            else (1, r.kind, r.valid_until.isoformat(), str(r.max_kg))
        )
    )
    parties = source.parties({id for row in rows for id in (row.holder_id, row.consignee_id) if id})
    counts = refusals.counts([row.number for row in rows])
    return {
        "licences": [
            summary(row, parties, counts.get(row.number, {}), principal, now, named=False)
            for row in rows
        ]
    }


def draws(
    ledger: Ledger,
    view: LicencesSource,
    rows: EventRows,
    refusals: RefusalLog,
    principal: Principal,
    number: str,
    *,
    now: datetime,
) -> LicenceDraws:
    """Each draw of licence ``number`` with its event (the licence's version, its store
    position, the batch, kg and time), and what was drawn per month."""
    id = ids.licence_id(handlers.code(number, "number"))
    source = view()
    row = source.licences_by_id([id]).get(id)
    if row is None:
        raise NotFound("", "exists", f"licence {number} is not registered")
    if row.kind == EXPORT and principal.role is Role.OPERATOR and not _party_to(row, principal):
        raise Forbidden(
            "number", "ownership", f"the shipments under licence {row.number} are its parties'"
        )
    parties = source.parties({i for i in (row.holder_id, row.consignee_id) if i})
    counts = refusals.counts([row.number]).get(row.number, {})
    found = source.draws_of([id])
    positions = {r.version: r.position for r in rows.for_aggregates([id])}
    by_month: dict[str, Decimal] = {}
    for draw in found:
        by_month[draw.month] = EXACT.add(by_month.get(draw.month, ZERO), draw.kg)
    return {
        "licence": summary(row, parties, counts, principal, now, named=True),
        "draws": [
            _draw(ledger, d, positions.get(d.version), principal, row.kind != EXPORT) for d in found
        ],
        "by_month": cast(dict[str, str], plain(dict(sorted(by_month.items())))),
    }


def summary(
    row: LicenceRow,
    parties: dict[UUID, Party],
    refused: dict[str, int],
    principal: Principal,
    now: datetime,
    *,
    named: bool,
) -> LicenceSummary:
    """``named``: the caller gave the number (else the licence is one of a list)."""
    export = row.kind == EXPORT
    sees = principal.sees_commercial(row.holder_id, row.consignee_id)
    identified = named or listed_openly(row, principal)
    body: dict[str, Any] = {
        "id": row.id if identified else None,
        "number": row.number if identified else REDACTED,
        "kind": row.kind,
        "holder": _code(parties, row.holder_id)
        if identified and (sees or not export)
        else REDACTED,
        "unit": "kg REO" if LicenceKind(row.kind) in QUOTAS else "kg",
        "max_kg": row.max_kg,
        "drawn_kg": row.drawn_kg,
        "remaining_kg": EXACT.subtract(row.max_kg, row.drawn_kg),
        "draws": row.draws,
        "valid_from": row.valid_from,
        "valid_until": row.valid_until,
        "expired": row.valid_until < now,
        "issued_at": row.issued_at,
        "refused_attempts": dict(refused)
        if principal.role in SEES_REFUSALS or _party_to(row, principal)
        else REDACTED,
    }
    if export:
        consignee = _code(parties, row.consignee_id) if row.consignee_id else None
        body |= {
            "items": json.loads(row.items),
            "destination_country": row.destination_country,
            "consignee": consignee if sees else REDACTED,
            "end_user": row.end_user if sees else REDACTED,
            "end_use": row.end_use if sees else REDACTED,
            "contract": row.contract if sees else REDACTED,
        }
    return cast(LicenceSummary, plain(body))


def _draw(
    ledger: Ledger, draw: Draw, position: int | None, principal: Principal, quota: bool
) -> DrawView:
    return cast(
        DrawView,
        plain(
            {
                "version": draw.version,
                "position": position,
                "kind": draw.kind,
                "cause": draw.cause,
                "batch": _batch(ledger, draw.batch_id, principal, quota),
                "batch_id": draw.batch_id,
                "kg": draw.kg,
                "occurred_at": draw.occurred_at,
                "month": draw.month,
                "corrects_version": draw.corrects_version,
            }
        ),
    )


def _batch(ledger: Ledger, id: UUID, principal: Principal, quota: bool) -> Any:
    """ACTOR/LOT of the batch drawn for, to whoever may see it: the batch's parties and
    overseers, and for a quota anyone when it is an origin lot (the mine's ore lot is
    provenance; an exported one would tell whose shipment it was). None when the id is
    not a batch (a separation names its transformation's record)."""
    try:
        batch = ledger.batch(str(id))
    except NotFound:
        return None
    if (quota and batch.origin) or batches.sees(batch, principal):
        return batch.reference
    return REDACTED


def listed_openly(row: LicenceRow, principal: Principal) -> bool:
    """Whether a list shows this licence's number and holder to the caller."""
    return row.kind == MINING or principal.sees_commercial(row.holder_id, row.consignee_id)


def _party_to(row: LicenceRow, principal: Principal) -> bool:
    return principal.actor is not None and principal.actor in (row.holder_id, row.consignee_id)


def _code(parties: dict[UUID, Party], id: UUID | None) -> str | None:
    if id is None:
        return None
    party = parties.get(id)
    return party.code if party else str(id)
