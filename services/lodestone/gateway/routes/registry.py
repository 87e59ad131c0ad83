"""Actors, facilities, licences and API credentials."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from lodestone.domain.access import Principal
from lodestone.gateway import presenters
from lodestone.gateway.auth import hash_key, new_key
from lodestone.gateway.deps import PrincipalDep, RuntimeDep
from lodestone.gateway.schemas.registry import (
    ActorCreate,
    CredentialCreate,
    CredentialRevoke,
    FacilityCreate,
    LicenceCreate,
)
from lodestone.gateway.writes import WriteDep, created, submitters
from lodestone.ledger import commands as c

router = APIRouter(prefix="/v1", tags=["registry"])

ActorRegistrar = Annotated[Principal, submitters(ActorCreate.command)]
FacilityRegistrar = Annotated[Principal, submitters(FacilityCreate.command)]
LicenceIssuer = Annotated[Principal, submitters(LicenceCreate.command)]
KeyIssuer = Annotated[Principal, submitters(c.IssueCredential)]
KeyRevoker = Annotated[Principal, submitters(c.RevokeCredential)]


@router.post("/actors", status_code=201, summary="Register an actor (company)")
def register_actor(body: ActorCreate, write: WriteDep, principal: ActorRegistrar) -> JSONResponse:
    """A mine, refiner, magnet maker, trader, exporter or end client, by a unique code."""
    return write.submit(principal, body, [body.to_command()])


@router.post("/facilities", status_code=201, summary="Register a facility")
def register_facility(
    body: FacilityCreate, write: WriteDep, principal: FacilityRegistrar
) -> JSONResponse:
    """A mine, plant, warehouse or port; operators register their own only."""
    return write.submit(principal, body, [body.to_command()])


@router.post("/licences", status_code=201, summary="Issue a quota or export licence")
def issue_licence(body: LicenceCreate, write: WriteDep, principal: LicenceIssuer) -> JSONResponse:
    """Mining and separation quotas are counted in kg REO; export licences in kg of goods
    and name items (material, customs code, controlled elements), consignee, end user,
    destination and validity."""
    return write.submit(principal, body, [body.to_command()])


@router.post("/credentials", status_code=201, summary="Issue an API key")
def issue_credential(body: CredentialCreate, write: WriteDep, principal: KeyIssuer) -> JSONResponse:
    """The key is shown in this answer only; the ledger keeps its SHA-256. A retry with
    the same Idempotency-Key answers without the key."""
    key = new_key()
    command = c.IssueCredential(
        key_hash=hash_key(key), role=body.role, actor=body.actor, label=body.label
    )
    outcome = write.execute(principal, [command], body)
    result = dict(outcome.results[0])
    if not outcome.replayed:
        result["key"] = key
    return created(result, outcome)


@router.post("/credentials/{credential_id}/revoke", status_code=201, summary="Revoke an API key")
def revoke_credential(
    credential_id: UUID, body: CredentialRevoke, write: WriteDep, principal: KeyRevoker
) -> JSONResponse:
    command = c.RevokeCredential(credential_id=str(credential_id), reason=body.reason)
    return write.submit(principal, body, [command])


@router.get("/me", summary="Who the presented key is")
def whoami(principal: PrincipalDep, runtime: RuntimeDep) -> dict[str, Any]:
    actor = runtime.ledger.actor(principal.actor) if principal.actor else None
    return {
        "id": principal.id,
        "role": principal.role.value,
        "actor": actor.code if actor else None,
    }


@router.get("/actors/{code}", summary="An actor")
def get_actor(code: str, runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    actor = runtime.ledger.actor_by_code(code)
    return presenters.plain(
        {
            "id": actor.id,
            "code": actor.code,
            "name": actor.name,
            "country": actor.country,
            "roles": actor.roles,
        }
    )


@router.get("/facilities/{code}", summary="A facility")
def get_facility(code: str, runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    facility = runtime.ledger.facility_by_code(code)
    owner = runtime.ledger.actor(facility.owner_id)
    return presenters.plain(
        {
            "id": facility.id,
            "code": facility.code,
            "name": facility.name,
            "kind": facility.kind.value,
            "owner": owner.code,
            "country": facility.country,
            "location": facility.location,
        }
    )


@router.get("/licences/{number}", summary="A licence or quota, drawn and remaining")
def get_licence(number: str, runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    """Consignee, end user and contract are commercial details: shown to the holder, the
    consignee, auditors, regulators and admins only."""
    licence = runtime.ledger.licence_by_number(number)
    holder = runtime.ledger.actor(licence.holder_id)
    sees = principal.sees_commercial(licence.holder_id, licence.consignee_id)
    consignee = runtime.ledger.actor(licence.consignee_id).code if licence.consignee_id else None
    body: dict[str, Any] = {
        "id": licence.id,
        "number": licence.number,
        "kind": licence.kind.value,
        "holder": holder.code,
        "unit": "kg REO" if licence.kind.value.endswith("quota") else "kg",
        "max_kg": licence.max_kg,
        "drawn_kg": licence.drawn_kg,
        "remaining_kg": licence.remaining_kg,
        "draws": licence.draws,
        "valid_from": licence.valid_from,
        "valid_until": licence.valid_until,
    }
    if licence.kind.value == "export_licence":
        body |= {
            "items": licence.items,
            "destination_country": licence.destination_country,
            "consignee": consignee if sees else presenters.REDACTED,
            "end_user": licence.end_user if sees else presenters.REDACTED,
            "end_use": licence.end_use if sees else presenters.REDACTED,
            "contract": licence.contract if sees else presenters.REDACTED,
        }
    return presenters.plain(body)
