"""One handler per command: resolve references, call the domain step, hand back the
answer. Handlers only load and stage aggregates; the ledger saves them."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from functools import singledispatch
from typing import Any
from uuid import UUID

from lodestone.domain import chain, ids, values
from lodestone.domain.access import Credential, Principal, Role
from lodestone.domain.actors import Actor, Facility
from lodestone.domain.batches import Batch
from lodestone.domain.licences import Licence, LicenceKind
from lodestone.domain.refusals import InvalidInput
from lodestone.domain.values import FacilityKind, aware, one_of, reo_kg
from lodestone.ledger import commands as c
from lodestone.ledger.unit_of_work import UnitOfWork

KEY_HASH = re.compile(r"^[0-9a-f]{64}$")
ACTOR_ROLES = frozenset(
    [
        "miner",
        "separator",
        "metal_maker",
        "alloy_maker",
        "magnet_maker",
        "recycler",
        "trader",
        "exporter",
        "importer",
        "end_client",
        "logistics",
    ]
)


def code(value: str, field: str) -> str:
    """A registry code (actor, facility, licence number): codes are one upper-case key."""
    return values.code(value, field).upper()


def actor(uow: UnitOfWork, ref: str, field: str) -> Actor:
    return uow.get(Actor, ids.actor_id(code(ref, field)), field, f"actor {ref}")


def facility(uow: UnitOfWork, ref: str, field: str) -> Facility:
    return uow.get(Facility, ids.facility_id(code(ref, field)), field, f"facility {ref}")


def licence(uow: UnitOfWork, ref: str, field: str) -> Licence:
    return uow.get(Licence, ids.licence_id(code(ref, field)), field, f"licence {ref}")


def batch_ref(ref: str, own_actor: UUID | None, field: str) -> UUID:
    """``ACTOR/LOT``, a batch UUID, or (for the reporting actor) its own bare lot code."""
    if "/" in ref:
        actor_code, _, lot = ref.partition("/")
        return ids.batch_id(ids.actor_id(code(actor_code, field)), values.lot_code(lot, field))
    try:
        return UUID(ref)
    except ValueError:
        pass
    if own_actor is None:
        raise InvalidInput(field, "batch-reference", "name the batch as ACTOR/LOT or by its id")
    return ids.batch_id(own_actor, values.lot_code(ref, field))


def batch(uow: UnitOfWork, ref: str, own_actor: UUID | None, field: str) -> Batch:
    return uow.get(Batch, batch_ref(ref, own_actor, field), field, f"batch {ref}")


def step(uow: UnitOfWork, principal: Principal, cmd: c.Step, now: datetime) -> chain.StepContext:
    principal.require(Role.OPERATOR, Role.ADMIN, field="actor")
    if cmd.actor is not None:
        reporter = actor(uow, cmd.actor, "actor")
    elif principal.actor is not None:
        reporter = uow.get(Actor, principal.actor, "actor", "the caller's actor")
    else:
        raise InvalidInput("actor", "required", "name the actor this step is reported for")
    return chain.StepContext(principal, reporter, cmd.occurred_at or now, now)


def new_batch(uow: UnitOfWork, s: chain.StepContext, lot: str, field: str) -> None:
    uow.require_new(
        ids.batch_id(s.actor.id, values.lot_code(lot, field)), field, f"lot {lot} of {s.actor.code}"
    )


def answer(event: str, b: Batch, **extra: Any) -> dict[str, Any]:
    return {
        "event": event,
        "batch_id": str(b.id),
        "lot_code": b.lot_code,
        "batch": b.reference,
        **{k: _text(v) for k, v in extra.items()},
    }


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return str(value)


@singledispatch
def handle(cmd: c.Command, uow: UnitOfWork, principal: Principal, now: datetime) -> dict[str, Any]:
    raise TypeError(f"no handler for {type(cmd).__name__}")


@handle.register
def _(cmd: c.RegisterActor, uow: UnitOfWork, principal: Principal, now: datetime) -> dict[str, Any]:
    principal.require(Role.ADMIN)
    actor_code = code(cmd.code, "code")
    unknown = sorted(set(cmd.roles) - ACTOR_ROLES)
    if unknown:
        raise InvalidInput(
            "roles",
            "actor-role",
            f"{', '.join(unknown)}: not one of {', '.join(sorted(ACTOR_ROLES))}",
        )
    id = ids.actor_id(actor_code)
    uow.require_new(id, "code", f"actor {actor_code}")
    new = Actor.register(id, actor_code, cmd.name, cmd.country, cmd.roles, principal.id, now)
    uow.add(new)
    return {"event": "ActorRegistered", "actor_id": str(id), "code": actor_code}


@handle.register
def _(
    cmd: c.RegisterFacility, uow: UnitOfWork, principal: Principal, now: datetime
) -> dict[str, Any]:
    owner = actor(uow, cmd.owner, "owner")
    principal.acts_for(owner.id, "owner", f"actor {owner.code}")
    facility_code = code(cmd.code, "code")
    kind = one_of(FacilityKind, cmd.kind, "kind", "facility-kind")
    id = ids.facility_id(facility_code)
    uow.require_new(id, "code", f"facility {facility_code}")
    new = Facility.register(
        id, facility_code, cmd.name, kind, owner, cmd.country, cmd.location, principal.id, now
    )
    uow.add(new)
    return {"event": "FacilityRegistered", "facility_id": str(id), "code": facility_code}


@handle.register
def _(cmd: c.IssueLicence, uow: UnitOfWork, principal: Principal, now: datetime) -> dict[str, Any]:
    principal.require(Role.REGULATOR, Role.ADMIN)
    number = code(cmd.number, "number")
    kind = one_of(LicenceKind, cmd.kind, "kind", "licence-kind")
    holder = actor(uow, cmd.holder, "holder")
    consignee = actor(uow, cmd.consignee, "consignee") if cmd.consignee else None
    id = ids.licence_id(number)
    uow.require_new(id, "number", f"licence {number}")
    aware(cmd.valid_from, "valid_from")
    aware(cmd.valid_until, "valid_until")
    new = Licence.issue(
        id,
        number,
        kind,
        holder.id,
        cmd.max_kg,
        cmd.valid_from,
        cmd.valid_until,
        principal.id,
        now,
        items=cmd.items,
        consignee_id=consignee.id if consignee else None,
        end_user=cmd.end_user,
        end_use=cmd.end_use,
        destination_country=cmd.destination_country,
        contract=cmd.contract,
    )
    uow.add(new)
    return {"event": "LicenceIssued", "licence_id": str(id), "number": number, "kind": kind.value}


@handle.register
def _(
    cmd: c.IssueCredential, uow: UnitOfWork, principal: Principal, now: datetime
) -> dict[str, Any]:
    principal.require(Role.ADMIN)
    if not KEY_HASH.match(cmd.key_hash):
        raise InvalidInput("key_hash", "sha256-hex", "64 lower-case hex digits")
    role = one_of(Role, cmd.role, "role", "role")
    holder = actor(uow, cmd.actor, "actor") if cmd.actor else None
    if (role is Role.OPERATOR) != (holder is not None):
        raise InvalidInput(
            "actor", "operator-actor", "an operator key names its actor; other roles name none"
        )
    id = ids.credential_id(cmd.key_hash)
    uow.require_new(id, "key", "a credential with this key")
    uow.add(Credential.issue(id, role, holder.id if holder else None, cmd.label, principal.id))
    return {"event": "CredentialIssued", "credential_id": str(id), "role": role.value}


@handle.register
def _(
    cmd: c.RevokeCredential, uow: UnitOfWork, principal: Principal, now: datetime
) -> dict[str, Any]:
    principal.require(Role.ADMIN)
    try:
        id = UUID(cmd.credential_id)
    except ValueError:
        raise InvalidInput("credential_id", "uuid", "not a credential id") from None
    credential = uow.get(Credential, id, "", "credential")
    if credential.revoked:
        raise InvalidInput("credential_id", "not-revoked", "already revoked")
    credential.revoke(principal.id, cmd.reason)
    return {"event": "CredentialRevoked", "credential_id": str(id)}


@handle.register
def _(cmd: c.ExtractOre, uow: UnitOfWork, principal: Principal, now: datetime) -> dict[str, Any]:
    s = step(uow, principal, cmd, now)
    new_batch(uow, s, cmd.lot_code, "lot_code")
    quota = licence(uow, cmd.quota, "quota")
    b = chain.extract_ore(
        s,
        facility(uow, cmd.facility, "facility"),
        quota,
        cmd.lot_code,
        cmd.mass_kg,
        cmd.composition,
    )
    uow.add(b, quota)
    return answer(
        "OreExtracted", b, reo_kg=reo_kg(b.initial_kg, b.composition), mass_kg=b.initial_kg
    )


@handle.register
def _(cmd: c.CollectScrap, uow: UnitOfWork, principal: Principal, now: datetime) -> dict[str, Any]:
    s = step(uow, principal, cmd, now)
    new_batch(uow, s, cmd.lot_code, "lot_code")
    b = chain.collect_scrap(
        s,
        facility(uow, cmd.facility, "facility"),
        cmd.lot_code,
        cmd.mass_kg,
        cmd.composition,
        cmd.source,
    )
    uow.add(b)
    return answer("ScrapCollected", b, mass_kg=b.initial_kg)


@handle.register
def _(cmd: c.Transform, uow: UnitOfWork, principal: Principal, now: datetime) -> dict[str, Any]:
    s = step(uow, principal, cmd, now)
    if not cmd.reference.strip():
        raise InvalidInput(
            "reference", "required", "give the step a reference (work order, campaign)"
        )
    record_id = ids.transformation_id(s.actor.id, cmd.reference)
    uow.require_new(record_id, "reference", f"transformation {cmd.reference}")
    for n, out in enumerate(cmd.outputs):
        new_batch(uow, s, out.lot_code, f"outputs[{n}].lot_code")
    inputs = [
        (batch(uow, ref, s.actor.id, f"inputs[{n}].batch"), kg)
        for n, (ref, kg) in enumerate(cmd.inputs)
    ]
    quota = licence(uow, cmd.quota, "quota") if cmd.quota else None
    record, changed = chain.transform(
        s,
        facility(uow, cmd.facility, "facility"),
        cmd.process,
        cmd.reference,
        inputs,
        cmd.outputs,
        cmd.untraced_inputs,
        cmd.tolerance,
        quota,
    )
    uow.add(record, *changed)
    return {
        "event": "BatchTransformed",
        "transformation_id": str(record.id),
        "outputs": [f"{s.actor.code}/{o['lot_code']}" for o in record.outputs],
        "output_ids": [str(o["batch_id"]) for o in record.outputs],
    }


@handle.register
def _(cmd: c.Split, uow: UnitOfWork, principal: Principal, now: datetime) -> dict[str, Any]:
    s = step(uow, principal, cmd, now)
    for n, (lot, _) in enumerate(cmd.parts):
        new_batch(uow, s, lot, f"parts[{n}].lot_code")
    parent = batch(uow, cmd.batch, s.actor.id, "batch")
    changed = chain.split(s, parent, cmd.parts)
    uow.add(*changed)
    return {
        "event": "BatchSplit",
        "batch_id": str(parent.id),
        "parts": [f"{s.actor.code}/{b.lot_code}" for b in changed[1:]],
        "part_ids": [str(b.id) for b in changed[1:]],
        "remaining_kg": _text(parent.remaining_kg),
    }


@handle.register
def _(cmd: c.Merge, uow: UnitOfWork, principal: Principal, now: datetime) -> dict[str, Any]:
    s = step(uow, principal, cmd, now)
    new_batch(uow, s, cmd.lot_code, "lot_code")
    inputs = [
        (batch(uow, ref, s.actor.id, f"inputs[{n}].batch"), kg)
        for n, (ref, kg) in enumerate(cmd.inputs)
    ]
    changed = chain.merge(s, cmd.lot_code, inputs)
    uow.add(*changed)
    merged = changed[0]
    return answer("BatchesMerged", merged, mass_kg=merged.initial_kg)


@handle.register
def _(
    cmd: c.TransferCustody, uow: UnitOfWork, principal: Principal, now: datetime
) -> dict[str, Any]:
    s = step(uow, principal, cmd, now)
    b = batch(uow, cmd.batch, s.actor.id, "batch")
    buyer = actor(uow, cmd.buyer, "buyer")
    to = facility(uow, cmd.to_facility, "to_facility") if cmd.to_facility else None
    chain.transfer_custody(s, b, buyer, cmd.contract, to, cmd.price, cmd.currency)
    return answer("CustodyTransferred", b, buyer=buyer.code, volume_kg=b.remaining_kg)


@handle.register
def _(cmd: c.MoveBatch, uow: UnitOfWork, principal: Principal, now: datetime) -> dict[str, Any]:
    s = step(uow, principal, cmd, now)
    b = batch(uow, cmd.batch, s.actor.id, "batch")
    to = facility(uow, cmd.to_facility, "to_facility")
    chain.move(s, b, to)
    return answer("BatchMoved", b, to_facility=to.code)


@handle.register
def _(
    cmd: c.ExportShipment, uow: UnitOfWork, principal: Principal, now: datetime
) -> dict[str, Any]:
    s = step(uow, principal, cmd, now)
    b = batch(uow, cmd.batch, s.actor.id, "batch")
    lic = licence(uow, cmd.licence, "licence")
    consignee = actor(uow, cmd.consignee, "consignee")
    chain.export_shipment(
        s, b, lic, consignee, cmd.destination_country, cmd.end_user, cmd.customs_code
    )
    return answer(
        "ShipmentExported",
        b,
        licence=lic.number,
        kg=b.remaining_kg,
        licence_remaining_kg=lic.remaining_kg,
    )


@handle.register
def _(
    cmd: c.ReceiveShipment, uow: UnitOfWork, principal: Principal, now: datetime
) -> dict[str, Any]:
    s = step(uow, principal, cmd, now)
    b = batch(uow, cmd.batch, None, "batch")
    chain.receive_shipment(s, b, facility(uow, cmd.facility, "facility"), cmd.received_kg)
    return answer("ShipmentReceived", b, received_kg=b.remaining_kg)


@handle.register
def _(cmd: c.Quarantine, uow: UnitOfWork, principal: Principal, now: datetime) -> dict[str, Any]:
    b = batch(uow, cmd.batch, principal.actor, "batch")
    chain.quarantine(principal, b, cmd.reason, _at(cmd, now, uow, principal))
    return answer("BatchQuarantined", b)


@handle.register
def _(cmd: c.Release, uow: UnitOfWork, principal: Principal, now: datetime) -> dict[str, Any]:
    b = batch(uow, cmd.batch, principal.actor, "batch")
    chain.release(principal, b, cmd.reason, _at(cmd, now, uow, principal))
    return answer("BatchReleased", b)


@handle.register
def _(cmd: c.CorrectEvent, uow: UnitOfWork, principal: Principal, now: datetime) -> dict[str, Any]:
    b = batch(uow, cmd.batch, principal.actor, "batch")
    history = uow.history(b)
    target = history[cmd.version - 1] if 1 <= cmd.version <= len(history) else None
    reporter_actor = _reporting_actor(uow, history, cmd.version)
    quota = None
    if isinstance(target, Batch.OreExtracted):
        quota = uow.get(Licence, target.quota_id, "version", "the quota the extraction drew")
    chain.correct(
        principal,
        b,
        history,
        cmd.version,
        cmd.reason,
        cmd.facts,
        cmd.note,
        now,
        reporter_actor,
        quota,
    )
    return answer("Corrected", b, corrects_version=cmd.version)


def _reporting_actor(uow: UnitOfWork, history: list[Any], version: int) -> UUID | None:
    """The company event ``version`` was reported for: named in a creation; the seller,
    exporter or receiver a sale, export or receipt names; the custodian that made a
    move; else (a hold) the company of the credential that reported it. A step an admin
    reported for a company is that company's to correct, as if it had reported it."""
    if not 1 <= version <= len(history):
        return None
    event = history[version - 1]
    if isinstance(event, Batch.Created):
        return event.actor_id
    for party in ("seller_id", "exporter_id", "receiver_id"):
        if isinstance(found := getattr(event, party, None), UUID):
            return found
    if isinstance(event, Batch.BatchMoved):
        before: Any = None
        for earlier in history[: version - 1]:
            before = earlier.mutate(before)
        return before.custodian_id if before is not None else None
    try:
        credential_id = UUID(event.reported_by)
    except ValueError:
        return None  # a built-in admin principal
    credential = uow.find(Credential, credential_id)
    return credential.actor_id if credential is not None else None


def _at(cmd: c.Step, now: datetime, uow: UnitOfWork, principal: Principal) -> datetime:
    if cmd.actor is not None:
        # Holds are reported by the custodian (for itself) or an authority; naming
        # another company is refused as for every other step.
        named = actor(uow, cmd.actor, "actor")
        principal.acts_for(named.id, "actor", f"actor {named.code}")
    return values.occurred(cmd.occurred_at or now, now, "occurred_at")
