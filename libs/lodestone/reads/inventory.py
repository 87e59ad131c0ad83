"""Stock as a caller may see it: what each actor holds at each facility, by material and
by element, now or at a past moment, from the inventory read model.

Stock at a moment is by event time: the sum of every movement (a batch made, taken
from, sold, moved, shipped or received) that occurred by then, as reported and as
corrected since. Operators see their own stock only; analysts see stock by country and
material, with no actor or facility (a filter naming either is refused, so that it
cannot be probed); auditors, regulators and admins see everything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any, cast
from uuid import UUID

from lodestone.domain.access import Principal, Role
from lodestone.domain.refusals import Forbidden, InvalidInput, NotFound
from lodestone.domain.values import EXACT, ZERO, aware
from lodestone.ledger import Ledger
from lodestone.projections.inventory import Holding, InventoryView, Place, stock
from lodestone.reads.json import plain
from lodestone.reads.types import Inventory, PartyRef, StockLine

#: A view caught up with every event recorded so far (the gateway's ``fresh``).
InventorySource = Callable[[], InventoryView]


def inventory(
    ledger: Ledger,
    view: InventorySource,
    principal: Principal,
    *,
    actor: str | None = None,
    facility: str | None = None,
    at: datetime | None = None,
) -> Inventory:
    if at is not None:
        aware(at, "at")
    aggregated = principal.role is Role.ANALYST
    if aggregated:
        for field, value in (("actor", actor), ("facility", facility)):
            if value is not None:
                raise Forbidden(
                    field,
                    "aggregate-only",
                    "analysts see stock by country and material, not by actor or facility",
                )
    actor_id = _resolve(lambda: ledger.actor_by_code(actor).id, "actor") if actor else None
    facility_id = (
        _resolve(lambda: ledger.facility_by_code(facility).id, "facility") if facility else None
    )
    if principal.role is Role.OPERATOR:
        if actor_id is not None and actor_id != principal.actor:
            raise Forbidden("actor", "ownership", "operators see their own stock only")
        actor_id = principal.actor
    source = view()
    found = stock(source, at=at, actor_id=actor_id, facility_id=facility_id)
    places = source.places({id for h in found for id in (h.actor_id, h.facility_id) if id})
    lines = _by_country(found, places) if aggregated else _by_holder(found, places)
    return cast(
        Inventory,
        {
            "at": at.isoformat() if at is not None else None,
            "clock": "occurred",
            "grouping": "country" if aggregated else "holder",
            "lines": lines,
            "totals": _totals(found),
        },
    )


def _resolve(find: Callable[[], UUID], field: str) -> UUID:
    """The id a filter names; a refusal names the filter."""
    try:
        return find()
    except (NotFound, InvalidInput) as refused:
        raise type(refused)(field, refused.rule, refused.detail) from None


def _by_holder(found: Iterable[Holding], places: dict[UUID, Place]) -> list[StockLine]:
    lines = []
    for h in found:
        facility = places.get(h.facility_id) if h.facility_id else None
        line: dict[str, Any] = {
            "actor": _party(places, h.actor_id),
            "facility": _party(places, h.facility_id) if h.facility_id else None,
            "country": facility.country if facility else None,
            "in_transit": h.facility_id is None,
            "material": h.material,
            "kg": h.kg,
            "batches": h.batches,
            "elements": h.elements,
        }
        lines.append(cast(StockLine, plain(line)))
    lines.sort(key=lambda x: (x["actor"].get("code", ""), _code(x["facility"]), x["material"]))
    return lines


def _by_country(found: Iterable[Holding], places: dict[UUID, Place]) -> list[StockLine]:
    groups: dict[tuple[str | None, bool, str], list[Holding]] = {}
    for h in found:
        facility = places.get(h.facility_id) if h.facility_id else None
        country = facility.country if facility else None
        groups.setdefault((country, h.facility_id is None, h.material), []).append(h)
    lines = [
        cast(
            StockLine,
            plain(
                {
                    "country": country,
                    "in_transit": in_transit,
                    "material": material,
                    "kg": _sum(h.kg for h in holdings),
                    "batches": sum(h.batches for h in holdings),
                    "elements": _elements(holdings),
                }
            ),
        )
        for (country, in_transit, material), holdings in groups.items()
    ]
    lines.sort(key=lambda x: (x["country"] or "", x["in_transit"], x["material"]))
    return lines


def _party(places: dict[UUID, Place], id: UUID | None) -> PartyRef:
    place = places.get(id) if id else None
    if place is None:
        return {"code": str(id)}
    party: PartyRef = {"code": place.code, "name": place.name, "country": place.country}
    if place.kind == "facility":
        party["kind"] = place.facility_kind
    return party


def _code(party: PartyRef | None) -> str:
    return party.get("code", "") if party else ""


def _totals(found: list[Holding]) -> dict[str, Any]:
    by_material: dict[str, Decimal] = {}
    for h in found:
        by_material[h.material] = EXACT.add(by_material.get(h.material, ZERO), h.kg)
    return cast(
        dict[str, Any],
        plain(
            {
                "kg": _sum(h.kg for h in found),
                "by_material": dict(sorted(by_material.items())),
                "by_element": _elements(found),
            }
        ),
    )


def _elements(holdings: Iterable[Holding]) -> dict[str, Decimal]:
    total: dict[str, Decimal] = {}
    for h in holdings:
        for element, kg in h.elements.items():
            total[element] = EXACT.add(total.get(element, ZERO), kg)
    return dict(sorted(total.items()))


def _sum(values: Iterable[Decimal]) -> Decimal:
    total = ZERO
    for value in values:
        total = EXACT.add(total, value)
    return total
