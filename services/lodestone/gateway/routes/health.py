"""Liveness and how far the read models have come."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request

from lodestone.gateway.deps import RuntimeDep, principal_of
from lodestone.reads.types import Health

router = APIRouter(tags=["health"])


@router.get(
    "/health",
    summary="Is the gateway up, and how far behind are the read models",
    response_model=Health,
)
def health(
    runtime: RuntimeDep,
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> Health:
    """``ok`` to anyone (a load balancer's probe needs no key); how many events are
    recorded and projected only to an authenticated caller, since that is the ledger's
    activity."""
    if authorization is None and x_api_key is None:
        return {"status": "ok"}
    principal_of(runtime, request, authorization, x_api_key)
    recorded = runtime.ledger.recorder.max_notification_id() or 0
    projected = runtime.projector.position() if runtime.projector else None
    return {"status": "ok", "recorded_position": recorded, "genealogy_position": projected}
