"""Supply-chain events: one endpoint per event type, and a bulk endpoint.

No ``from __future__ import annotations`` here: the endpoints are made in a loop and
FastAPI reads each one's body model from its real annotation.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from lodestone.domain.access import Principal, Role
from lodestone.gateway.deps import IdempotencyKey, RuntimeDep, roles
from lodestone.gateway.schemas import events as s
from lodestone.gateway.writes import submit

router = APIRouter(prefix="/v1/events", tags=["events"])

Reporter = Annotated[Principal, Depends(roles(Role.OPERATOR, Role.ADMIN))]
Holder = Annotated[Principal, Depends(roles(Role.OPERATOR, Role.REGULATOR, Role.ADMIN))]

DESCRIPTIONS = {
    "ore-extracted": "Ore leaves a mine under a mining quota; its REO content draws the quota down.",
    "scrap-collected": "Recycled feed (end-of-life magnets, swarf) enters the chain as an origin of its own.",
    "batch-transformed": (
        "A processing step: inputs (batches and the mass taken from each) become new output batches. "
        "Per element and in total, outputs may not exceed inputs plus declared untraced material "
        "(iron, boron) beyond the declared tolerance. Separation draws a separation quota."
    ),
    "batch-split": "One batch becomes several; what is not split off stays with it.",
    "batches-merged": "Batches of one material at one facility become one, with their mass-weighted composition.",
    "custody-transferred": "A sale: the whole batch passes to the buyer (the client), with contract and volume.",
    "batch-moved": "The holder moves a batch between its own facilities, or to a warehouse or port.",
    "shipment-exported": (
        "Goods leave the country under an export licence: item, customs code, destination, "
        "consignee, end user, validity and remaining quantity are checked, and the licence is drawn."
    ),
    "shipment-received": "The consignee takes delivery abroad; a shortfall is recorded, a surplus refused.",
    "batch-quarantined": "A hold: nothing moves the batch until it is released (custodian, regulator, admin).",
    "batch-released": "Lifts a hold; a regulator's hold is lifted by a regulator or admin only.",
}


def _endpoint(path: str, model: type[s.StepIn]) -> Any:
    who = Holder if path in ("batch-quarantined", "batch-released") else Reporter

    def endpoint(
        body: model,  # type: ignore[valid-type]
        request: Request,
        principal: who,  # type: ignore[valid-type]
        runtime: RuntimeDep,
        idempotency_key: IdempotencyKey = None,
    ) -> JSONResponse:
        return submit(
            runtime,
            principal,
            [body.to_command()],
            path=request.url.path,
            body=body,
            idempotency_key=idempotency_key,
        )

    endpoint.__name__ = f"submit_{path.replace('-', '_')}"
    return endpoint


for _path, _model in s.EVENT_PATHS.items():
    router.add_api_route(
        f"/{_path}",
        _endpoint(_path, _model),
        methods=["POST"],
        status_code=201,
        summary=f"Report {_model.__name__}",
        description=DESCRIPTIONS[_path],
        responses={201: {"description": "Recorded; the answer names the batches made or changed"}},
    )


@router.post(
    "/corrections",
    status_code=201,
    summary="Correct an earlier event of a batch",
    responses={
        201: {"description": "Recorded as a new event; the corrected one stays in the history"}
    },
)
def submit_correction(
    body: s.Correction,
    request: Request,
    principal: Holder,
    runtime: RuntimeDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Only the actor that reported the event, a regulator or an admin may correct it,
    and a correction that would break an invariant (mass available, custody and place,
    chronology, quota) at any point of the corrected history is refused. Every view then
    shows the corrected facts and marks that a correction happened; the history shows
    both events."""
    return submit(
        runtime,
        principal,
        [body.to_command()],
        path=request.url.path,
        body=body,
        idempotency_key=idempotency_key,
    )


@router.post("/bulk", status_code=201, summary="Report many events at once")
def submit_bulk(
    body: s.BulkIn,
    request: Request,
    principal: Holder,
    runtime: RuntimeDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Up to 10,000 events of any type, applied in order and stored whole or not at all
    in one transaction; a refusal names the event (``events[17].inputs[0].mass_kg``).
    Later events may refer to batches made by earlier ones."""
    return submit(
        runtime,
        principal,
        [e.to_command() for e in body.events],
        path=request.url.path,
        body=body,
        idempotency_key=idempotency_key,
        bulk=True,
    )
