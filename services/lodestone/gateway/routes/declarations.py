"""Monthly declarations: per reporting actor and month, what the 2025 rules and the quota
rules ask to be reported by the 10th of the next month: production by material and
element, purchases by supplier, sales by client with volumes, exports by destination
and licence (controlled and uncontrolled goods apart), stock at the month's end and
quota drawn. As JSON, CSV, XLSX, HTML and PDF; and, for overseers, which actors had no
activity reported in a month.

A declaration names clients, suppliers and consignees: an operator reads its own only
(another actor's: 403 naming ``actor``); auditors, regulators and admins every actor's;
analysts none (403)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, cast

from fastapi import APIRouter, Query, Response
from fastapi.responses import HTMLResponse

from lodestone.audit import declarations as files
from lodestone.domain.access import Principal
from lodestone.gateway.deps import PrincipalDep, RuntimeDep
from lodestone.gateway.downloads import disposition
from lodestone.gateway.problems import READ_ERRORS
from lodestone.gateway.runtime import Runtime
from lodestone.projections.genealogy import GenealogyView
from lodestone.projections.inventory import InventoryView
from lodestone.projections.licences import LicencesView
from lodestone.projections.trades import TradesView
from lodestone.reads import declarations as reads
from lodestone.reads.types import Declaration, DeclarationIndex

router = APIRouter(prefix="/v1", tags=["declarations"], responses=READ_ERRORS)

Month = Annotated[str, Query(description="The month, YYYY-MM (UTC)", examples=["2026-03"])]


def _sources(runtime: Runtime) -> reads.Sources:
    return reads.Sources(
        genealogy=lambda: cast(GenealogyView, runtime.fresh("genealogy")),
        trades=lambda: cast(TradesView, runtime.fresh("trades")),
        inventory=lambda: cast(InventoryView, runtime.fresh("inventory")),
        licences=lambda: cast(LicencesView, runtime.fresh("licences")),
    )


def _declaration(runtime: Runtime, principal: Principal, actor: str, month: str) -> Declaration:
    return reads.declaration(
        runtime.ledger, _sources(runtime), principal, actor, month, now=datetime.now(UTC)
    )


def _file(body: bytes | str, media_type: str, actor: str, month: str, suffix: str) -> Response:
    name = f"lodestone-declaration-{actor}-{month}.{suffix}"
    kind = "inline" if suffix in ("html", "pdf") else "attachment"
    return Response(body, media_type=media_type, headers=disposition(kind, name))


@router.get(
    "/declarations",
    summary="Which actors had activity reported in a month (overseers)",
    response_model=DeclarationIndex,
)
def declaration_index(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    month: Month,
    missing: Annotated[
        bool, Query(description="Only the actors with no activity at all in the month")
    ] = False,
) -> DeclarationIndex:
    """Every registered actor, each with whether any activity of it was reported for
    the month: a batch made (extracted, collected, produced, split or merged), or goods
    sold, bought, exported or received. With
    ``missing=true`` only those with none, whose declaration is still empty. Months are
    UTC, by event time; ``overdue`` once the 10th of the next month has passed.
    Auditors, regulators and admins only."""
    return reads.index(
        runtime.ledger,
        _sources(runtime),
        principal,
        month,
        missing=missing,
        now=datetime.now(UTC),
    )


# The file routes come first: "{month}" alone would also match "2026-03.csv".


@router.get(
    "/declarations/{actor}/{month}.csv",
    summary="Monthly declaration (CSV, one file, a section column)",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
def declaration_csv(
    actor: str, month: str, runtime: RuntimeDep, principal: PrincipalDep
) -> Response:
    """The declaration's sections in one CSV with one header: each row starts with its
    ``section`` (declaration, production, purchases, sales, exports_controlled,
    exports_uncontrolled, stock, quota) and the header is the union of the sections'
    columns, empty where a section has none. Element content is in ``kg_<element>``
    columns; decimals are exact text."""
    body = files.to_csv(dict(_declaration(runtime, principal, actor, month)))
    return _file(body, "text/csv; charset=utf-8", actor, month, "csv")


@router.get(
    "/declarations/{actor}/{month}.xlsx",
    summary="Monthly declaration (XLSX, one sheet per section)",
    response_class=Response,
    responses={200: {"content": {files.XLSX: {}}}},
)
def declaration_xlsx(
    actor: str, month: str, runtime: RuntimeDep, principal: PrincipalDep
) -> Response:
    """One sheet per section. Masses are numbers wherever a spreadsheet number holds
    them exactly (15 significant digits); a decimal that would lose digits is its exact
    text, with a note on the cell."""
    body = files.to_xlsx(dict(_declaration(runtime, principal, actor, month)))
    return _file(body, files.XLSX, actor, month, "xlsx")


@router.get(
    "/declarations/{actor}/{month}.html",
    summary="Monthly declaration (HTML)",
    response_class=HTMLResponse,
)
def declaration_html(
    actor: str, month: str, runtime: RuntimeDep, principal: PrincipalDep
) -> HTMLResponse:
    """The declaration as one self-contained page, a table per section."""
    return HTMLResponse(files.html(dict(_declaration(runtime, principal, actor, month))))


@router.get(
    "/declarations/{actor}/{month}.pdf",
    summary="Monthly declaration (PDF, A4 landscape)",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
)
def declaration_pdf(
    actor: str, month: str, runtime: RuntimeDep, principal: PrincipalDep
) -> Response:
    """The HTML declaration laid out for print by WeasyPrint."""
    body = files.pdf(dict(_declaration(runtime, principal, actor, month)))
    return _file(body, "application/pdf", actor, month, "pdf")


@router.get(
    "/declarations/{actor}/{month}",
    summary="Monthly declaration of an actor (JSON)",
    response_model=Declaration,
)
def declaration_json(
    actor: str, month: str, runtime: RuntimeDep, principal: PrincipalDep
) -> Declaration:
    """Production by process, material and element (batches the actor made in the
    month; splits and merges of its own batches are not production); purchases by
    supplier and sales by client, each by material and currency, with goods mass,
    element content and the sum of contract prices; exports by destination, licence,
    consignee, material and customs code, controlled and uncontrolled goods apart, with
    their shipment numbers; stock held at the month's end (the next month's first
    instant, excluded) by facility, material and element; and each licence or quota it
    holds with what was drawn in the month, to date and what remains.

    ``month`` is YYYY-MM (UTC), not after the current month: anything else is refused
    naming ``month``. Every figure is by event time, as reported and corrected, exact
    (decimals as strings). Due by the 10th of the next month; ``provisional`` until the
    month ends."""
    return _declaration(runtime, principal, actor, month)
