"""Batches: current state from the event store; trace and provenance from the
genealogy read model. Any authenticated role may read; commercial details are shown
only to the parties, auditors, regulators and admins."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Query

from lodestone.domain.refusals import NotFound
from lodestone.gateway import presenters
from lodestone.gateway.deps import PrincipalDep, RuntimeDep
from lodestone.projections import genealogy

router = APIRouter(prefix="/v1/batches", tags=["batches"])


@router.get("", summary="Find a batch by its id")
def find_batch(
    runtime: RuntimeDep, principal: PrincipalDep, id: UUID = Query(description="The batch id")
) -> dict[str, Any]:
    """Answers with the batch's state; its ``batch`` field (ACTOR/LOT) is the path to
    use for trace and provenance."""
    return presenters.batch_state(runtime.ledger, runtime.ledger.batch(str(id)), principal)


@router.get("/{actor}/{lot}", summary="Current state of a batch")
def get_batch(actor: str, lot: str, runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    """Material, masses, composition, status, place, custodian, parents, origin, export
    and quarantine, as the ledger holds them now."""
    return presenters.batch_state(runtime.ledger, runtime.ledger.batch(f"{actor}/{lot}"), principal)


def _batch_id(runtime: RuntimeDep, actor: str, lot: str) -> UUID:
    batch_id = runtime.ledger.batch(f"{actor}/{lot}").id
    return batch_id


@router.get("/{actor}/{lot}/upstream", summary="Trace upstream to the mines")
def trace_upstream(
    actor: str, lot: str, runtime: RuntimeDep, principal: PrincipalDep
) -> dict[str, Any]:
    """Every ancestor back to the mines (and recycling intakes), with the mass each step
    took from each input."""
    batch_id = _batch_id(runtime, actor, lot)
    lineage = genealogy.upstream(runtime.fresh_view(), batch_id)
    _require_projected(lineage, actor, lot)
    return presenters.lineage(lineage, principal, "upstream")


@router.get("/{actor}/{lot}/downstream", summary="Trace downstream to the end clients")
def trace_downstream(
    actor: str, lot: str, runtime: RuntimeDep, principal: PrincipalDep
) -> dict[str, Any]:
    """Every descendant, with sales, exports and receipts, to whoever holds the material now."""
    batch_id = _batch_id(runtime, actor, lot)
    lineage = genealogy.downstream(runtime.fresh_view(), batch_id)
    _require_projected(lineage, actor, lot)
    return presenters.lineage(lineage, principal, "downstream")


@router.get("/{actor}/{lot}/provenance", summary="Provenance shares per element")
def provenance(
    actor: str, lot: str, runtime: RuntimeDep, principal: PrincipalDep
) -> dict[str, Any]:
    """For each rare earth in the batch, the share of each origin mine (with its quota
    and country) in its content, by mass balance through the whole genealogy."""
    batch_id = _batch_id(runtime, actor, lot)
    lineage = genealogy.upstream(runtime.fresh_view(), batch_id)
    _require_projected(lineage, actor, lot)
    return presenters.provenance(lineage, genealogy.provenance(lineage))


def _require_projected(lineage: genealogy.Lineage, actor: str, lot: str) -> None:
    if lineage.root not in lineage.batches:
        raise NotFound("", "exists", f"batch {actor}/{lot} is not in the genealogy yet")
