"""Dependencies as Annotated aliases: routes ask for what they need by type."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request

from lodestone.domain.access import Principal, Role
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
