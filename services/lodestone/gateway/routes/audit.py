"""Auditors' endpoints: history, state as of a moment, verification, checkpoints,
audit bundles and the standalone verifier. For auditors, regulators and admins."""

from __future__ import annotations

import inspect
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import PlainTextResponse

from lodestone import integrity
from lodestone.audit import bundle as bundles
from lodestone.audit import history as hist
from lodestone.audit.verify import verify
from lodestone.domain.access import Credential, Role
from lodestone.domain.refusals import InvalidInput
from lodestone.gateway import presenters
from lodestone.gateway.deps import PrincipalDep, RuntimeDep, roles
from lodestone.gateway.runtime import Runtime
from lodestone.projections import genealogy

AUDITORS = (Role.AUDITOR, Role.REGULATOR, Role.ADMIN)
router = APIRouter(tags=["audit"], dependencies=[Depends(roles(*AUDITORS))])


def _principal_label(runtime: Runtime, principal_id: str) -> dict[str, Any]:
    try:
        credential: Any = runtime.ledger.repository.get(UUID(principal_id))
    except Exception:  # not a credential id, or not a credential
        credential = None
    if isinstance(credential, Credential):
        actor = runtime.ledger.actor(credential.actor_id).code if credential.actor_id else None
        return {
            "principal": principal_id,
            "role": credential.role.value,
            "label": credential.label,
            "actor": actor,
        }
    # Built-in principals: the bootstrap admin key and the demo loader.
    return {
        "principal": principal_id,
        "role": Role.ADMIN.value,
        "label": principal_id,
        "actor": None,
    }


def label_reporters(runtime: Runtime, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each entry's reporting principal as its role, label and company (one lookup per
    principal)."""
    labels: dict[str, dict[str, Any]] = {}
    for body in events:
        principal = body["reported_by"]
        if principal:
            if principal not in labels:
                labels[principal] = _principal_label(runtime, principal)
            body["reported_by"] = labels[principal]
    return events


def _batch_id(runtime: Runtime, actor: str, lot: str) -> UUID:
    batch_id: UUID = runtime.ledger.batch(f"{actor}/{lot}").id
    return batch_id


@router.get(
    "/v1/batches/{actor}/{lot}/history",
    summary="Every event of a batch, with positions, times, reporters and hashes",
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
) -> dict[str, Any]:
    """Each event with its store ``position``, ``occurred_at`` (event time: when the step
    happened, as reported), ``recorded_at`` (record time: when the ledger stored it), who
    reported it and with which role, its ``hash`` and ``prev`` (the previous event's hash
    in the same batch) and ``intact`` (the stored row still matches its hash)."""
    batch_id = _batch_id(runtime, actor, lot)
    ids = (
        [batch_id]
        if lineage == "none"
        else hist.lineage_ids(runtime.fresh_view(), batch_id, lineage)
    )
    events = label_reporters(runtime, hist.plain_entries(runtime.rows.for_aggregates(ids)))
    # Both facts stay: the corrected event as recorded, marked, and the correction.
    corrected: dict[tuple[str, int], list[int]] = {}
    for body in events:
        if body["type"] == "Batch.Corrected":
            key = (body["aggregate_id"], body["facts"]["corrects_version"])
            corrected.setdefault(key, []).append(body["version"])
    for body in events:
        by = corrected.get((body["aggregate_id"], body["version"]))
        if by:
            body["corrected_by_versions"] = by
    return {"batch": f"{actor}/{lot}", "id": str(batch_id), "lineage": lineage, "events": events}


@router.get(
    "/v1/batches/{actor}/{lot}/as-of",
    summary="State of a batch as known at, or as it happened at, a moment",
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
        int | None, Query(ge=1, description="The state after this version of the batch")
    ] = None,
) -> dict[str, Any]:
    """Give exactly one of ``known_at`` (record time), ``happened_at`` (event time) or
    ``version``. With the batch's state comes its upstream trace and provenance shares,
    which are fixed when a batch is made, and its downstream as far as it was recorded
    (or had happened) by then."""
    given = [
        n
        for n, v in (("known_at", known_at), ("happened_at", happened_at), ("version", version))
        if v is not None
    ]
    if len(given) != 1:
        # Name a parameter to leave out or, when none was given, the first one to give.
        field = given[-1] if given else "known_at"
        raise InvalidInput(field, "one-of", "give exactly one of known_at, happened_at, version")
    for name, moment in (("known_at", known_at), ("happened_at", happened_at)):
        if moment is not None and moment.tzinfo is None:
            raise InvalidInput(name, "timezone", "give a time zone (e.g. Z or +08:00)")
    batch_id = _batch_id(runtime, actor, lot)
    result = hist.as_of(
        runtime.ledger,
        runtime.rows,
        batch_id,
        known_at=known_at,
        happened_at=happened_at,
        version=version,
    )
    body: dict[str, Any] = {
        "batch": f"{actor}/{lot}",
        "clock": result.clock,
        "at": presenters.plain(result.at),
        "version": result.version,
        "events_after": result.later_events,
        "existed": result.batch is not None,
        "state": None,
    }
    if result.batch is not None:
        body["state"] = presenters.batch_state(runtime.ledger, result.batch, principal)
        lineage = genealogy.upstream(runtime.fresh_view(), batch_id)
        if lineage.root in lineage.batches:
            upstream = presenters.lineage(lineage, principal, "upstream")
            # Lineage, masses taken and origins are fixed when a batch is made; the
            # ancestors' status, remaining mass and holder now are not the state at T:
            # left out rather than shown under an "as of" heading.
            for node in upstream.get("nodes", []):
                for name in _NOW_ONLY:
                    node.pop(name, None)
            body["upstream"] = upstream
            body["provenance"] = presenters.provenance(lineage, genealogy.provenance(lineage))
    return body


_NOW_ONLY = ("status", "remaining_kg", "custodian", "facility", "corrections")


@router.get(
    "/v1/batches/{actor}/{lot}/bundle", summary="Audit bundle: events, hashes and checkpoint proofs"
)
def bundle(actor: str, lot: str, runtime: RuntimeDep) -> Response:
    """One canonical JSON file that ``/v1/audit/verifier.py`` checks without Lodestone."""
    batch_id = _batch_id(runtime, actor, lot)
    data = bundles.build(
        runtime.ledger.recorder, runtime.rows, runtime.checkpoints, runtime.checkpointer, batch_id
    )
    name = f"lodestone-bundle-{actor}-{lot}.json"
    return Response(
        data,
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get(
    "/v1/audit/verifier.py",
    summary="The standalone bundle verifier (Python, standard library only)",
    response_class=PlainTextResponse,
)
def verifier() -> PlainTextResponse:
    source = inspect.getsource(integrity)
    return PlainTextResponse(
        source,
        media_type="text/x-python",
        headers={"Content-Disposition": 'attachment; filename="integrity.py"'},
    )


@router.get("/v1/audit/verify", summary="Recompute every hash, chain and checkpoint")
def verify_ledger(runtime: RuntimeDep) -> dict[str, Any]:
    """``ok`` and, if not, ``first_problem``: the first broken event (position, batch or
    aggregate, version) and how it is broken."""
    return presenters.plain(
        verify(runtime.ledger.recorder, runtime.checkpoints, rows=runtime.rows).as_dict()
    )


@router.get(
    "/v1/audit/checkpoints", summary="Checkpoints: Merkle roots over ranges of store positions"
)
def checkpoints(
    runtime: RuntimeDep,
    after: Annotated[int, Query(ge=0, description="Only checkpoints with a larger seq")] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1_000,
) -> dict[str, Any]:
    return {"checkpoints": runtime.checkpoints.list(after_seq=after, limit=limit)}


@router.post(
    "/v1/audit/checkpoints",
    summary="Checkpoint the events recorded since the last checkpoint now",
    status_code=201,
)
def make_checkpoint(runtime: RuntimeDep) -> dict[str, Any]:
    return {"made": runtime.checkpointer.make(), "latest": runtime.checkpoints.latest()}
