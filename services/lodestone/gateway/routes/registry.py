"""Actors, facilities, licences and API credentials."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from lodestone.domain.access import Principal, Role
from lodestone.gateway.auth import hash_key, new_key
from lodestone.gateway.deps import IdempotencyKey, PrincipalDep, RuntimeDep, roles
from lodestone.gateway.problems import READ_ERRORS
from lodestone.gateway.schemas.registry import (
    ActorCreate,
    CredentialCreate,
    CredentialRevoke,
    FacilityCreate,
    LicenceCreate,
)
from lodestone.gateway.writes import fingerprint, submit
from lodestone.ledger import commands as c
from lodestone.reads import registry
from lodestone.reads.types import ActorView, FacilityView, LicenceView, Me

router = APIRouter(prefix="/v1", tags=["registry"])

Admin = Annotated[Principal, Depends(roles(Role.ADMIN))]
FacilityRegistrar = Annotated[Principal, Depends(roles(Role.ADMIN, Role.OPERATOR))]
LicenceIssuer = Annotated[Principal, Depends(roles(Role.REGULATOR, Role.ADMIN))]


@router.post("/actors", status_code=201, summary="Register an actor (company)")
def register_actor(
    body: ActorCreate,
    request: Request,
    principal: Admin,
    runtime: RuntimeDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """A mine, refiner, magnet maker, trader, exporter or end client, by a unique code."""
    return submit(
        runtime,
        principal,
        [body.to_command()],
        path=request.url.path,
        body=body,
        idempotency_key=idempotency_key,
    )


@router.post("/facilities", status_code=201, summary="Register a facility")
def register_facility(
    body: FacilityCreate,
    request: Request,
    principal: FacilityRegistrar,
    runtime: RuntimeDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """A mine, plant, warehouse or port; operators register their own only."""
    return submit(
        runtime,
        principal,
        [body.to_command()],
        path=request.url.path,
        body=body,
        idempotency_key=idempotency_key,
    )


@router.post("/licences", status_code=201, summary="Issue a quota or export licence")
def issue_licence(
    body: LicenceCreate,
    request: Request,
    principal: LicenceIssuer,
    runtime: RuntimeDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Mining and separation quotas are counted in kg REO; export licences in kg of goods
    and name items (material, customs code, controlled elements), consignee, end user,
    destination and validity."""
    return submit(
        runtime,
        principal,
        [body.to_command()],
        path=request.url.path,
        body=body,
        idempotency_key=idempotency_key,
    )


@router.post("/credentials", status_code=201, summary="Issue an API key")
def issue_credential(
    body: CredentialCreate,
    request: Request,
    principal: Admin,
    runtime: RuntimeDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """The key is shown in this answer only; the ledger keeps its SHA-256. A retry with
    the same Idempotency-Key answers without the key."""
    key = new_key()
    command = c.IssueCredential(
        key_hash=hash_key(key), role=body.role, actor=body.actor, label=body.label
    )
    outcome = runtime.ledger.execute(
        principal,
        [command],
        idempotency_key=idempotency_key,
        fingerprint=fingerprint(request.url.path, body),
    )
    result = dict(outcome.results[0])
    if not outcome.replayed:
        result["key"] = key
    return JSONResponse(
        result, status_code=201, headers={"Idempotent-Replayed": "true"} if outcome.replayed else {}
    )


@router.post("/credentials/{credential_id}/revoke", status_code=201, summary="Revoke an API key")
def revoke_credential(
    credential_id: UUID,
    body: CredentialRevoke,
    request: Request,
    principal: Admin,
    runtime: RuntimeDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    command = c.RevokeCredential(credential_id=str(credential_id), reason=body.reason)
    return submit(
        runtime,
        principal,
        [command],
        path=request.url.path,
        body=body,
        idempotency_key=idempotency_key,
    )


@router.get("/me", summary="Who the presented key is", response_model=Me, responses=READ_ERRORS)
def whoami(principal: PrincipalDep, runtime: RuntimeDep) -> Me:
    return registry.me(runtime.ledger, principal)


@router.get("/actors/{code}", summary="An actor", response_model=ActorView, responses=READ_ERRORS)
def get_actor(code: str, runtime: RuntimeDep, principal: PrincipalDep) -> ActorView:
    return registry.actor(runtime.ledger, code)


@router.get(
    "/facilities/{code}", summary="A facility", response_model=FacilityView, responses=READ_ERRORS
)
def get_facility(code: str, runtime: RuntimeDep, principal: PrincipalDep) -> FacilityView:
    return registry.facility(runtime.ledger, code)


@router.get(
    "/licences/{number}",
    summary="A licence or quota, drawn and remaining",
    response_model=LicenceView,
    responses=READ_ERRORS,
)
def get_licence(number: str, runtime: RuntimeDep, principal: PrincipalDep) -> LicenceView:
    """Consignee, end user and contract are commercial details: shown to the holder, the
    consignee, auditors, regulators and admins only."""
    return registry.licence(runtime.ledger, number, principal)
