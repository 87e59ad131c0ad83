"""Dependencies as Annotated aliases: routes ask for what they need by type."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Query, Request

from lodestone.domain.access import Principal, Role
from lodestone.domain.refusals import InvalidInput
from lodestone.gateway.auth import authenticate
from lodestone.gateway.runtime import Runtime


async def get_runtime(request: Request) -> Runtime:  # async: no thread hop for a lookup
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_principal(
    request: Request,
    runtime: RuntimeDep,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> Principal:
    return principal_of(runtime, request, authorization, x_api_key)


def principal_of(
    runtime: Runtime, request: Request, authorization: str | None, x_api_key: str | None
) -> Principal:
    """The caller, checked against the keys, with wrong keys counted per client address."""
    address = request.client.host if request.client else ""
    principal = authenticate(
        runtime.settings,
        runtime.ledger,
        authorization,
        x_api_key,
        throttle=runtime.throttle,
        address=address,
    )
    request.state.principal = principal  # a refused write is recorded with its caller
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        description="Retry-safe writes: a repeat with this key returns the first answer and stores nothing",
    ),
]


def roles(*allowed: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """Refuse early, before any reference is resolved, callers whose role never may."""

    async def check(principal: PrincipalDep) -> Principal:  # pure CPU: run inline
        if principal.role not in allowed:
            names = ", ".join(sorted(r.value for r in allowed))
            raise HTTPException(403, f"role {principal.role.value} may not do this ({names} may)")
        return principal

    return check


#: How long a read waits for its read models to reach the position it asks for.
READ_WAIT_SECONDS = 5.0


def read_after(
    runtime: RuntimeDep,
    wait_for: Annotated[
        int | None,
        Query(
            ge=0,
            description="Read-your-writes: answer only once the read models show the store "
            "up to this position (a write answer's `Lodestone-Position`); 503 with "
            f"Retry-After if they have not within {READ_WAIT_SECONDS:g} s",
        ),
    ] = None,
    if_position: Annotated[
        int | None,
        Header(alias="If-Position", ge=0, description="The same as `wait_for`, as a header"),
    ] = None,
) -> None:
    """Read-your-writes on request. Every write answers the store position that holds it
    (``Lodestone-Position``); a read carrying it waits, bounded, until the embedded
    projector threads have applied the store that far."""
    asked = [(p, f) for p, f in ((wait_for, "wait_for"), (if_position, "If-Position")) if p]
    if not asked:
        return
    position, field = max(asked)
    if not runtime.projectors:
        raise InvalidInput(
            field,
            "embedded-projector",
            "this gateway's read models are fed by separate projector processes: "
            "it cannot wait for a store position",
        )
    if position > (runtime.ledger.recorder.max_notification_id() or 0):
        raise InvalidInput(field, "position-recorded", "no write has reached this position")
    if not runtime.reached(position, READ_WAIT_SECONDS):
        raise HTTPException(
            503,
            f"the read models have not reached position {position} yet: retry",
            headers={"Retry-After": "1"},
        )


#: For a router's ``dependencies``: every read it serves accepts ``wait_for``/``If-Position``.
ReadAfter = Depends(read_after)
