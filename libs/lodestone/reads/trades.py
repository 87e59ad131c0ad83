"""The trade ledger as a caller may see it: its lines, totals and the export dashboards,
from the trade-ledger read model.

Who sees what (issue 9):
- auditors, regulators and admins: every line, with client names, prices, contracts;
- an operator: only the lines where it is seller or client (buyer, consignee,
  receiver), with those counterparties; its totals and dashboards cover those lines;
- an analyst: no line at all (a line names its client), only totals and dashboards,
  in which a client is a pseudonym and which carry no price or contract. A filter that
  names a company (``client``, ``actor``) is refused rather than answered, so that
  counts cannot be probed company by company.

A pseudonym is the client's rank by the mass of every sale and export in the ledger
("client 1" bought the most), ties broken by its id: the same client has the same
pseudonym in every answer, whatever the answer's filters, until the ranking itself
changes. Totals and dashboards cover sales and exports unless asked otherwise (a
receipt is the other end of an export: counting both would count the goods twice).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, cast, get_args
from uuid import UUID

from lodestone.domain.access import SEES_ALL_COMMERCIAL, Principal, Role
from lodestone.domain.actors import country as country_code
from lodestone.domain.refusals import Forbidden, InvalidInput, NotFound
from lodestone.domain.values import (
    EXACT,
    KNOWN_ELEMENTS,
    ZERO,
    Material,
    one_of,
)
from lodestone.ledger import Ledger
from lodestone.projections.trades import Key, LineFilter, ListedLine, Party, Total, TradesView
from lodestone.reads.json import decimal_text
from lodestone.reads.types import (
    ExportDashboard,
    ExportFlow,
    TopClient,
    TopClients,
    TradeLine,
    TradeLines,
    TradeParty,
    TradeTotal,
    TradeTotals,
)

#: A view caught up with every event recorded so far: the gateway's ``fresh("trades")``.
ViewSource = Callable[[], TradesView]

KINDS = ("sale", "export", "receipt")
#: What totals and dashboards count unless asked: a receipt repeats its export.
TRADED = ("sale", "export")
MAX_LIMIT = 1000
MAX_CLIENTS = 100
#: The dashboard's elements, in the order the 2025 licensing rules list them.
DASHBOARD_ELEMENTS = ("Sm", "Gd", "Tb", "Dy", "Lu", "Sc", "Y")
MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
SHARE_PLACES = Decimal("0.000001")


@dataclass(frozen=True)
class TradeQuery:
    """What a caller asks for. ``actor``: the seller's (exporter's) code; ``client``:
    the buyer's, consignee's or receiver's; ``country``: the destination of exports
    and receipts; months are ``YYYY-MM``, both ends included; ``kinds``: none means
    every kind for lines, sales and exports for totals and dashboards."""

    actor: str | None = None
    client: str | None = None
    element: str | None = None
    material: str | None = None
    country: str | None = None
    from_month: str | None = None
    to_month: str | None = None
    kinds: tuple[str, ...] = ()


def sees_names(principal: Principal) -> bool:
    """Auditors, regulators and admins see every company; an operator its own lines'
    counterparties; an analyst none."""
    return principal.role in SEES_ALL_COMMERCIAL or principal.role is Role.OPERATOR


def lines(
    ledger: Ledger,
    view: ViewSource,
    principal: Principal,
    query: TradeQuery,
    limit: int = 100,
    offset: int = 0,
) -> TradeLines:
    """The lines ``query`` asks for that the caller may see, in the order they
    occurred, one page at a time."""
    if not sees_names(principal):
        raise Forbidden(
            "",
            "role",
            f"role {principal.role.value} sees trade totals and dashboards, not trade lines "
            "(each line names its client)",
        )
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput("limit", "range", f"give 1 to {MAX_LIMIT} lines per page")
    if offset < 0:
        raise InvalidInput("offset", "range", "an offset is 0 or more")
    where = _filter(ledger, principal, query, default_kinds=())
    source = view()
    found = source.lines(where, limit, offset)
    total = source.count(where)
    contents = source.contents((line.batch_id, line.version) for line in found)
    names = _Names(ledger, source, principal)
    names.load(i for line in found for i in (line.seller_id, line.client_id, line.licence_id) if i)
    after = offset + len(found)
    return {
        "lines": [
            _line(line, contents.get((line.batch_id, line.version), {}), names) for line in found
        ],
        "total": total,
        "offset": offset,
        "limit": limit,
        "next_offset": after if after < total else None,
    }


def totals(
    ledger: Ledger, view: ViewSource, principal: Principal, by: Key, query: TradeQuery
) -> TradeTotals:
    """The lines ``query`` asks for, summed per month, client, destination country or
    element: goods mass and number of lines, and with an element (grouped by or
    filtered on) its content in kg."""
    if by not in get_args(Key):
        raise InvalidInput("by", "one-of", f"total by {', '.join(get_args(Key))}")
    where = _filter(ledger, principal, query, default_kinds=TRADED)
    source = view()
    names = _Names(ledger, source, principal)
    groups = source.totals(where, (by,))
    names.load(t.client_id for t in groups if t.client_id)
    rows = [_total(t, by, names) for t in _ordered(groups, by, names)]
    grand = source.totals(where, ())
    answer: TradeTotals = {
        "by": by,
        "kinds": list(where.kinds),
        "element": query.element,
        "kg": _text(grand[0].kg) if grand else "0",
        "lines": grand[0].lines if grand else 0,
        "totals": rows,
    }
    if query.element:
        answer["element_kg"] = _text(grand[0].element_kg) if grand else "0"
    return answer


def export_dashboard(
    ledger: Ledger, view: ViewSource, principal: Principal, query: TradeQuery
) -> ExportDashboard:
    """Exports of each controlled element (kg of element content) and of magnets (kg
    of magnets) by destination country and month. Only the period (``from_month``,
    ``to_month``) and ``country`` of ``query`` apply."""
    period = TradeQuery(
        country=query.country,
        from_month=query.from_month,
        to_month=query.to_month,
        kinds=("export",),
    )
    source = view()
    where = _filter(ledger, principal, period, default_kinds=())
    controlled = replace(where, elements=DASHBOARD_ELEMENTS)
    magnets = replace(where, material=Material.MAGNET.value)
    elements: dict[str, list[ExportFlow]] = {e: [] for e in DASHBOARD_ELEMENTS}
    element_kg: dict[str, Decimal] = dict.fromkeys(DASHBOARD_ELEMENTS, ZERO)
    for t in source.totals(controlled, ("element", "destination", "month")):
        if t.element is None or t.element_kg is None:
            continue  # grouped by element: every total has both
        elements[t.element].append(_flow(t, t.element_kg))
        element_kg[t.element] = EXACT.add(element_kg[t.element], t.element_kg)
    flows = [_flow(t, t.kg) for t in source.totals(magnets, ("destination", "month"))]
    for found in (*elements.values(), flows):
        found.sort(key=lambda f: (f["month"] or "", f["destination_country"] or ""))
    return {
        "elements": elements,
        "element_kg": {e: _text(kg) for e, kg in element_kg.items()},
        "magnets": flows,
        "magnets_kg": _text(sum((Decimal(f["kg"]) for f in flows), ZERO)),
    }


def top_clients(
    ledger: Ledger, view: ViewSource, principal: Principal, query: TradeQuery, limit: int = 10
) -> TopClients:
    """The clients that bought the most, by goods mass, or with an element by its
    content, each with its share of the whole answer's scope."""
    if not 1 <= limit <= MAX_CLIENTS:
        raise InvalidInput("limit", "range", f"give 1 to {MAX_CLIENTS} clients")
    where = _filter(ledger, principal, query, default_kinds=TRADED)
    source = view()
    names = _Names(ledger, source, principal)
    groups = [t for t in source.totals(where, ("client",)) if t.client_id]

    def measure(t: Total) -> Decimal:
        return (t.element_kg or ZERO) if query.element else t.kg

    whole = sum((measure(t) for t in groups), ZERO)
    ranked = sorted(groups, key=lambda t: (-measure(t), names.order(t.client_id)))[:limit]
    names.load(t.client_id for t in ranked if t.client_id)
    clients: list[TopClient] = []
    for rank, t in enumerate(ranked, 1):
        entry: TopClient = {
            "rank": rank,
            "client": names.client(t.client_id),
            "kg": _text(t.kg),
            "lines": t.lines,
            "share": _text((measure(t) / whole).quantize(SHARE_PLACES) if whole else ZERO),
        }
        if query.element:
            entry["element_kg"] = _text(t.element_kg)
        clients.append(entry)
    return {"kinds": list(where.kinds), "element": query.element, "clients": clients}


# --- what the caller asked, checked and scoped -----------------------------------------------


def _filter(
    ledger: Ledger, principal: Principal, query: TradeQuery, default_kinds: tuple[str, ...]
) -> LineFilter:
    """The lines ``query`` asks for that ``principal`` may have counted: refusals name
    the parameter and the rule."""
    if not sees_names(principal):
        # Refused before anything is looked up: whether the company exists, and what
        # it traded, is exactly what the caller may not learn.
        for field, value in (("client", query.client), ("actor", query.actor)):
            if value is not None:
                raise Forbidden(
                    field,
                    f"{field}-names",
                    f"role {principal.role.value} may not name a company: its answers are "
                    "aggregated over every client",
                )
    for kind in query.kinds:
        if kind not in KINDS:
            raise InvalidInput("kind", "one-of", f"{kind!r} is not one of {', '.join(KINDS)}")
    if query.element is not None and query.element not in KNOWN_ELEMENTS:
        raise InvalidInput(
            "element", "element-symbol", f"{query.element!r} is not a known element symbol"
        )
    if query.material is not None:
        one_of(Material, query.material, "material", "material", what="material")
    if query.country is not None:
        country_code(query.country, "country")
    for field, month in (("from", query.from_month), ("to", query.to_month)):
        if month is not None and not MONTH.match(month):
            raise InvalidInput(field, "month", f"{month!r} is not a month: give YYYY-MM")
    if query.from_month and query.to_month and query.from_month > query.to_month:
        raise InvalidInput("to", "period", "the period ends before it begins")
    party = None
    if principal.role is Role.OPERATOR:
        if principal.actor is None:
            raise Forbidden("", "ownership", "this operator key speaks for no actor")
        party = principal.actor
    return LineFilter(
        kinds=tuple(dict.fromkeys(query.kinds)) or default_kinds,
        seller=_actor(ledger, query.actor, "actor"),
        client=_actor(ledger, query.client, "client"),
        party=party,
        elements=(query.element,) if query.element else (),
        material=query.material,
        country=query.country,
        from_month=query.from_month,
        to_month=query.to_month,
    )


def _actor(ledger: Ledger, code: str | None, field: str) -> UUID | None:
    if code is None:
        return None
    try:
        found: UUID = ledger.actor_by_code(code).id
    except (NotFound, InvalidInput) as refusal:
        raise refusal.at(field) from None
    return found


# --- presenting -------------------------------------------------------------------------------


class _Names:
    """Who the ids of an answer are, as the caller may see them: parties and licences
    from the read model (the ledger for any it has not projected yet); for a caller
    who may not see companies, clients as their pseudonyms."""

    def __init__(self, ledger: Ledger, view: TradesView, principal: Principal) -> None:
        self._ledger = ledger
        self._view = view
        self._named = sees_names(principal)
        self._parties: dict[UUID, Party] = {}
        self._ranks: dict[UUID, int] | None = None

    def load(self, ids: Iterable[UUID]) -> None:
        wanted = set(ids) - self._parties.keys()
        if self._named and wanted:
            self._parties.update(self._view.parties(wanted))

    def party(self, id: UUID | None) -> TradeParty | None:
        """A seller or client, for a caller who sees companies (lines are for no one else)."""
        if id is None or not self._named:
            return None
        found = self._parties.get(id)
        if found is None:
            try:
                actor = self._ledger.actor(id)
            except NotFound:
                return None
            return {"code": actor.code, "name": actor.name, "country": actor.country}
        return {"code": found.code, "name": found.name, "country": found.country or None}

    def client(self, id: UUID | None) -> TradeParty | None:
        """A client in a total: named, or as its pseudonym."""
        if id is not None and not self._named:
            return {"pseudonym": f"client {self._rank(id)}"}
        return self.party(id)

    def licence(self, id: UUID | None) -> str | None:
        if id is None:
            return None
        found = self._parties.get(id)
        return found.code if found else self._ledger.licence(id).number

    def order(self, id: UUID | None) -> tuple[int, str]:
        """How two clients with the same figures are ordered: by pseudonym for those
        who see pseudonyms (so the order tells nothing more), else by code."""
        if id is None:
            return (0, "")
        if not self._named:
            return (self._rank(id), "")
        return (0, (self.party(id) or {}).get("code", str(id)))

    def _rank(self, id: UUID) -> int:
        if self._ranks is None:
            self._ranks = _ranks(self._view)
        if id not in self._ranks:
            self._ranks[id] = len(self._ranks) + 1
        return self._ranks[id]


def _ranks(view: TradesView) -> dict[UUID, int]:
    """Every client's rank by the mass of all its purchases and imports (ties by id);
    clients with receipts only come after."""
    traded = {t.client_id: t.kg for t in view.totals(LineFilter(kinds=TRADED), ("client",))}
    every = {t.client_id for t in view.totals(LineFilter(), ("client",))}
    ordered = sorted(
        (i for i in every | traded.keys() if i is not None),
        key=lambda i: (-traded.get(i, ZERO), str(i)),
    )
    return {id: rank for rank, id in enumerate(ordered, 1)}


def _line(line: ListedLine, contents: Mapping[str, Decimal], names: _Names) -> TradeLine:
    kg = line.kg or ZERO
    return {
        "batch": line.reference,
        "batch_id": str(line.batch_id),
        "version": line.version,
        "kind": line.kind or "",
        "occurred_at": line.occurred_at.isoformat() if line.occurred_at else None,
        "month": line.month,
        "material": line.material,
        "kg": _text(kg),
        "elements": {e: _text(m) for e, m in sorted(contents.items())},
        "seller": names.party(line.seller_id),
        "client": names.party(line.client_id),
        "end_user": line.end_user,
        "price": _text(line.price) if line.price is not None else None,
        "currency": line.currency,
        "contract": line.contract,
        "destination_country": line.destination_country,
        "customs_code": line.customs_code,
        "licence": names.licence(line.licence_id),
        "shipment": line.shipment,
        "controlled": None if line.controlled is None else bool(line.controlled),
        "corrected_by_version": line.corrected_by,
    }


def _ordered(groups: Sequence[Total], by: Key, names: _Names) -> list[Total]:
    if by == "month":
        return sorted(groups, key=lambda t: t.month or "")
    if by == "element":
        return sorted(groups, key=lambda t: (-(t.element_kg or ZERO), t.element or ""))
    if by == "client":
        return sorted(groups, key=lambda t: (-t.kg, names.order(t.client_id)))
    return sorted(groups, key=lambda t: (-t.kg, t.destination_country or ""))


def _total(t: Total, by: Key, names: _Names) -> TradeTotal:
    row: dict[str, Any] = {}
    if by == "month":
        row["month"] = t.month
    elif by == "client":
        row["client"] = names.client(t.client_id)
    elif by == "destination":
        row["destination_country"] = t.destination_country
    else:
        row["element"] = t.element
    row |= {"kg": _text(t.kg), "lines": t.lines}
    if t.element_kg is not None:
        row["element_kg"] = _text(t.element_kg)
    return cast(TradeTotal, row)


def _flow(t: Total, kg: Decimal) -> ExportFlow:
    return {
        "destination_country": t.destination_country,
        "month": t.month,
        "kg": _text(kg),
        "lines": t.lines,
    }


def _text(value: Decimal | None) -> str:
    return decimal_text(value if value is not None else ZERO)
