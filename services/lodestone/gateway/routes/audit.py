"""Auditors' endpoints: history, state as of a moment, verification, checkpoints,
audit bundles and the standalone verifier. For auditors, regulators and admins."""

from __future__ import annotations

import inspect
from datetime import datetime
from typing import Annotated, Literal, cast

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import PlainTextResponse

from lodestone import integrity
from lodestone.audit import bundle as bundles
from lodestone.audit.verify import verify
from lodestone.domain.access import Role
from lodestone.gateway.deps import PrincipalDep, RuntimeDep, roles
from lodestone.gateway.downloads import disposition
from lodestone.gateway.problems import READ_ERRORS
from lodestone.reads import batches
from lodestone.reads import history as hist
from lodestone.reads.json import encoded, plain
from lodestone.reads.types import (
    AsOfAnswer,
    Checkpoints,
    CheckpointsMade,
    CheckpointView,
    History,
    Verification,
)

AUDITORS = (Role.AUDITOR, Role.REGULATOR, Role.ADMIN)
#: Positions, sequence numbers and versions are 64-bit integers in both databases: a
#: larger number names nothing, and must be a 422, not an overflow in the driver.
MAX_POSITION = 2**63 - 1
router = APIRouter(tags=["audit"], dependencies=[Depends(roles(*AUDITORS))], responses=READ_ERRORS)


def _json(answer: object) -> Response:
    # A history of a thousand events, an as-of state with its whole upstream: written
    # by orjson, not validated again on the way out (response_model documents them).
    return Response(encoded(answer), media_type="application/json")


@router.get(
    "/v1/batches/{actor}/{lot}/history",
    summary="Every event of a batch, with positions, times, reporters and hashes",
    response_model=History,
)
def history(
    actor: str,
    lot: str,
    runtime: RuntimeDep,
    lineage: Annotated[
        Literal["none", "upstream", "downstream"],
        Query(
            description="Also the events of every batch upstream or downstream, merged in store order"
        ),
    ] = "none",
) -> Response:
    """Each event with its store ``position``, ``occurred_at`` (event time: when the step
    happened, as reported), ``recorded_at`` (record time: when the ledger stored it), who
    reported it and with which role, its ``hash`` and ``prev`` (the previous event's hash
    in the same batch) and ``intact`` (the stored row still matches its hash)."""
    return _json(
        hist.batch_history(runtime.ledger, runtime.rows, runtime.fresh_view, actor, lot, lineage)
    )


@router.get(
    "/v1/batches/{actor}/{lot}/as-of",
    summary="State of a batch as known at, or as it happened at, a moment",
    response_model=AsOfAnswer,
)
def as_of(
    actor: str,
    lot: str,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    known_at: Annotated[
        datetime | None, Query(description="Record time: what the ledger knew at this moment")
    ] = None,
    happened_at: Annotated[
        datetime | None,
        Query(description="Event time: the steps that had happened by this moment, as known now"),
    ] = None,
    version: Annotated[
        int | None,
        Query(ge=1, le=MAX_POSITION, description="The state after this version of the batch"),
    ] = None,
) -> Response:
    """Give exactly one of ``known_at`` (record time), ``happened_at`` (event time) or
    ``version``. With the batch's state comes its upstream trace and provenance shares,
    which are fixed when a batch is made, and its downstream as far as it was recorded
    (or had happened) by then."""
    return _json(
        hist.batch_as_of(
            runtime.ledger,
            runtime.rows,
            runtime.fresh_view,
            actor,
            lot,
            principal,
            known_at=known_at,
            happened_at=happened_at,
            version=version,
        )
    )


@router.get(
    "/v1/batches/{actor}/{lot}/bundle",
    summary="Audit bundle: events, hashes and checkpoint proofs",
    response_class=Response,
    responses={200: {"content": {"application/json": {}}, "description": "The bundle file"}},
)
def bundle(actor: str, lot: str, runtime: RuntimeDep) -> Response:
    """One canonical JSON file that ``/v1/audit/verifier.py`` checks without Lodestone."""
    batch_id = batches.batch_id(runtime.ledger, actor, lot)
    data = bundles.build(
        runtime.ledger.recorder, runtime.rows, runtime.checkpoints, runtime.checkpointer, batch_id
    )
    name = f"lodestone-bundle-{actor}-{lot}.json"
    return Response(
        data,
        media_type="application/json",
        headers=disposition("attachment", name),
    )


@router.get(
    "/v1/audit/verifier.py",
    summary="The standalone bundle verifier (Python, standard library only)",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/x-python": {}}, "description": "integrity.py"}},
)
def verifier() -> PlainTextResponse:
    source = inspect.getsource(integrity)
    return PlainTextResponse(
        source,
        media_type="text/x-python",
        headers=disposition("attachment", "integrity.py"),
    )


@router.get(
    "/v1/audit/verify",
    summary="Recompute every hash, chain and checkpoint",
    response_model=Verification,
)
def verify_ledger(runtime: RuntimeDep) -> Verification:
    """``ok`` and, if not, ``first_problem``: the first broken event (position, batch or
    aggregate, version) and how it is broken."""
    report = verify(runtime.ledger.recorder, runtime.checkpoints, rows=runtime.rows)
    return cast(Verification, plain(report.as_dict()))


@router.get(
    "/v1/audit/checkpoints",
    summary="Checkpoints: Merkle roots over ranges of store positions",
    response_model=Checkpoints,
)
def checkpoints(
    runtime: RuntimeDep,
    after: Annotated[
        int, Query(ge=0, le=MAX_POSITION, description="Only checkpoints with a larger seq")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1_000,
) -> Checkpoints:
    found = runtime.checkpoints.list(after_seq=after, limit=limit)
    return {"checkpoints": cast(list[CheckpointView], found)}


@router.post(
    "/v1/audit/checkpoints",
    summary="Checkpoint the events recorded since the last checkpoint now",
    status_code=201,
    response_model=CheckpointsMade,
)
def make_checkpoint(runtime: RuntimeDep) -> CheckpointsMade:
    made = runtime.checkpointer.make()
    latest = runtime.checkpoints.latest()
    return {
        "made": cast(list[CheckpointView], made),
        "latest": cast(CheckpointView | None, latest),
    }
