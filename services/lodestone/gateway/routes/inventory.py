"""Stock: what each actor holds at each facility, by material and element, now or at a
past moment."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, cast

from fastapi import APIRouter, Query

from lodestone.gateway.deps import PrincipalDep, RuntimeDep
from lodestone.gateway.problems import READ_ERRORS
from lodestone.projections.inventory import InventoryView
from lodestone.reads import inventory as reads
from lodestone.reads.types import Inventory

router = APIRouter(prefix="/v1", tags=["inventory"], responses=READ_ERRORS)


@router.get(
    "/inventory",
    summary="Stock by holder, facility, material and element, now or at a past moment",
    response_model=Inventory,
)
def get_inventory(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    actor: Annotated[str | None, Query(description="Only this actor's stock (its code)")] = None,
    facility: Annotated[
        str | None, Query(description="Only the stock at this facility (its code)")
    ] = None,
    at: Annotated[
        datetime | None,
        Query(description="Event time, with a time zone: the stock as it was at this moment"),
    ] = None,
) -> Inventory:
    """Each line is what one actor holds at one facility of one material: kg, how many
    batches, and kg of each element (mass x mass fraction). Material in transit on an
    export shipment is its exporter's, at no facility. Without ``at``: now. With ``at``:
    by event time, the sum of every movement (a batch made, taken from, sold, moved,
    shipped or received) that occurred by then, as reported and as corrected since.

    Operators see their own stock only; analysts see stock by country and material
    (``actor`` and ``facility`` are refused: 403, rule ``aggregate-only``); auditors,
    regulators and admins see everything."""
    return reads.inventory(
        runtime.ledger,
        lambda: cast(InventoryView, runtime.fresh("inventory")),
        principal,
        actor=actor,
        facility=facility,
        at=at,
    )
