"""Submitting commands to the ledger: idempotency fingerprint, status and headers."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from fastapi.responses import JSONResponse
from pydantic import BaseModel

from lodestone.domain.access import Principal
from lodestone.gateway.runtime import Runtime
from lodestone.ledger.commands import Command


def fingerprint(path: str, body: BaseModel) -> str:
    """What makes two requests "the same" for an Idempotency-Key: path and body."""
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{path}\n{canonical}".encode()).hexdigest()


def submit(
    runtime: Runtime,
    principal: Principal,
    commands: Sequence[Command],
    *,
    path: str,
    body: BaseModel,
    idempotency_key: str | None,
    bulk: bool = False,
) -> JSONResponse:
    outcome = runtime.ledger.execute(
        principal,
        commands,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint(path, body),
        bulk=bulk,
    )
    content = {"results": outcome.results} if bulk else outcome.results[0]
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else {}
    return JSONResponse(content, status_code=201, headers=headers)
