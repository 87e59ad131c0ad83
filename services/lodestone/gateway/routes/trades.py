"""The trade ledger: every sale, export and receipt with its seller, client, material,
mass, element content, price, contract, destination, customs code, licence and month;
totals; and the dashboards analysts watch.

Auditors, regulators and admins see every line with names, prices and contracts. An
operator sees only the lines where it is seller or client, and those counterparties.
Analysts see no line: totals and dashboards only, where clients are pseudonyms
("client 1" bought the most in the whole ledger) and no price or contract appears; a
filter naming a company (``client``, ``actor``) is refused with a 403 naming it."""

from __future__ import annotations

from typing import Annotated, Literal, cast

from fastapi import APIRouter, Depends, Query

from lodestone.gateway.deps import PrincipalDep, RuntimeDep
from lodestone.gateway.problems import READ_ERRORS
from lodestone.gateway.runtime import Runtime
from lodestone.projections.trades import NAME, Key, TradesView
from lodestone.reads import trades
from lodestone.reads.types import ExportDashboard, TopClients, TradeLines, TradeTotals

router = APIRouter(prefix="/v1", tags=["trades"], responses=READ_ERRORS)

Kind = Literal["sale", "export", "receipt"]
FromMonth = Annotated[
    str | None, Query(alias="from", description="First month, YYYY-MM (UTC)", examples=["2026-01"])
]
ToMonth = Annotated[
    str | None, Query(alias="to", description="Last month, YYYY-MM (UTC)", examples=["2026-12"])
]


def trade_query(
    actor: Annotated[
        str | None, Query(description="The seller's (exporter's) actor code; not for analysts")
    ] = None,
    client: Annotated[
        str | None,
        Query(description="The buyer's, consignee's or receiver's code; not for analysts"),
    ] = None,
    element: Annotated[
        str | None, Query(description="Lines whose batch carries this element", examples=["Dy"])
    ] = None,
    material: Annotated[str | None, Query(description="ore, oxide, metal, magnet...")] = None,
    country: Annotated[
        str | None, Query(description="Destination country of exports (ISO 3166-1 alpha-2)")
    ] = None,
    from_month: FromMonth = None,
    to_month: ToMonth = None,
    kind: Annotated[
        list[Kind] | None,
        Query(
            description="Repeatable; default: every kind for lines, sales and exports for totals"
        ),
    ] = None,
) -> trades.TradeQuery:
    return trades.TradeQuery(
        actor=actor,
        client=client,
        element=element,
        material=material,
        country=country,
        from_month=from_month,
        to_month=to_month,
        kinds=tuple(kind or ()),
    )


TradeQueryDep = Annotated[trades.TradeQuery, Depends(trade_query)]


def _fresh(runtime: Runtime) -> trades.ViewSource:
    return lambda: cast(TradesView, runtime.fresh(NAME))


@router.get("/trades", summary="Trade ledger lines", response_model=TradeLines)
def trade_lines(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    query: TradeQueryDep,
    limit: Annotated[int, Query(description="Lines per page, 1 to 1000")] = 100,
    offset: Annotated[int, Query(description="Lines to skip (the previous next_offset)")] = 0,
) -> TradeLines:
    """Sales, exports and receipts in the order they occurred, one page at a time, with
    the number of lines matching. Each line's ``elements`` is its mass times its batch's
    mass fraction of each element. Auditors, regulators and admins see every line; an
    operator the lines where it is seller or client; analysts none (403)."""
    return trades.lines(runtime.ledger, _fresh(runtime), principal, query, limit, offset)


@router.get("/trades/totals", summary="Trade totals", response_model=TradeTotals)
def trade_totals(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    query: TradeQueryDep,
    by: Annotated[Key, Query(description="Group by month, client, destination or element")],
) -> TradeTotals:
    """Goods mass and number of lines per group; with ``element`` (or by element) the
    element content in kg too. Sales and exports unless ``kind`` says otherwise. An
    analyst sees clients as pseudonyms, and may not name a client or actor."""
    return trades.totals(runtime.ledger, _fresh(runtime), principal, by, query)


@router.get(
    "/dashboards/exports",
    summary="Exports of controlled elements and magnets by destination and month",
    response_model=ExportDashboard,
)
def export_dashboard(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    from_month: FromMonth = None,
    to_month: ToMonth = None,
    country: Annotated[str | None, Query(description="One destination country")] = None,
) -> ExportDashboard:
    """For each element under the 2025 export licensing (Sm, Gd, Tb, Dy, Lu, Sc, Y),
    the kg of it exported per destination country and month; and the kg of magnets
    exported the same way. An operator's dashboard covers its own exports and imports."""
    query = trades.TradeQuery(country=country, from_month=from_month, to_month=to_month)
    return trades.export_dashboard(runtime.ledger, _fresh(runtime), principal, query)


@router.get("/dashboards/top-clients", summary="Top clients by volume", response_model=TopClients)
def top_clients(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    query: TradeQueryDep,
    limit: Annotated[int, Query(description="How many clients, 1 to 100")] = 10,
) -> TopClients:
    """Clients ranked by the goods mass they bought (with ``element``: by its content),
    each with its share of the answer's whole. Analysts see pseudonyms."""
    return trades.top_clients(runtime.ledger, _fresh(runtime), principal, query, limit)
