"""The monthly declaration of a reporting actor, as the 2025 rules and the quota rules ask
(flow reports for a month are due by the 10th of the next): production by material
and element, purchases by supplier, sales by client with volumes, exports by
destination and licence (controlled and uncontrolled goods apart), stock at the
month's end and quota drawn; and, for regulators, which actors had no activity in a
month.

Built from the read models, each through its view:

- production: the genealogy's batches the actor made in the month (``created_by``),
  less those split off or merged from its own batches (a split makes no material:
  ``inputs`` tells them apart);
- purchases, sales and exports: the trade ledger's lines of the month where the actor
  is seller or client (element content: mass x the batch's composition);
- stock: the inventory at the month's end, by event time;
- quota: the licences read model's draws of the licences the actor holds.

Every figure is by event time (when the step happened, as reported and as corrected),
in UTC months, exactly (decimals as strings). A month is ``YYYY-MM``, not after the
current one.

Activity in a month (``reported``, and the regulators' list of actors without any):
the actor made a batch (a split or merge counts, though it produces nothing), sold,
bought, exported or received goods. Stock carried over is not activity; nor is a draw
of its licences on its own, since only the holder's own extraction, separation or
export draws a licence.

Who sees what: a declaration names clients, suppliers, consignees and prices, so an
operator sees its own only, auditors, regulators and admins every actor's, analysts
none; the list of actors is the overseers'.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, cast
from uuid import UUID

from lodestone.domain import ids
from lodestone.domain.access import SEES_ALL_COMMERCIAL, Principal, Role
from lodestone.domain.licences import QUOTAS, LicenceKind
from lodestone.domain.refusals import Forbidden, InvalidInput, NotFound
from lodestone.domain.values import EXACT, ZERO, element_masses
from lodestone.ledger import Ledger, handlers
from lodestone.projections.genealogy import BatchRow, GenealogyView
from lodestone.projections.inventory import InventoryView, stock
from lodestone.projections.licences import LicencesView
from lodestone.projections.trades import LineFilter, ListedLine, TradesView
from lodestone.reads.json import plain
from lodestone.reads.types import (
    Declaration,
    DeclarationIndex,
    DeclarationStatus,
    DeclaredExports,
    DeclaredParty,
    ExportLine,
    HeldLine,
    ProducedLine,
    QuotaLine,
    TradedLine,
)

MONTH = re.compile(r"\A(\d{4})-(0[1-9]|1[0-2])\Z")
#: The day of the next month by which a month's flow report is due.
DUE_DAY = 10
#: Trade lines read per query while a declaration is summed.
PAGE = 1000
#: Batches made by these operations are taken from the actor's own batches: not production.
NOT_PRODUCTION = frozenset({"split", "merge"})
OVERSEERS = SEES_ALL_COMMERCIAL


@dataclass(frozen=True)
class Sources:
    """The read models a declaration is built from, each caught up when called (the
    gateway's ``fresh``)."""

    genealogy: Callable[[], GenealogyView]
    trades: Callable[[], TradesView]
    inventory: Callable[[], InventoryView]
    licences: Callable[[], LicencesView]


@dataclass(frozen=True)
class Month:
    """A calendar month in UTC: ``name`` is ``YYYY-MM``."""

    name: str
    starts_at: datetime
    ends_before: datetime

    @property
    def due_by(self) -> str:
        return self.ends_before.replace(day=DUE_DAY).date().isoformat()


def month(value: str, now: datetime, field: str = "month") -> Month:
    """``YYYY-MM`` as a month, refused naming ``field`` unless it is one and not after
    the month of ``now``."""
    found = MONTH.match(value)
    if not found or int(found.group(1)) < 1:
        raise InvalidInput(field, "month", f"{value!r} is not a month: give YYYY-MM")
    year, number = int(found.group(1)), int(found.group(2))
    starts = datetime(year, number, 1, tzinfo=UTC)
    if starts > now:
        raise InvalidInput(
            field, "not-in-future", f"{value} has not begun: a declaration covers a past month"
        )
    ends = (
        datetime(year + 1, 1, 1, tzinfo=UTC) if number == 12 else starts.replace(month=number + 1)
    )
    return Month(value, starts, ends)


def declaration(
    ledger: Ledger,
    sources: Sources,
    principal: Principal,
    actor: str,
    month_name: str,
    *,
    now: datetime,
) -> Declaration:
    """The declaration of actor ``actor`` (its code) for ``month_name`` (YYYY-MM)."""
    _may_read_declarations(principal)
    period = month(month_name, now)
    actor_id = ids.actor_id(handlers.code(actor, "actor"))
    if principal.role is Role.OPERATOR and principal.actor != actor_id:
        # Asked before the code is looked up: whether another company exists is not
        # the operator's to learn here.
        raise Forbidden("actor", "ownership", "an operator sees its own declarations only")
    try:
        found = ledger.actor(actor_id)
    except NotFound:
        raise NotFound("", "exists", f"actor {actor} is not registered") from None

    genealogy = sources.genealogy()
    made = [
        b
        for b in genealogy.created_by(actor_id, period.starts_at, period.ends_before)
        if b.status != "void"  # corrected as never having happened
    ]
    production = _production(genealogy, made)
    purchases, sales, exports = _trades(sources.trades(), actor_id, period)
    held = _stock(sources.inventory(), actor_id, period)
    quota = _quota(sources.licences(), actor_id, period)
    reported = bool(made or purchases or sales or _exported(exports))
    return {
        "actor": {"code": found.code, "name": found.name, "country": found.country},
        "roles": list(found.roles),
        "month": period.name,
        "period": {
            "starts_at": period.starts_at.isoformat(),
            "ends_before": period.ends_before.isoformat(),
        },
        "due_by": period.due_by,
        "provisional": now < period.ends_before,
        "clock": "occurred",
        "reported": reported,
        "production": production,
        "purchases": purchases,
        "sales": sales,
        "exports": exports,
        "stock": held,
        "quota": quota,
        "totals": {
            "produced_kg": _total(line["kg"] for line in production),
            "purchased_kg": _total(line["kg"] for line in purchases),
            "sold_kg": _total(line["kg"] for line in sales),
            "exported_kg": _total([exports["controlled_kg"], exports["uncontrolled_kg"]]),
            "stock_kg": _total(line["kg"] for line in held),
        },
    }


def index(
    ledger: Ledger,
    sources: Sources,
    principal: Principal,
    month_name: str,
    *,
    missing: bool,
    now: datetime,
) -> DeclarationIndex:
    """Every registered actor with whether it had any activity in the month; with
    ``missing`` only those that had none (whose declaration is still empty)."""
    if principal.role not in OVERSEERS:
        raise Forbidden(
            "",
            "role",
            f"role {principal.role.value} may not list declarations "
            "(auditor, regulator and admin may)",
        )
    period = month(month_name, now)
    genealogy = sources.genealogy()
    active = {
        b.reporter_id
        for b in genealogy.created_by(None, period.starts_at, period.ends_before)
        if b.status != "void"
    }
    active |= sources.trades().traders(period.name)
    statuses: list[DeclarationStatus] = []
    for name in genealogy.actors():
        reported = name.id in active
        if missing and reported:
            continue
        statuses.append(
            {
                "actor": {"code": name.code, "name": name.name, "country": name.country or None},
                "roles": _roles(ledger, name.id),
                "reported": reported,
            }
        )
    due = datetime.fromisoformat(period.due_by).replace(tzinfo=UTC) + timedelta(days=1)
    return {
        "month": period.name,
        "due_by": period.due_by,
        "overdue": now >= due,
        "missing": missing,
        "actors": statuses,
    }


def _may_read_declarations(principal: Principal) -> None:
    if principal.role in OVERSEERS:
        return
    if principal.role is Role.OPERATOR:
        if principal.actor is None:
            raise Forbidden("", "ownership", "this operator key speaks for no actor")
        return
    raise Forbidden(
        "",
        "role",
        f"role {principal.role.value} may not read declarations: they name clients "
        "(operators read their own; auditors, regulators and admins every actor's)",
    )


def _roles(ledger: Ledger, id: UUID) -> list[str]:
    try:
        return list(ledger.actor(id).roles)
    except NotFound:  # projected from an event the ledger no longer finds: none known
        return []


# --- production ---------------------------------------------------------------------------


def _production(genealogy: GenealogyView, made: list[BatchRow]) -> list[ProducedLine]:
    how: dict[UUID, str] = {}
    for edge in genealogy.inputs(b.id for b in made):
        how.setdefault(edge.child_id, edge.operation)
    groups: dict[tuple[str, str], _Sum] = {}
    for batch in made:
        process = batch.origin_kind or how.get(batch.id) or "produced"
        if process in NOT_PRODUCTION or batch.initial_kg is None:
            continue
        group = groups.setdefault((process, batch.material or ""), _Sum())
        group.add(batch.initial_kg, batch.composition or {})
    return [
        cast(
            ProducedLine,
            {"process": process, "material": material, **group.plain(count="batches")},
        )
        for (process, material), group in sorted(groups.items())
    ]


# --- purchases, sales and exports ---------------------------------------------------------


def _trades(
    view: TradesView, actor_id: UUID, period: Month
) -> tuple[list[TradedLine], list[TradedLine], DeclaredExports]:
    lines = _lines(view, LineFilter(party=actor_id, from_month=period.name, to_month=period.name))
    contents = view.contents((line.batch_id, line.version) for line in lines)
    parties = view.parties(
        {i for line in lines for i in (line.seller_id, line.client_id, line.licence_id) if i}
    )

    def party(id: UUID | None) -> DeclaredParty | None:
        found = parties.get(id) if id else None
        if found is None:
            return None if id is None else {"code": str(id), "name": "", "country": None}
        return {"code": found.code, "name": found.name, "country": found.country or None}

    def licence(id: UUID | None) -> str | None:
        found = parties.get(id) if id else None
        return found.code if found else (str(id) if id else None)

    bought: dict[tuple[Any, ...], _Sum] = {}
    sold: dict[tuple[Any, ...], _Sum] = {}
    shipped: dict[tuple[Any, ...], _Sum] = {}
    for line in lines:
        content = contents.get((line.batch_id, line.version), {})
        kg = line.kg or ZERO
        material = line.material or ""
        # Lines without a price are summed apart from priced ones, by currency.
        priced = (line.currency, line.price is not None)
        key: tuple[Any, ...]
        if line.client_id == actor_id and line.kind in ("sale", "receipt"):
            key = (line.seller_id, line.kind, material, *priced)
            bought.setdefault(key, _Sum()).add_masses(kg, content, line.price)
        if line.seller_id == actor_id and line.kind == "sale":
            key = (line.client_id, "sale", material, *priced)
            sold.setdefault(key, _Sum()).add_masses(kg, content, line.price)
        if line.seller_id == actor_id and line.kind == "export":
            key = (
                bool(line.controlled),
                line.destination_country,
                line.licence_id,
                line.client_id,
                line.end_user,
                material,
                line.customs_code,
            )
            shipped.setdefault(key, _Sum()).add_masses(kg, content, shipment=line.shipment)

    def traded(groups: dict[tuple[Any, ...], _Sum]) -> list[TradedLine]:
        rows: list[TradedLine] = []
        for (counterparty, kind, material, currency, _), group in groups.items():
            figures = group.plain(count="lines")
            rows.append(
                cast(
                    TradedLine,
                    {
                        "counterparty": party(counterparty),
                        "kind": kind,
                        "material": material,
                        "kg": figures["kg"],
                        "lines": figures["lines"],
                        "elements": figures["elements"],
                        "currency": currency,
                        "value": figures["value"],  # null: no line of it was priced
                    },
                )
            )
        rows.sort(key=_traded_order)
        return rows

    exports: dict[bool, list[ExportLine]] = {True: [], False: []}
    for (
        controlled,
        country,
        licence_id,
        client,
        end_user,
        material,
        code,
    ), group in shipped.items():
        figures = group.plain(count="lines")
        exports[controlled].append(
            {
                "destination_country": country,
                "licence": licence(licence_id),
                "consignee": party(client),
                "end_user": end_user,
                "material": material,
                "customs_code": code,
                "kg": figures["kg"],
                "lines": figures["lines"],
                "shipments": figures["shipments"],
                "elements": figures["elements"],
            }
        )
    for found in exports.values():
        found.sort(key=_export_order)
    return (
        traded(bought),
        traded(sold),
        {
            "controlled": exports[True],
            "uncontrolled": exports[False],
            "controlled_kg": _total(line["kg"] for line in exports[True]),
            "uncontrolled_kg": _total(line["kg"] for line in exports[False]),
        },
    )


def _lines(view: TradesView, where: LineFilter) -> list[ListedLine]:
    found: list[ListedLine] = []
    while True:
        page = view.lines(where, PAGE, len(found))
        found += page
        if len(page) < PAGE:
            return found


def _traded_order(line: TradedLine) -> tuple[str, str, str, str]:
    party = line["counterparty"]
    return (party["code"] if party else "", line["kind"], line["material"], line["currency"] or "")


def _export_order(line: ExportLine) -> tuple[str, ...]:
    consignee = line["consignee"]
    return (
        line["destination_country"] or "",
        line["licence"] or "",
        consignee["code"] if consignee else "",
        line["material"],
        line["customs_code"] or "",
        line["end_user"] or "",
    )


def _exported(exports: DeclaredExports) -> bool:
    return bool(exports["controlled"] or exports["uncontrolled"])


# --- stock --------------------------------------------------------------------------------


def _stock(view: InventoryView, actor_id: UUID, period: Month) -> list[HeldLine]:
    # The inventory counts movements at or before ``at``; the month's last microsecond
    # (the finest time Lodestone keeps) leaves out what happened from the next month's
    # first instant on, as the trade lines' months do.
    at = period.ends_before - timedelta(microseconds=1)
    found = stock(view, at=at, actor_id=actor_id)
    places = view.places({h.facility_id for h in found if h.facility_id})
    lines: list[HeldLine] = []
    for h in found:
        place = places.get(h.facility_id) if h.facility_id else None
        facility: DeclaredParty | None = None
        if h.facility_id is not None:
            facility = (
                {"code": place.code, "name": place.name, "country": place.country or None}
                if place
                else {"code": str(h.facility_id), "name": "", "country": None}
            )
        lines.append(
            cast(
                HeldLine,
                plain(
                    {
                        "facility": facility,
                        "in_transit": h.facility_id is None,
                        "material": h.material,
                        "kg": h.kg,
                        "batches": h.batches,
                        "elements": h.elements,
                    }
                ),
            )
        )
    lines.sort(
        key=lambda x: (
            x["in_transit"],
            x["facility"]["code"] if x["facility"] else "",
            x["material"],
        )
    )
    return lines


# --- quota --------------------------------------------------------------------------------


def _quota(view: LicencesView, actor_id: UUID, period: Month) -> list[QuotaLine]:
    """Every licence the actor holds that was valid in the month or counted a draw in
    it."""
    held = [row for row in view.licences() if row.holder_id == actor_id]
    draws = view.draws_of(row.id for row in held)
    in_month: dict[UUID, list[Decimal]] = {}
    to_date: dict[UUID, Decimal] = {}
    for draw in draws:
        if draw.month == period.name:
            in_month.setdefault(draw.licence_id, []).append(draw.kg)
        if draw.month <= period.name:
            to_date[draw.licence_id] = EXACT.add(to_date.get(draw.licence_id, ZERO), draw.kg)
    lines: list[QuotaLine] = []
    for row in held:
        valid = row.valid_from < period.ends_before and row.valid_until >= period.starts_at
        if not valid and row.id not in in_month:
            continue
        drawn_to_date = to_date.get(row.id, ZERO)
        lines.append(
            cast(
                QuotaLine,
                plain(
                    {
                        "licence": row.number,
                        "kind": row.kind,
                        "unit": "kg REO" if LicenceKind(row.kind) in QUOTAS else "kg",
                        "max_kg": row.max_kg,
                        "drawn_kg": _sum(in_month.get(row.id, [])),
                        "draws": len(in_month.get(row.id, [])),
                        "drawn_to_date_kg": drawn_to_date,
                        "remaining_kg": EXACT.subtract(row.max_kg, drawn_to_date),
                        "valid_from": row.valid_from,
                        "valid_until": row.valid_until,
                    }
                ),
            )
        )
    return lines


# --- sums ---------------------------------------------------------------------------------


class _Sum:
    """One group's figures, summed exactly: goods mass, element masses, how many
    lines (or batches), the sum of prices and the shipment numbers."""

    def __init__(self) -> None:
        self.kg = ZERO
        self.count = 0
        self.elements: dict[str, Decimal] = {}
        self.value: Decimal | None = None
        self.shipments: set[str] = set()

    def add(
        self,
        kg: Decimal,
        composition: dict[str, Decimal],
        price: Decimal | None = None,
        shipment: str | None = None,
    ) -> None:
        self.add_masses(kg, element_masses(kg, composition), price, shipment)

    def add_masses(
        self,
        kg: Decimal,
        elements: Mapping[str, Decimal],
        price: Decimal | None = None,
        shipment: str | None = None,
    ) -> None:
        """``add`` with the element masses given (a trade line's recorded content)."""
        self.kg = EXACT.add(self.kg, kg)
        self.count += 1
        for element, mass in elements.items():
            self.elements[element] = EXACT.add(self.elements.get(element, ZERO), mass)
        if price is not None:
            self.value = EXACT.add(self.value or ZERO, price)
        if shipment:
            self.shipments.add(shipment)

    def plain(self, count: str) -> dict[str, Any]:
        figures: dict[str, Any] = plain(
            {
                "kg": self.kg,
                count: self.count,
                "elements": dict(sorted(self.elements.items())),
                "value": self.value,
            }
        )
        figures["shipments"] = sorted(self.shipments)
        return figures


def _sum(values: Iterable[Decimal]) -> Decimal:
    total = ZERO
    for value in values:
        total = EXACT.add(total, value)
    return total


def _total(texts: Iterable[str]) -> str:
    return cast(str, plain(_sum(Decimal(text) for text in texts)))
