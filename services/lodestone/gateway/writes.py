"""Submitting commands to the ledger: who may, the idempotency fingerprint, status and
headers. Every write endpoint asks for a ``WriteDep`` and hands it the principal, the
body and the commands the body asks for."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.datastructures import State

from lodestone.domain.access import Principal
from lodestone.domain.refusals import Refusal
from lodestone.gateway import metrics, refused
from lodestone.gateway.deps import IdempotencyKey, RuntimeDep, roles
from lodestone.gateway.runtime import Runtime
from lodestone.ledger.application import Outcome
from lodestone.ledger.commands import Command


def fingerprint(path: str, body: BaseModel) -> str:
    """What makes two requests "the same" for an Idempotency-Key: path and body."""
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{path}\n{canonical}".encode()).hexdigest()


def submitters(*commands: type[Command]) -> Any:
    """The early role check of an endpoint that submits these commands: the roles the
    commands declare, so the gateway and the ledger cannot disagree on who may."""
    return Depends(roles(*{role for command in commands for role in command.submitters}))


@dataclass(frozen=True)
class Write:
    """One write request: the runtime it reaches, its path, its Idempotency-Key and the
    request's state (where a refusal notes the licence it concerned)."""

    runtime: Runtime
    path: str
    idempotency_key: str | None
    state: State = field(default_factory=State)

    def execute(
        self,
        principal: Principal,
        commands: Sequence[Command],
        body: BaseModel,
        *,
        bulk: bool = False,
    ) -> Outcome:
        try:
            outcome = self.runtime.writer.submit(
                principal,
                commands,
                idempotency_key=self.idempotency_key,
                fingerprint=fingerprint(self.path, body),
                bulk=bulk,
            )
        except Refusal as refusal:
            refused.note(self.state, commands, refusal)
            raise
        metrics.recorded(outcome)
        return outcome

    def submit(
        self,
        principal: Principal,
        body: BaseModel,
        commands: Sequence[Command],
        *,
        bulk: bool = False,
    ) -> JSONResponse:
        outcome = self.execute(principal, commands, body, bulk=bulk)
        return created({"results": outcome.results} if bulk else outcome.results[0], outcome)


#: The header of every write answer naming the store position that holds the write: a read
#: sent with ``If-Position`` (or ``?wait_for=``) set to it waits until its read model has it.
POSITION_HEADER = "Lodestone-Position"


def created(content: Any, outcome: Outcome) -> JSONResponse:
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else {}
    if outcome.position is not None:
        headers[POSITION_HEADER] = str(outcome.position)
    return JSONResponse(content, status_code=201, headers=headers)


async def get_write(  # async: no thread hop for building a value
    request: Request, runtime: RuntimeDep, idempotency_key: IdempotencyKey = None
) -> Write:
    return Write(runtime, request.url.path, idempotency_key, request.state)


#: Ask for it before the principal: the OpenAPI document then lists the Idempotency-Key
#: header before the credentials, as it always has.
WriteDep = Annotated[Write, Depends(get_write)]
