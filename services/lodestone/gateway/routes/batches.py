"""Batches: current state from the event store; trace and provenance from the
genealogy read model. Any authenticated role may read; commercial details are shown
only to the parties, auditors, regulators and admins."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Query, Response

from lodestone.gateway.deps import PrincipalDep, RuntimeDep
from lodestone.gateway.problems import READ_ERRORS
from lodestone.reads import batches
from lodestone.reads.json import encoded
from lodestone.reads.types import BatchState, Provenance, Trace

router = APIRouter(prefix="/v1/batches", tags=["batches"], responses=READ_ERRORS)


def _json(answer: object) -> Response:
    # Traces run to hundreds of KiB: written by orjson, not validated again on the way
    # out (the query layer's TypedDicts are checked by mypy; response_model documents).
    return Response(encoded(answer), media_type="application/json")


@router.get("", summary="Find a batch by its id", response_model=BatchState)
def find_batch(
    runtime: RuntimeDep, principal: PrincipalDep, id: UUID = Query(description="The batch id")
) -> BatchState:
    """Answers with the batch's state; its ``batch`` field (ACTOR/LOT) is the path to
    use for trace and provenance."""
    return batches.state_by_id(runtime.ledger, id, principal)


@router.get("/{actor}/{lot}", summary="Current state of a batch", response_model=BatchState)
def get_batch(actor: str, lot: str, runtime: RuntimeDep, principal: PrincipalDep) -> BatchState:
    """Material, masses, composition, status, place, custodian, parents, origin, export
    and quarantine, as the ledger holds them now."""
    return batches.state_by_ref(runtime.ledger, actor, lot, principal)


@router.get("/{actor}/{lot}/upstream", summary="Trace upstream to the mines", response_model=Trace)
def trace_upstream(actor: str, lot: str, runtime: RuntimeDep, principal: PrincipalDep) -> Response:
    """Every ancestor back to the mines (and recycling intakes), with the mass each step
    took from each input."""
    return _json(
        batches.trace(runtime.ledger, runtime.fresh_view, actor, lot, principal, "upstream")
    )


@router.get(
    "/{actor}/{lot}/downstream", summary="Trace downstream to the end clients", response_model=Trace
)
def trace_downstream(
    actor: str, lot: str, runtime: RuntimeDep, principal: PrincipalDep
) -> Response:
    """Every descendant, with sales, exports and receipts, to whoever holds the material now."""
    return _json(
        batches.trace(runtime.ledger, runtime.fresh_view, actor, lot, principal, "downstream")
    )


@router.get(
    "/{actor}/{lot}/provenance",
    summary="Provenance shares per element",
    response_model=Provenance,
)
def provenance(actor: str, lot: str, runtime: RuntimeDep, principal: PrincipalDep) -> Provenance:
    """For each rare earth in the batch, the share of each origin mine (with its quota
    and country) in its content, by mass balance through the whole genealogy."""
    return batches.provenance(runtime.ledger, runtime.fresh_view, actor, lot, principal)
