"""Licences and quotas: issued, drawn, remaining, expiry, refused attempts; each draw
with its event, and quota use by month."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal, cast

from fastapi import APIRouter, Query

from lodestone.gateway.deps import PrincipalDep, RuntimeDep
from lodestone.gateway.problems import READ_ERRORS
from lodestone.projections.licences import LicencesView
from lodestone.reads import licences as reads
from lodestone.reads.types import LicenceDraws, LicenceList

router = APIRouter(prefix="/v1", tags=["licences"], responses=READ_ERRORS)

Kind = Literal["mining_quota", "separation_quota", "export_licence"]


@router.get(
    "/licences",
    summary="Licences and quotas: issued, drawn, remaining, expiry, refused attempts",
    response_model=LicenceList,
)
def list_licences(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    kind: Annotated[Kind | None, Query(description="Only licences of this kind")] = None,
    holder: Annotated[str | None, Query(description="Only licences this actor holds")] = None,
    expiring_before: Annotated[
        datetime | None,
        Query(description="Only those valid until before this moment (with a time zone)"),
    ] = None,
) -> LicenceList:
    """Quotas are counted in kg REO, export licences in kg of goods. ``refused_attempts``
    counts, per rule, the writes naming the licence that the ledger refused (an overdraw,
    an expired licence, a wrong consignee...): refusals are not events, so they are
    recorded beside the read models, never in the ledger.

    An export licence's holder, consignee, end user, end use and contract are shown to
    its holder, its consignee, auditors, regulators and admins only. A licence number
    identifies its holder as its name does: an export licence or a separation quota is
    listed to others without its id, number and holder (a mining quota's holder is a
    mine, provenance open to all); a ``holder`` filter matches only licences listed with
    their holder. Refused attempts are shown to the licence's parties, analysts,
    auditors, regulators and admins."""
    return reads.licences(
        _view(runtime),
        runtime.refusals,
        principal,
        now=datetime.now(UTC),
        kind=kind,
        holder=holder,
        expiring_before=expiring_before,
    )


@router.get(
    "/licences/{number}/draws",
    summary="Each draw of a licence or quota with its event, and use by month",
    response_model=LicenceDraws,
)
def licence_draws(number: str, runtime: RuntimeDep, principal: PrincipalDep) -> LicenceDraws:
    """Each extraction, separation or shipment that drew the licence, and each
    correction of a draw, with the licence's version and store position of its event,
    the batch, kg and when it happened; ``by_month`` sums them per month (UTC): quota
    use over time. A correction counts in the month of the draw it corrects.

    The shipments under an export licence are listed to its parties, analysts,
    auditors, regulators and admins; a batch's reference to whoever may see the batch."""
    return reads.draws(
        runtime.ledger,
        _view(runtime),
        runtime.rows,
        runtime.refusals,
        principal,
        number,
        now=datetime.now(UTC),
    )


def _view(runtime: RuntimeDep) -> reads.LicencesSource:
    return lambda: cast(LicencesView, runtime.fresh("licences"))
