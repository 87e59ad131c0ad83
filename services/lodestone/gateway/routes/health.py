"""Liveness and how far the read models have come."""

from __future__ import annotations

from fastapi import APIRouter

from lodestone.gateway.deps import RuntimeDep
from lodestone.reads.types import Health

router = APIRouter(tags=["health"])


@router.get(
    "/health",
    summary="Is the gateway up, and how far behind are the read models",
    response_model=Health,
)
def health(runtime: RuntimeDep) -> Health:
    recorded = runtime.ledger.recorder.max_notification_id() or 0
    projected = runtime.projector.position() if runtime.projector else None
    return {"status": "ok", "recorded_position": recorded, "genealogy_position": projected}
