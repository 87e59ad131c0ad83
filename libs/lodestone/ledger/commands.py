"""Commands: plain, frozen requests to the ledger, one per step a supply-chain actor
reports, each with its handler. References are natural keys (actor and facility codes,
licence numbers, ``ACTOR/LOT`` batch references or batch UUIDs); the handler resolves
them, calls the domain and stages what changed; the ledger saves it.

A command class is the whole of a command on the ledger's side: its fields, the roles
that may submit it (``submitters``, which the gateway checks early too) and its handler
(``handle``). Nothing else dispatches on command types.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar
from uuid import UUID

from lodestone.domain import chain, ids, values
from lodestone.domain.access import Credential, Principal, Role
from lodestone.domain.actors import Actor, Facility
from lodestone.domain.anomalies import AnomalyReview
from lodestone.domain.batches import Batch
from lodestone.domain.chain import OutputSpec, UntracedInput
from lodestone.domain.licences import Licence, LicenceKind
from lodestone.domain.refusals import Conflict, Forbidden, InvalidInput, Refusal
from lodestone.domain.values import FacilityKind, aware, one_of, reo_kg
from lodestone.ledger import handlers as h
from lodestone.ledger.unit_of_work import UnitOfWork

KEY_HASH = re.compile(r"\A[0-9a-f]{64}\Z")
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

Answer = dict[str, Any]


@dataclass(frozen=True)
class Command:
    #: The roles that may submit it at all; the handler checks the finer rules
    #: (ownership, custody, who placed a hold).
    submitters: ClassVar[tuple[Role, ...]]

    def handle(self, uow: UnitOfWork, principal: Principal, now: datetime) -> Answer:
        raise NotImplementedError(type(self).__name__)

    def new_ids(self, principal: Principal) -> tuple[UUID, ...]:
        """The ids this command will require to be new, as far as they are known before
        it runs: the group writer asks the store about a whole group's in one query. A
        hint only: ``handle`` still checks each (an id left out costs one query then)."""
        return ()


# --- the registry -----------------------------------------------------------------------


@dataclass(frozen=True)
class RegisterActor(Command):
    submitters = (Role.ADMIN,)

    code: str
    name: str
    country: str
    roles: list[str] = field(default_factory=list)

    def handle(self, uow: UnitOfWork, principal: Principal, now: datetime) -> Answer:
        principal.require(*self.submitters)
        actor_code = h.code(self.code, "code")
        unknown = sorted(set(self.roles) - ACTOR_ROLES)
        if unknown:
            raise InvalidInput(
                "roles",
                "actor-role",
                f"{', '.join(unknown)}: not one of {', '.join(sorted(ACTOR_ROLES))}",
            )
        id = ids.actor_id(actor_code)
        uow.require_new(id, "code", f"actor {actor_code}")
        new = Actor.register(id, actor_code, self.name, self.country, self.roles, principal.id, now)
        uow.add(new)
        return {"event": "ActorRegistered", "actor_id": str(id), "code": actor_code}


@dataclass(frozen=True)
class RegisterFacility(Command):
    # An operator registers its own facilities only: ``handle`` checks the owner.
    submitters = (Role.ADMIN, Role.OPERATOR)

    code: str
    name: str
    kind: str
    owner: str
    country: str
    location: str = ""

    def handle(self, uow: UnitOfWork, principal: Principal, now: datetime) -> Answer:
        owner = h.actor(uow, self.owner, "owner")
        principal.acts_for(owner.id, "owner", f"actor {owner.code}")
        facility_code = h.code(self.code, "code")
        kind = one_of(FacilityKind, self.kind, "kind", "facility-kind")
        id = ids.facility_id(facility_code)
        uow.require_new(id, "code", f"facility {facility_code}")
        new = Facility.register(
            id,
            facility_code,
            self.name,
            kind,
            owner,
            self.country,
            self.location,
            principal.id,
            now,
        )
        uow.add(new)
        return {"event": "FacilityRegistered", "facility_id": str(id), "code": facility_code}


@dataclass(frozen=True)
class IssueLicence(Command):
    submitters = (Role.REGULATOR, Role.ADMIN)

    number: str
    kind: str
    holder: str
    max_kg: object
    valid_from: datetime
    valid_until: datetime
    items: list[dict[str, Any]] = field(default_factory=list)
    consignee: str | None = None
    end_user: str = ""
    end_use: str = ""
    destination_country: str = ""
    contract: str = ""

    def handle(self, uow: UnitOfWork, principal: Principal, now: datetime) -> Answer:
        principal.require(*self.submitters)
        number = h.code(self.number, "number")
        kind = one_of(LicenceKind, self.kind, "kind", "licence-kind")
        holder = h.actor(uow, self.holder, "holder")
        consignee = h.actor(uow, self.consignee, "consignee") if self.consignee else None
        id = ids.licence_id(number)
        uow.require_new(id, "number", f"licence {number}")
        aware(self.valid_from, "valid_from")
        aware(self.valid_until, "valid_until")
        new = Licence.issue(
            id,
            number,
            kind,
            holder.id,
            self.max_kg,
            self.valid_from,
            self.valid_until,
            principal.id,
            now,
            items=self.items,
            consignee_id=consignee.id if consignee else None,
            end_user=self.end_user,
            end_use=self.end_use,
            destination_country=self.destination_country,
            contract=self.contract,
        )
        uow.add(new)
        return {
            "event": "LicenceIssued",
            "licence_id": str(id),
            "number": number,
            "kind": kind.value,
        }


@dataclass(frozen=True)
class IssueCredential(Command):
    """The key itself never reaches the ledger: only its SHA-256."""

    submitters = (Role.ADMIN,)

    key_hash: str
    role: str
    actor: str | None = None
    label: str = ""
    expires_at: datetime | None = None

    def handle(self, uow: UnitOfWork, principal: Principal, now: datetime) -> Answer:
        principal.require(*self.submitters)
        if not KEY_HASH.match(self.key_hash):
            raise InvalidInput("key_hash", "sha256-hex", "64 lower-case hex digits")
        role = one_of(Role, self.role, "role", "role")
        holder = h.actor(uow, self.actor, "actor") if self.actor else None
        if (role is Role.OPERATOR) != (holder is not None):
            raise InvalidInput(
                "actor", "operator-actor", "an operator key names its actor; other roles name none"
            )
        if self.expires_at is not None:
            aware(self.expires_at, "expires_at")
            if self.expires_at <= now:
                raise InvalidInput(
                    "expires_at", "in-future", "a key cannot expire before it is issued"
                )
        id = ids.credential_id(self.key_hash)
        uow.require_new(id, "key", "a credential with this key")
        credential = Credential.issue(
            id, role, holder.id if holder else None, self.label, principal.id
        )
        if self.expires_at is not None:
            credential.expire(self.expires_at, principal.id)
        uow.add(credential)
        answer: Answer = {"event": "CredentialIssued", "credential_id": str(id), "role": role.value}
        if self.expires_at is not None:
            answer["expires_at"] = self.expires_at.isoformat()
        return answer


#: How long a rotated key stays valid beside its successor, at most.
MAX_GRACE = timedelta(days=30)


@dataclass(frozen=True)
class RotateCredential(Command):
    """A new key for the same principal (role, actor, label); the old key stays valid
    for ``grace`` (clients switch over without an outage), then is refused. An admin may
    rotate any key; any principal its own."""

    submitters = tuple(Role)

    credential_id: str
    key_hash: str
    grace: timedelta = timedelta(days=1)

    def handle(self, uow: UnitOfWork, principal: Principal, now: datetime) -> Answer:
        try:
            old_id = UUID(self.credential_id)
        except ValueError:
            raise InvalidInput("credential_id", "uuid", "not a credential id") from None
        if principal.role is not Role.ADMIN and principal.id != str(old_id):
            raise Forbidden("credential_id", "ownership", "a principal rotates its own key only")
        if not KEY_HASH.match(self.key_hash):
            raise InvalidInput("key_hash", "sha256-hex", "64 lower-case hex digits")
        if not timedelta(0) <= self.grace <= MAX_GRACE:
            raise InvalidInput("grace_seconds", "grace-bounded", f"from 0 to {MAX_GRACE.days} days")
        old = uow.get(Credential, old_id, "", "credential")
        if not old.valid_at(now):
            raise Conflict(
                "credential_id", "credential-valid", "a revoked or expired key is not rotated"
            )
        if old.successor_id is not None:
            raise Conflict("credential_id", "not-rotated", "this key was rotated already")
        new_id = ids.credential_id(self.key_hash)
        uow.require_new(new_id, "key", "a credential with this key")
        successor = Credential.issue(new_id, old.role, old.actor_id, old.label, principal.id)
        until = now + self.grace
        if old.expires_at is not None:
            successor.expire(old.expires_at, principal.id)  # rotation extends nothing
            until = min(until, old.expires_at)
        old.expire(until, principal.id, successor_id=new_id)
        uow.add(successor, old)
        return {
            "event": "CredentialRotated",
            "credential_id": str(new_id),
            "role": old.role.value,
            "replaces": str(old_id),
            "replaced_expires_at": until.isoformat(),
        }


@dataclass(frozen=True)
class RevokeCredential(Command):
    submitters = (Role.ADMIN,)

    credential_id: str
    reason: str

    def handle(self, uow: UnitOfWork, principal: Principal, now: datetime) -> Answer:
        principal.require(*self.submitters)
        try:
            id = UUID(self.credential_id)
        except ValueError:
            raise InvalidInput("credential_id", "uuid", "not a credential id") from None
        credential = uow.get(Credential, id, "", "credential")
        if credential.revoked:
            raise InvalidInput("credential_id", "not-revoked", "already revoked")
        credential.revoke(principal.id, self.reason)
        return {"event": "CredentialRevoked", "credential_id": str(id)}


# --- steps of the chain -----------------------------------------------------------------


@dataclass(frozen=True)
class ReportStep(Command):
    """A step of the chain, reported for ``actor`` (operators may leave it out: their
    own) at ``occurred_at`` (by default, when it is recorded)."""

    submitters: ClassVar[tuple[Role, ...]] = (Role.OPERATOR, Role.ADMIN)

    occurred_at: datetime | None = field(default=None, kw_only=True)
    actor: str | None = field(default=None, kw_only=True)

    def new_lots(self) -> tuple[str, ...]:
        """The lot codes of the batches this step makes."""
        return ()

    def new_ids(self, principal: Principal) -> tuple[UUID, ...]:
        try:
            actor = ids.actor_id(h.code(self.actor, "actor")) if self.actor else principal.actor
            if actor is None:
                return ()
            return tuple(ids.batch_id(actor, values.lot_code(lot, "")) for lot in self.new_lots())
        except Refusal:
            return ()  # not a valid reference: ``handle`` says so, naming the field


@dataclass(frozen=True)
class ExtractOre(ReportStep):
    facility: str
    quota: str
    lot_code: str
    mass_kg: object
    composition: dict[str, object]

    def new_lots(self) -> tuple[str, ...]:
        return (self.lot_code,)

    def handle(self, uow: UnitOfWork, principal: Principal, now: datetime) -> Answer:
        s = h.step_context(uow, principal, self, now)
        h.new_batch(uow, s, self.lot_code, "lot_code")
        quota = h.licence(uow, self.quota, "quota")
        b = chain.extract_ore(
            s,
            h.facility(uow, self.facility, "facility"),
            quota,
            self.lot_code,
            self.mass_kg,
            self.composition,
        )
        uow.add(b, quota)
        return h.answer(
            "OreExtracted", b, reo_kg=reo_kg(b.initial_kg, b.composition), mass_kg=b.initial_kg
        )


@dataclass(frozen=True)
class CollectScrap(ReportStep):
    facility: str
    lot_code: str
    mass_kg: object
    composition: dict[str, object]
    source: str

    def new_lots(self) -> tuple[str, ...]:
        return (self.lot_code,)

    def handle(self, uow: UnitOfWork, principal: Principal, now: datetime) -> Answer:
        s = h.step_context(uow, principal, self, now)
        h.new_batch(uow, s, self.lot_code, "lot_code")
        b = chain.collect_scrap(
            s,
            h.facility(uow, self.facility, "facility"),
            self.lot_code,
            self.mass_kg,
            self.composition,
            self.source,
        )
        uow.add(b)
        return h.answer("ScrapCollected", b, mass_kg=b.initial_kg)


@dataclass(frozen=True)
class Transform(ReportStep):
    facility: str
    process: str
    reference: str
    inputs: list[tuple[str, object]]
    outputs: list[OutputSpec]
    untraced_inputs: list[UntracedInput] = field(default_factory=list)
    tolerance: object | None = None
    quota: str | None = None

    def new_lots(self) -> tuple[str, ...]:
        return tuple(out.lot_code for out in self.outputs)

    def handle(self, uow: UnitOfWork, principal: Principal, now: datetime) -> Answer:
        s = h.step_context(uow, principal, self, now)
        if not self.reference.strip():
            raise InvalidInput(
                "reference", "required", "give the step a reference (work order, campaign)"
            )
        record_id = ids.transformation_id(s.actor.id, self.reference)
        uow.require_new(record_id, "reference", f"transformation {self.reference}")
        for n, out in enumerate(self.outputs):
            h.new_batch(uow, s, out.lot_code, f"outputs[{n}].lot_code")
        inputs = [
            (h.batch(uow, ref, s.actor.id, f"inputs[{n}].batch"), kg)
            for n, (ref, kg) in enumerate(self.inputs)
        ]
        quota = h.licence(uow, self.quota, "quota") if self.quota else None
        record, changed = chain.transform(
            s,
            h.facility(uow, self.facility, "facility"),
            self.process,
            self.reference,
            inputs,
            self.outputs,
            self.untraced_inputs,
            self.tolerance,
            quota,
        )
        uow.add(record, *changed)
        return {
            "event": "BatchTransformed",
            "transformation_id": str(record.id),
            "outputs": [f"{s.actor.code}/{o['lot_code']}" for o in record.outputs],
            "output_ids": [str(o["batch_id"]) for o in record.outputs],
        }


@dataclass(frozen=True)
class Split(ReportStep):
    batch: str
    parts: list[tuple[str, object]]

    def new_lots(self) -> tuple[str, ...]:
        return tuple(lot for lot, _ in self.parts)

    def handle(self, uow: UnitOfWork, principal: Principal, now: datetime) -> Answer:
        s = h.step_context(uow, principal, self, now)
        for n, (lot, _) in enumerate(self.parts):
            h.new_batch(uow, s, lot, f"parts[{n}].lot_code")
        parent = h.batch(uow, self.batch, s.actor.id, "batch")
        changed = chain.split(s, parent, self.parts)
        uow.add(*changed)
        return {
            "event": "BatchSplit",
            "batch_id": str(parent.id),
            "parts": [f"{s.actor.code}/{b.lot_code}" for b in changed[1:]],
            "part_ids": [str(b.id) for b in changed[1:]],
            "remaining_kg": h.text(parent.remaining_kg),
        }


@dataclass(frozen=True)
class Merge(ReportStep):
    lot_code: str
    inputs: list[tuple[str, object]]

    def new_lots(self) -> tuple[str, ...]:
        return (self.lot_code,)

    def handle(self, uow: UnitOfWork, principal: Principal, now: datetime) -> Answer:
        s = h.step_context(uow, principal, self, now)
        h.new_batch(uow, s, self.lot_code, "lot_code")
        inputs = [
            (h.batch(uow, ref, s.actor.id, f"inputs[{n}].batch"), kg)
            for n, (ref, kg) in enumerate(self.inputs)
        ]
        changed = chain.merge(s, self.lot_code, inputs)
        uow.add(*changed)
        merged = changed[0]
        return h.answer("BatchesMerged", merged, mass_kg=merged.initial_kg)


@dataclass(frozen=True)
class TransferCustody(ReportStep):
    batch: str
    buyer: str
    contract: str
    to_facility: str | None = None
    price: object | None = None
    currency: str = ""

    def handle(self, uow: UnitOfWork, principal: Principal, now: datetime) -> Answer:
        s = h.step_context(uow, principal, self, now)
        b = h.batch(uow, self.batch, s.actor.id, "batch")
        buyer = h.actor(uow, self.buyer, "buyer")
        to = h.facility(uow, self.to_facility, "to_facility") if self.to_facility else None
        chain.transfer_custody(s, b, buyer, self.contract, to, self.price, self.currency)
        return h.answer("CustodyTransferred", b, buyer=buyer.code, volume_kg=b.remaining_kg)


@dataclass(frozen=True)
class MoveBatch(ReportStep):
    batch: str
    to_facility: str

    def handle(self, uow: UnitOfWork, principal: Principal, now: datetime) -> Answer:
        s = h.step_context(uow, principal, self, now)
        b = h.batch(uow, self.batch, s.actor.id, "batch")
        to = h.facility(uow, self.to_facility, "to_facility")
        chain.move(s, b, to)
        return h.answer("BatchMoved", b, to_facility=to.code)


@dataclass(frozen=True)
class ExportShipment(ReportStep):
    batch: str
    consignee: str
    destination_country: str
    end_user: str
    customs_code: str
    shipment: str = ""
    licence: str | None = None  # uncontrolled goods may ship without one

    def handle(self, uow: UnitOfWork, principal: Principal, now: datetime) -> Answer:
        s = h.step_context(uow, principal, self, now)
        b = h.batch(uow, self.batch, s.actor.id, "batch")
        lic = h.licence(uow, self.licence, "licence") if self.licence is not None else None
        consignee = h.actor(uow, self.consignee, "consignee")
        chain.export_shipment(
            s,
            b,
            lic,
            consignee,
            self.destination_country,
            self.end_user,
            self.customs_code,
            self.shipment,
            uow.controls,
        )
        return h.answer(
            "ShipmentExported",
            b,
            shipment=self.shipment,
            controlled=str(bool((b.export or {}).get("controlled"))).lower(),
            licence=lic.number if lic is not None else None,
            kg=b.remaining_kg,
            licence_remaining_kg=lic.remaining_kg if lic is not None else None,
        )


@dataclass(frozen=True)
class ReceiveShipment(ReportStep):
    batch: str
    facility: str
    received_kg: object | None = None
    shipment: str | None = None

    def handle(self, uow: UnitOfWork, principal: Principal, now: datetime) -> Answer:
        s = h.step_context(uow, principal, self, now)
        b = h.batch(uow, self.batch, None, "batch")
        facility = h.facility(uow, self.facility, "facility")
        shipped_as = (b.export or {}).get("shipment")
        chain.receive_shipment(s, b, facility, self.received_kg, self.shipment)
        return h.answer(
            "ShipmentReceived", b, received_kg=b.remaining_kg, shipment=self.shipment or shipped_as
        )


@dataclass(frozen=True)
class ChangeHold(ReportStep):
    """A hold placed or lifted: by the custodian on its own batch, or by a regulator or
    admin; a regulator's hold is lifted by a regulator or admin only (the domain checks)."""

    submitters = (Role.OPERATOR, Role.REGULATOR, Role.ADMIN)

    batch: str
    reason: str


@dataclass(frozen=True)
class Quarantine(ChangeHold):
    def handle(self, uow: UnitOfWork, principal: Principal, now: datetime) -> Answer:
        b = h.batch(uow, self.batch, principal.actor, "batch")
        chain.quarantine(principal, b, self.reason, h.hold_time(uow, principal, self, now))
        return h.answer("BatchQuarantined", b)


@dataclass(frozen=True)
class Release(ChangeHold):
    def handle(self, uow: UnitOfWork, principal: Principal, now: datetime) -> Answer:
        b = h.batch(uow, self.batch, principal.actor, "batch")
        chain.release(principal, b, self.reason, h.hold_time(uow, principal, self, now))
        return h.answer("BatchReleased", b)


@dataclass(frozen=True)
class CorrectEvent(Command):
    """A correction of one earlier event of a batch (its ``version``)."""

    # The reporting actor, a regulator or an admin (the domain checks which).
    submitters = (Role.OPERATOR, Role.REGULATOR, Role.ADMIN)

    batch: str
    version: int
    reason: str  # incorrect-data | did-not-occur
    facts: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    def handle(self, uow: UnitOfWork, principal: Principal, now: datetime) -> Answer:
        b = h.batch(uow, self.batch, principal.actor, "batch")
        history = uow.history(b)
        target = history[self.version - 1] if 1 <= self.version <= len(history) else None
        reporter_actor = h.reporting_actor(uow, history, self.version)
        quota = None
        if isinstance(target, Batch.OreExtracted):
            quota = uow.get(Licence, target.quota_id, "version", "the quota the extraction drew")
        chain.correct(
            principal,
            b,
            history,
            self.version,
            self.reason,
            self.facts,
            self.note,
            now,
            reporter_actor,
            quota,
        )
        return h.answer("Corrected", b, corrects_version=self.version)


# --- oversight ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewAnomaly(Command):
    """An analyst or a regulator acknowledges, dismisses or reopens an anomaly of the
    anomalies read model, with a note saying why. The gateway finds the anomaly in the
    read model first (an unknown one is refused there) and passes on its rule."""

    submitters = (Role.ANALYST, Role.REGULATOR, Role.ADMIN)

    anomaly_id: str
    rule: str
    status: str  # acknowledged | dismissed | open
    note: str

    def handle(self, uow: UnitOfWork, principal: Principal, now: datetime) -> Answer:
        principal.require(*self.submitters, field="status")
        try:
            anomaly = str(UUID(self.anomaly_id))
        except ValueError:
            raise InvalidInput("anomaly_id", "uuid", "not an anomaly id") from None
        id = ids.anomaly_review_id(anomaly)
        review = uow.find(AnomalyReview, id)
        if review is None:
            review = AnomalyReview.start(
                id, anomaly, self.rule, self.status, self.note, principal, now
            )
            uow.add(review)
        else:
            review.review(self.status, self.note, principal, now)
        return {"event": "AnomalyReviewed", "anomaly_id": anomaly, "status": review.status.value}
