"""Actors, facilities, licences and API credentials."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from lodestone.domain.access import Principal
from lodestone.gateway.auth import hash_key, new_key
from lodestone.gateway.body import ExactJSONRoute
from lodestone.gateway.deps import PrincipalDep, RuntimeDep
from lodestone.gateway.problems import READ_ERRORS, WRITE_ERRORS
from lodestone.gateway.schemas.answers import Recorded
from lodestone.gateway.schemas.registry import (
    ActorCreate,
    CredentialCreate,
    CredentialRevoke,
    CredentialRotate,
    FacilityCreate,
    LicenceCreate,
)
from lodestone.gateway.writes import WriteDep, created, submitters
from lodestone.ledger import commands as c
from lodestone.reads import registry
from lodestone.reads.types import ActorView, FacilityView, LicenceView, Me

router = APIRouter(prefix="/v1", tags=["registry"], route_class=ExactJSONRoute)
#: Every registry write answers what it recorded (and, for a new credential, the key).
RECORDED = {201: {"model": Recorded, "description": "Recorded"}, **WRITE_ERRORS}

ActorRegistrar = Annotated[Principal, submitters(ActorCreate.command)]
FacilityRegistrar = Annotated[Principal, submitters(FacilityCreate.command)]
LicenceIssuer = Annotated[Principal, submitters(LicenceCreate.command)]
KeyIssuer = Annotated[Principal, submitters(c.IssueCredential)]
KeyRevoker = Annotated[Principal, submitters(c.RevokeCredential)]
KeyRotator = Annotated[Principal, submitters(c.RotateCredential)]


@router.post("/actors", status_code=201, responses=RECORDED, summary="Register an actor (company)")
def register_actor(body: ActorCreate, write: WriteDep, principal: ActorRegistrar) -> JSONResponse:
    """A mine, refiner, magnet maker, trader, exporter or end client, by a unique code."""
    return write.submit(principal, body, [body.to_command()])


@router.post("/facilities", status_code=201, responses=RECORDED, summary="Register a facility")
def register_facility(
    body: FacilityCreate, write: WriteDep, principal: FacilityRegistrar
) -> JSONResponse:
    """A mine, plant, warehouse or port; operators register their own only."""
    return write.submit(principal, body, [body.to_command()])


@router.post(
    "/licences", status_code=201, responses=RECORDED, summary="Issue a quota or export licence"
)
def issue_licence(body: LicenceCreate, write: WriteDep, principal: LicenceIssuer) -> JSONResponse:
    """Mining and separation quotas are counted in kg REO; export licences in kg of goods
    and name items (material, customs code, controlled elements), consignee, end user,
    destination and validity."""
    return write.submit(principal, body, [body.to_command()])


@router.post("/credentials", status_code=201, responses=RECORDED, summary="Issue an API key")
def issue_credential(body: CredentialCreate, write: WriteDep, principal: KeyIssuer) -> JSONResponse:
    """The key is shown in this answer only; the ledger keeps its SHA-256. A retry with
    the same Idempotency-Key answers without the key."""
    key = new_key()
    command = c.IssueCredential(
        key_hash=hash_key(key),
        role=body.role,
        actor=body.actor,
        label=body.label,
        expires_at=body.expires_at,
    )
    outcome = write.execute(principal, [command], body)
    result = dict(outcome.results[0])
    if not outcome.replayed:
        result["key"] = key
    return created(result, outcome)


@router.post(
    "/credentials/{credential_id}/rotate",
    responses=RECORDED,
    status_code=201,
    summary="Rotate an API key: a new key, the old one valid for a grace period",
)
def rotate_credential(
    credential_id: UUID, body: CredentialRotate, write: WriteDep, principal: KeyRotator
) -> JSONResponse:
    """The new key has the same role, actor and label and is shown in this answer only;
    the old key is refused once ``grace_seconds`` have passed (or at its own expiry, if
    sooner). An admin rotates any key; any principal may rotate its own."""
    key = new_key()
    command = c.RotateCredential(
        credential_id=str(credential_id),
        key_hash=hash_key(key),
        grace=timedelta(seconds=body.grace_seconds),
    )
    outcome = write.execute(principal, [command], body)
    result = dict(outcome.results[0])
    if not outcome.replayed:
        result["key"] = key
    return created(result, outcome)


@router.post(
    "/credentials/{credential_id}/revoke",
    status_code=201,
    responses=RECORDED,
    summary="Revoke an API key",
)
def revoke_credential(
    credential_id: UUID, body: CredentialRevoke, write: WriteDep, principal: KeyRevoker
) -> JSONResponse:
    command = c.RevokeCredential(credential_id=str(credential_id), reason=body.reason)
    return write.submit(principal, body, [command])


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
