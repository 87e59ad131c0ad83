"""The steps of the chain: each checks every invariant first, then records its events.

These are the domain's commands across aggregates. They receive loaded aggregates and
return the new ones; the ledger loads, calls one of these and saves everything touched
in one transaction. Nothing here reads or writes storage.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from lodestone.domain import ids, values
from lodestone.domain.access import Principal, Role
from lodestone.domain.actors import Actor, Facility, country
from lodestone.domain.batches import Batch, Status, Transformation
from lodestone.domain.licences import Licence, LicenceKind
from lodestone.domain.refusals import Conflict, Forbidden, InvalidInput, RuleBroken
from lodestone.domain.values import (
    CUSTOMS_HEADINGS,
    EXACT,
    MAX_TOLERANCE,
    ONE,
    PROCESS_RULES,
    RARE_EARTHS,
    TARIFF_CODE,
    ZERO,
    ExportControls,
    FacilityKind,
    Material,
    Process,
    blend,
    composition,
    fraction,
    lot_code,
    mass,
    occurred,
    one_of,
    reo_kg,
    tariff_covers,
)
from lodestone.domain.values import price as total_price


@dataclass(frozen=True)
class StepContext:
    """Who reports a step, for which actor, when it happened and the server's now."""

    principal: Principal
    actor: Actor
    occurred_at: datetime
    now: datetime

    def __post_init__(self) -> None:
        self.principal.acts_for(self.actor.id, "actor", f"actor {self.actor.code}")
        occurred(self.occurred_at, self.now, "occurred_at")

    @property
    def by(self) -> str:
        return self.principal.id


@dataclass(frozen=True)
class OutputSpec:
    lot_code: str
    material: str
    mass_kg: object
    composition: Mapping[str, object]


@dataclass(frozen=True)
class UntracedInput:
    name: str
    mass_kg: object
    composition: Mapping[str, object] = field(default_factory=dict)


def _own_facility(step: StepContext, facility: Facility, field: str) -> None:
    if facility.owner_id != step.actor.id:
        raise Forbidden(
            field, "facility-owner", f"facility {facility.code} belongs to another actor"
        )


def _new_batch(
    step: StepContext, event_class: type[Batch.Created], code: str, **facts: Any
) -> Batch:
    """The batch id is the uuid5 of the reporter's lot code: a second batch under the
    same code collides in the store instead of shadowing the first."""
    return Batch._create(
        event_class,
        id=ids.batch_id(step.actor.id, code),
        lot_code=code,
        actor_id=step.actor.id,
        actor_code=step.actor.code,
        reported_by=step.by,
        occurred_at=step.occurred_at,
        **facts,
    )


def _ore_composition(comp: Mapping[str, object], field: str) -> dict[str, Decimal]:
    shares = composition(comp, field)
    if not any(e in RARE_EARTHS for e in shares):
        raise InvalidInput(field, "rare-earth-content", "ore must declare its rare-earth content")
    return shares


def extract_ore(
    step: StepContext,
    facility: Facility,
    quota: Licence,
    code: str,
    mass_kg: object,
    comp: Mapping[str, object],
) -> Batch:
    """Ore leaves a mine under a mining quota, which its REO content draws down."""
    _own_facility(step, facility, "facility")
    if facility.kind is not FacilityKind.MINE:
        raise RuleBroken(
            "facility", "facility-kind", f"ore is extracted at a mine, not a {facility.kind.value}"
        )
    kg = mass(mass_kg, "mass_kg")
    shares = _ore_composition(comp, "composition")
    reo = reo_kg(kg, shares)
    quota.check_draw(LicenceKind.MINING_QUOTA, step.actor.id, reo, step.occurred_at, "quota")
    batch = _new_batch(
        step,
        Batch.OreExtracted,
        lot_code(code, "lot_code"),
        facility_id=facility.id,
        material=Material.ORE.value,
        mass_kg=kg,
        composition=shares,
        quota_id=quota.id,
        country=facility.country,
        reo_kg=reo,
    )
    quota.draw(reo, batch.id, "extraction", step.by, step.occurred_at)
    return batch


def collect_scrap(
    step: StepContext,
    facility: Facility,
    code: str,
    mass_kg: object,
    comp: Mapping[str, object],
    source: str,
) -> Batch:
    """Recycled feed from outside the ledger (end-of-life magnets, old swarf): a
    legitimate origin of its own, traceable as such."""
    _own_facility(step, facility, "facility")
    if facility.kind not in PROCESS_RULES[Process.RECYCLING].facilities | {FacilityKind.WAREHOUSE}:
        raise RuleBroken(
            "facility",
            "facility-kind",
            f"scrap is collected at a recycling-capable plant, not a {facility.kind.value}",
        )
    if not source.strip():
        raise InvalidInput("source", "required", "say where the scrap comes from")
    return _new_batch(
        step,
        Batch.ScrapCollected,
        lot_code(code, "lot_code"),
        facility_id=facility.id,
        material=Material.SCRAP.value,
        mass_kg=mass(mass_kg, "mass_kg"),
        composition=composition(comp, "composition"),
        country=facility.country,
        source=source.strip(),
    )


def _check_held(step: StepContext, batch: Batch, field: str) -> None:
    """What every step the holder takes with a batch checks first."""
    batch.check_custodian(step.actor.id, field)
    batch.check_movable(field)
    batch.check_chronology(step.occurred_at, "occurred_at")


def _taken(
    step: StepContext, inputs: Sequence[tuple[Batch, object]]
) -> Iterator[tuple[str, Batch, Decimal]]:
    """Each input of a transformation or merge, named once: where it is in the request,
    the batch and the mass taken from it, checked as any input is. The caller checks
    what its step adds before the next input is looked at."""
    seen: set[UUID] = set()
    for n, (batch, kg_) in enumerate(inputs):
        where = f"inputs[{n}]"
        if batch.id in seen:
            raise InvalidInput(f"{where}.batch", "distinct-inputs", "the same batch is named twice")
        seen.add(batch.id)
        kg = mass(kg_, f"{where}.mass_kg")
        _check_held(step, batch, f"{where}.batch")
        batch.check_take(kg, f"{where}.mass_kg")
        yield where, batch, kg


def transform(
    step: StepContext,
    facility: Facility,
    process_name: str,
    reference: str,
    inputs: Sequence[tuple[Batch, object]],
    outputs: Sequence[OutputSpec],
    untraced: Sequence[UntracedInput] = (),
    tolerance: object | None = None,
    quota: Licence | None = None,
) -> tuple[Transformation, list[Batch | Licence]]:
    """Inputs become outputs. Per element, and in total, what comes out may not exceed
    what went in (traced inputs plus declared untraced ones) beyond the tolerance."""
    process = one_of(Process, process_name, "process", "process")
    rule = PROCESS_RULES[process]
    _own_facility(step, facility, "facility")
    if facility.kind not in rule.facilities:
        raise RuleBroken(
            "facility", "facility-kind", f"{process.value} does not run at a {facility.kind.value}"
        )
    if not inputs:
        raise InvalidInput("inputs", "required", "a transformation takes at least one batch")
    if not outputs:
        raise InvalidInput("outputs", "required", "a transformation makes at least one batch")
    tol = rule.default_tolerance if tolerance is None else fraction(tolerance, "tolerance")
    if tol > MAX_TOLERANCE:
        raise InvalidInput(
            "tolerance", "tolerance-bounded", f"at most {MAX_TOLERANCE} (2 %) may be declared"
        )

    taken: list[tuple[Batch, Decimal]] = []
    for where, batch, kg in _taken(step, inputs):
        if batch.facility_id != facility.id:
            raise RuleBroken(
                f"{where}.batch",
                "co-located",
                f"batch {batch.lot_code} is not at facility {facility.code}",
            )
        if batch.material not in rule.inputs:
            raise RuleBroken(
                f"{where}.batch",
                "process-input",
                f"{process.value} does not take {batch.material.value}",
            )
        taken.append((batch, kg))
    seen = {batch.id for batch, _ in taken}

    made: list[tuple[str, Material, Decimal, dict[str, Decimal]]] = []
    codes: set[str] = set()
    for n, out in enumerate(outputs):
        where = f"outputs[{n}]"
        code = lot_code(out.lot_code, f"{where}.lot_code")
        if code in codes:
            raise InvalidInput(
                f"{where}.lot_code", "distinct-outputs", f"lot code {code} is named twice"
            )
        codes.add(code)
        if ids.batch_id(step.actor.id, code) in seen:
            # An output that is also an input would make the genealogy a cycle.
            raise RuleBroken(f"{where}.lot_code", "acyclic", f"lot {code} is an input of this step")
        material = one_of(Material, out.material, f"{where}.material", "material", what="material")
        if material not in rule.outputs:
            raise RuleBroken(
                f"{where}.material",
                "process-output",
                f"{process.value} does not make {material.value}",
            )
        made.append(
            (
                code,
                material,
                mass(out.mass_kg, f"{where}.mass_kg"),
                composition(out.composition, f"{where}.composition"),
            )
        )

    extra: list[tuple[str, Decimal, dict[str, Decimal]]] = []
    for n, item in enumerate(untraced):
        where = f"untraced_inputs[{n}]"
        if not item.name.strip():
            raise InvalidInput(
                f"{where}.name", "required", "name the untraced material (e.g. iron)"
            )
        comp = composition(item.composition, f"{where}.composition") if item.composition else {}
        rare = sorted(e for e in comp if e in RARE_EARTHS)
        if rare:
            raise RuleBroken(
                f"{where}.composition",
                "rare-earths-traced",
                f"{', '.join(rare)} must enter through a traced batch, not an untraced input",
            )
        extra.append((item.name.strip(), mass(item.mass_kg, f"{where}.mass_kg"), comp))

    check_mass_balance(
        [(kg, b.composition) for b, kg in taken] + [(kg, c) for _, kg, c in extra],
        [(kg, c) for _, _, kg, c in made],
        tol,
    )

    drawn = ZERO
    if process is Process.SEPARATION:
        if quota is None:
            raise InvalidInput("quota", "required", "separation draws on a separation quota")
        drawn = sum((reo_kg(kg, c) for _, _, kg, c in made), ZERO)
        quota.check_draw(
            LicenceKind.SEPARATION_QUOTA, step.actor.id, drawn, step.occurred_at, "quota"
        )
    elif quota is not None:
        raise InvalidInput("quota", "quota-not-drawn", f"{process.value} draws on no quota")

    record_id = ids.transformation_id(step.actor.id, reference)
    input_facts = [{"batch_id": b.id, "kg": kg} for b, kg in taken]
    changed: list[Batch | Licence] = []
    outputs_facts = []
    for code, material, kg, comp in made:
        batch = _new_batch(
            step,
            Batch.Produced,
            code,
            facility_id=facility.id,
            material=material.value,
            mass_kg=kg,
            composition=comp,
            transformation_id=record_id,
            process=process.value,
            inputs=input_facts,
        )
        outputs_facts.append(
            {
                "batch_id": batch.id,
                "lot_code": code,
                "material": material.value,
                "kg": kg,
                "composition": comp,
            }
        )
        changed.append(batch)
    record = Transformation._create(
        Transformation.BatchTransformed,
        id=record_id,
        actor_id=step.actor.id,
        facility_id=facility.id,
        process=process.value,
        reference=reference,
        inputs=input_facts,
        outputs=outputs_facts,
        untraced_inputs=[{"name": n, "kg": kg, "composition": c} for n, kg, c in extra],
        tolerance=tol,
        quota_id=quota.id if quota else None,
        quota_drawn_kg=drawn,
        reported_by=step.by,
        occurred_at=step.occurred_at,
    )
    for batch, kg in taken:
        batch.trigger_event(
            Batch.Consumed,
            kg=kg,
            remaining_kg=batch.remaining_kg - kg,
            cause="transformation",
            into_id=record_id,
            reported_by=step.by,
            occurred_at=step.occurred_at,
        )
        changed.append(batch)
    if quota is not None:
        quota.draw(drawn, record_id, "separation", step.by, step.occurred_at)
        changed.append(quota)
    return record, changed


def check_mass_balance(
    inputs: Sequence[tuple[Decimal, Mapping[str, Decimal]]],
    outputs: Sequence[tuple[Decimal, Mapping[str, Decimal]]],
    tolerance: Decimal,
) -> None:
    """Per element and in total: out <= in * (1 + tolerance). A surplus is the first
    sign of undeclared (e.g. illegally mined) material entering the chain."""
    allowance = ONE + tolerance
    total_in = sum((kg for kg, _ in inputs), ZERO)
    total_out = sum((kg for kg, _ in outputs), ZERO)
    if total_out > EXACT.multiply(total_in, allowance):
        raise RuleBroken(
            "outputs",
            "mass-balance",
            f"outputs weigh {total_out} kg, more than the {total_in} kg of inputs "
            f"plus the {tolerance * 100} % tolerance",
        )
    element_in: dict[str, Decimal] = {}
    for kg, comp in inputs:
        for element, share in comp.items():
            element_in[element] = EXACT.add(
                element_in.get(element, ZERO), EXACT.multiply(kg, share)
            )
    element_out: dict[str, Decimal] = {}
    for kg, comp in outputs:
        for element, share in comp.items():
            element_out[element] = EXACT.add(
                element_out.get(element, ZERO), EXACT.multiply(kg, share)
            )
    for element in sorted(element_out):
        limit = EXACT.multiply(element_in.get(element, ZERO), allowance)
        if element_out[element] > limit:
            had = element_in.get(element, ZERO)
            raise RuleBroken(
                f"outputs.composition.{element}",
                "mass-balance",
                f"outputs carry {element_out[element].normalize():f} kg {element}, more than the "
                f"{had.normalize():f} kg in the inputs plus the {(tolerance * 100).normalize():f} % tolerance",
            )


def split(step: StepContext, batch: Batch, parts: Sequence[tuple[str, object]]) -> list[Batch]:
    """One batch becomes several; what is not split off stays with the parent."""
    if not parts:
        raise InvalidInput("parts", "required", "a split makes at least one part")
    _check_held(step, batch, "batch")
    checked: list[tuple[str, Decimal]] = []
    codes: set[str] = set()
    for n, (code, kg) in enumerate(parts):
        code = lot_code(code, f"parts[{n}].lot_code")
        if code in codes or ids.batch_id(step.actor.id, code) == batch.id:
            raise InvalidInput(
                f"parts[{n}].lot_code", "distinct-outputs", f"lot code {code} is already used here"
            )
        codes.add(code)
        checked.append((code, mass(kg, f"parts[{n}].mass_kg")))
    batch.check_take(sum((kg for _, kg in checked), ZERO), "parts")
    changed: list[Batch] = []
    facts = []
    for code, kg in checked:
        child = _new_batch(
            step,
            Batch.SplitOff,
            code,
            facility_id=batch.facility_id,
            material=batch.material.value,
            mass_kg=kg,
            composition=batch.composition,
            parent_id=batch.id,
        )
        facts.append({"batch_id": child.id, "lot_code": code, "kg": kg})
        changed.append(child)
    batch.trigger_event(
        Batch.BatchSplit,
        parts=facts,
        remaining_kg=batch.remaining_kg - sum((kg for _, kg in checked), ZERO),
        reported_by=step.by,
        occurred_at=step.occurred_at,
    )
    return [batch, *changed]


def merge(step: StepContext, code: str, inputs: Sequence[tuple[Batch, object]]) -> list[Batch]:
    """Several batches of one material at one place become one; its composition is the
    mass-weighted blend (rounded down, so no element mass appears from nowhere)."""
    if len(inputs) < 2:
        raise InvalidInput("inputs", "merge-arity", "a merge takes at least two batches")
    code = lot_code(code, "lot_code")
    taken: list[tuple[Batch, Decimal]] = []
    for where, batch, kg in _taken(step, inputs):
        first = taken[0][0] if taken else batch
        if batch.material is not first.material:
            raise RuleBroken(
                f"{where}.batch",
                "same-material",
                f"cannot merge {batch.material.value} into {first.material.value}",
            )
        if batch.facility_id != first.facility_id:
            raise RuleBroken(
                f"{where}.batch", "co-located", "merged batches must be at one facility"
            )
        taken.append((batch, kg))
    if ids.batch_id(step.actor.id, code) in {batch.id for batch, _ in taken}:
        raise RuleBroken("lot_code", "acyclic", f"lot {code} is an input of this merge")
    total = sum((kg for _, kg in taken), ZERO)
    merged = _new_batch(
        step,
        Batch.BatchesMerged,
        code,
        facility_id=taken[0][0].facility_id,
        material=taken[0][0].material.value,
        mass_kg=total,
        composition=blend((kg, b.composition) for b, kg in taken),
        inputs=[{"batch_id": b.id, "kg": kg} for b, kg in taken],
    )
    for batch, kg in taken:
        batch.trigger_event(
            Batch.Consumed,
            kg=kg,
            remaining_kg=batch.remaining_kg - kg,
            cause="merge",
            into_id=merged.id,
            reported_by=step.by,
            occurred_at=step.occurred_at,
        )
    return [merged, *(b for b, _ in taken)]


def _receives_for(facility: Facility, actor_id: UUID) -> bool:
    """Goods go to the actor's own facilities, or to a warehouse or port (anyone's)."""
    return facility.owner_id == actor_id or facility.kind in (
        FacilityKind.WAREHOUSE,
        FacilityKind.PORT,
    )


def move(step: StepContext, batch: Batch, to_facility: Facility) -> Batch:
    """The holder moves a batch to another of its facilities, or to a warehouse or port
    (a sale is a custody transfer, not a move)."""
    _check_held(step, batch, "batch")
    if to_facility.id == batch.facility_id:
        raise InvalidInput(
            "to_facility",
            "different-facility",
            f"batch {batch.lot_code} is already at {to_facility.code}",
        )
    if not _receives_for(to_facility, step.actor.id):
        raise Forbidden(
            "to_facility",
            "facility-owner",
            f"facility {to_facility.code} is neither the holder's nor a warehouse or port",
        )
    batch.trigger_event(
        Batch.BatchMoved,
        from_facility_id=batch.facility_id,
        to_facility_id=to_facility.id,
        reported_by=step.by,
        occurred_at=step.occurred_at,
    )
    return batch


def transfer_custody(
    step: StepContext,
    batch: Batch,
    buyer: Actor,
    contract: str,
    to_facility: Facility | None,
    price: object | None = None,
    currency: str = "",
) -> Batch:
    """A sale: the whole batch changes hands (split first to sell part of it)."""
    _check_held(step, batch, "batch")
    if buyer.id == step.actor.id:
        raise RuleBroken("buyer", "distinct-parties", "a batch cannot be sold to its holder")
    if not contract.strip():
        raise InvalidInput("contract", "required", "a sale names its contract reference")
    destination = batch.facility_id
    if to_facility is not None:
        if not _receives_for(to_facility, buyer.id):
            raise RuleBroken(
                "to_facility",
                "facility-owner",
                f"facility {to_facility.code} is neither the buyer's nor a warehouse or port",
            )
        destination = to_facility.id
    checked_price = None
    if price is not None:
        checked_price = total_price(price, "price")
        if len(currency) != 3 or not currency.isalpha():
            raise InvalidInput("currency", "iso-4217", "give the price's ISO 4217 currency code")
    batch.trigger_event(
        Batch.CustodyTransferred,
        seller_id=step.actor.id,
        buyer_id=buyer.id,
        volume_kg=batch.remaining_kg,
        contract=contract.strip(),
        price=checked_price,
        currency=currency.upper(),
        to_facility_id=destination,
        reported_by=step.by,
        occurred_at=step.occurred_at,
    )
    return batch


def export_shipment(
    step: StepContext,
    batch: Batch,
    licence: Licence | None,
    consignee: Actor,
    destination_country: str,
    end_user: str,
    customs_code: str,
    shipment: str,
    controls: ExportControls,
) -> list[Batch | Licence]:
    """Goods leave the country as shipment ``shipment`` (the customs declaration or bill
    of lading number). Controlled goods (see ``ExportControls``) need an export licence,
    which the shipment draws down; uncontrolled goods may ship without one, and are
    recorded as such."""
    _check_held(step, batch, "batch")
    shipment = values.code(shipment, "shipment", "shipment")
    carried = controls.carried(batch.material, batch.composition)
    if licence is None and carried:
        raise RuleBroken(
            "licence",
            "licence-required",
            f"batch {batch.lot_code} is a controlled {batch.material.value} (it carries "
            f"{', '.join(carried)}): an export licence is required",
        )
    destination = country(destination_country, "destination_country")
    if consignee.country != destination:
        raise RuleBroken(
            "destination_country",
            "consignee-country",
            f"consignee {consignee.code} is registered in {consignee.country}, not {destination}",
        )
    code = customs_code  # kept as declared: whole-string rules, no silent trimming
    if not TARIFF_CODE.match(code) or not any(
        tariff_covers(heading, code) for heading in CUSTOMS_HEADINGS[batch.material]
    ):
        raise RuleBroken(
            "customs_code",
            "customs-heading",
            f"{code!r} is not a heading for {batch.material.value} "
            f"({', '.join(CUSTOMS_HEADINGS[batch.material])})",
        )
    if licence is not None:
        licence.check_draw(
            LicenceKind.EXPORT_LICENCE,
            step.actor.id,
            batch.remaining_kg,
            step.occurred_at,
            "licence",
        )
        licence.check_export(
            material=batch.material,
            composition=batch.composition,
            customs_code=code,
            destination_country=destination,
            consignee_id=consignee.id,
            end_user=end_user,
        )
    kg = batch.remaining_kg
    batch.trigger_event(
        Batch.ShipmentExported,
        licence_id=licence.id if licence is not None else None,
        exporter_id=step.actor.id,
        destination_country=destination,
        consignee_id=consignee.id,
        end_user=end_user.strip(),
        customs_code=code,
        kg=kg,
        shipment=shipment,
        controlled=bool(carried),
        reported_by=step.by,
        occurred_at=step.occurred_at,
    )
    if licence is None:
        return [batch]
    licence.draw(kg, batch.id, "export", step.by, step.occurred_at)
    return [batch, licence]


def receive_shipment(
    step: StepContext,
    batch: Batch,
    facility: Facility,
    received_kg: object | None,
    shipment: str | None = None,
) -> Batch:
    """The consignee takes delivery; a shortfall in transit is recorded, a surplus refused.
    Naming the ``shipment`` received checks it is the one the batch left on."""
    if batch.status is not Status.IN_TRANSIT or batch.export is None:
        raise Conflict(
            "batch", "not-in-transit", f"batch {batch.lot_code} is not on an export shipment"
        )
    shipped_as = batch.export.get("shipment")  # None: exported before shipments had numbers
    if shipment is not None:
        values.code(shipment, "shipment", "shipment")
        if shipped_as is not None and shipment != shipped_as:
            raise RuleBroken(
                "shipment",
                "shipment-mismatch",
                f"batch {batch.lot_code} left on shipment {shipped_as}, not {shipment}",
            )
    if batch.export["consignee_id"] != step.actor.id:
        raise Forbidden(
            "batch", "consignee", f"batch {batch.lot_code} is consigned to another actor"
        )
    batch.check_chronology(step.occurred_at, "occurred_at")
    _own_facility(step, facility, "facility")
    if facility.country != batch.export["destination_country"]:
        raise RuleBroken(
            "facility",
            "destination-country",
            f"facility {facility.code} is in {facility.country}; the shipment was exported to "
            f"{batch.export['destination_country']}",
        )
    shipped: Decimal = batch.export["kg"]
    kg = shipped if received_kg is None else mass(received_kg, "received_kg")
    if kg > shipped:
        raise RuleBroken(
            "received_kg", "mass-available", f"{kg} kg received but only {shipped} kg were shipped"
        )
    batch.trigger_event(
        Batch.ShipmentReceived,
        receiver_id=step.actor.id,
        facility_id=facility.id,
        received_kg=kg,
        shipment=shipment if shipment is not None else shipped_as,
        reported_by=step.by,
        occurred_at=step.occurred_at,
    )
    return batch


def quarantine(principal: Principal, batch: Batch, reason: str, at: datetime) -> Batch:
    """Holds a batch: its custodian, a regulator or an admin may."""
    if principal.role is Role.OPERATOR:
        batch.check_custodian(principal.actor, "batch")  # type: ignore[arg-type]
    else:
        principal.require(Role.REGULATOR, Role.ADMIN, field="batch")
    if batch.status is Status.QUARANTINED:
        raise Conflict(
            "batch", "batch-quarantined", f"batch {batch.lot_code} is already quarantined"
        )
    if batch.status is Status.CONSUMED:
        raise Conflict(
            "batch", "batch-consumed", f"batch {batch.lot_code} has been wholly consumed"
        )
    if batch.status is Status.VOID:
        # Holding a batch that never existed would make it look real again.
        raise Conflict(
            "batch",
            "batch-void",
            f"batch {batch.lot_code} was corrected as never having existed",
        )
    if not reason.strip():
        raise InvalidInput("reason", "required", "say why the batch is held")
    batch.check_chronology(at, "occurred_at")
    batch.trigger_event(
        Batch.BatchQuarantined,
        reason=reason.strip(),
        by_role=principal.role.value,
        reported_by=principal.id,
        occurred_at=at,
    )
    return batch


def release(principal: Principal, batch: Batch, reason: str, at: datetime) -> Batch:
    """A regulator's hold is lifted by a regulator (or admin) only."""
    if batch.status is not Status.QUARANTINED or batch.quarantine is None:
        raise Conflict("batch", "not-quarantined", f"batch {batch.lot_code} is not quarantined")
    held_by_authority = batch.quarantine["by_role"] in (Role.REGULATOR.value, Role.ADMIN.value)
    if principal.role is Role.OPERATOR and not held_by_authority:
        batch.check_custodian(principal.actor, "batch")  # type: ignore[arg-type]
    else:
        principal.require(Role.REGULATOR, Role.ADMIN, field="batch")
    if not reason.strip():
        raise InvalidInput("reason", "required", "say why the batch is released")
    batch.check_chronology(at, "occurred_at")
    restored = batch.quarantine["previous_status"]
    if restored == Status.ACTIVE.value and batch.remaining_kg == ZERO:
        # A correction of its mass while held left nothing: it is consumed, not active.
        restored = Status.CONSUMED.value
    batch.trigger_event(
        Batch.BatchReleased,
        reason=reason.strip(),
        restored_status=restored,
        reported_by=principal.id,
        occurred_at=at,
    )
    return batch


# --- corrections ----------------------------------------------------------------------

INCORRECT_DATA = "incorrect-data"
DID_NOT_OCCUR = "did-not-occur"
REASONS = (INCORRECT_DATA, DID_NOT_OCCUR)

_ORIGINS = (Batch.OreExtracted, Batch.ScrapCollected)
_ALONE = (
    Batch.CustodyTransferred,
    Batch.ShipmentExported,
    Batch.ShipmentReceived,
    Batch.BatchMoved,
    Batch.BatchQuarantined,
    Batch.BatchReleased,
)
_HOLDS = (Batch.BatchQuarantined, Batch.BatchReleased)


def correctable_facts(event: Any) -> tuple[str, ...]:
    """What a correction may change in an event of this type. Steps that involve other
    batches (a transformation's inputs and outputs, a split, a merge) are one fact
    across several batches and are not corrected one batch at a time."""
    if isinstance(event, _ORIGINS):
        return ("mass_kg", "composition", "occurred_at")
    if isinstance(event, _HOLDS):
        return ("reason", "occurred_at")
    if isinstance(event, _ALONE):
        return ("occurred_at",)
    return ()


def _effective(history: Sequence[Any]) -> dict[int, dict[str, Any]]:
    """Per version, the facts corrections have replaced so far (later ones win)."""
    out: dict[int, dict[str, Any]] = {}
    for event in history:
        if isinstance(event, Batch.Corrected):
            out.setdefault(event.corrects_version, {}).update(event.facts)
    return out


def _when(value: object, field: str, now: datetime) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidInput(field, "datetime", f"{value!r} is not an ISO 8601 time") from None
    if not isinstance(value, datetime):
        raise InvalidInput(field, "datetime", "give an ISO 8601 time with a time zone")
    return occurred(value, now, field)


def correct(
    principal: Principal,
    batch: Batch,
    history: Sequence[Any],
    version: int,
    reason: str,
    facts: Mapping[str, object],
    note: str,
    now: datetime,
    reporter_actor: UUID | None,
    quota: Licence | None,
) -> Batch:
    """Corrects event ``version`` of ``batch`` (``history``: every event of the batch, in
    order) with a new event; refuses any correction that would break an invariant at
    any point of the corrected history: mass available, custody and place, chronology,
    quota. Only the actor that reported the event, a regulator or an admin may."""
    if reason not in REASONS:
        raise InvalidInput("reason", "one-of", f"say {' or '.join(REASONS)}")
    if not 1 <= version <= len(history):
        raise InvalidInput("version", "exists", f"batch {batch.lot_code} has no version {version}")
    target = history[version - 1]
    kind = type(target).__name__
    if principal.role is Role.OPERATOR:
        if principal.id != target.reported_by and (
            principal.actor is None or principal.actor != reporter_actor
        ):
            raise Forbidden(
                "version", "reporting-actor", "only the actor that reported an event may correct it"
            )
    else:
        principal.require(Role.REGULATOR, Role.ADMIN, field="version")
    if isinstance(target, Batch.Corrected):
        raise RuleBroken(
            "version", "not-a-correction", "correct the original event again, not a correction"
        )
    if batch.status is Status.VOID:
        raise Conflict(
            "version", "batch-void", f"batch {batch.lot_code} was corrected as never having existed"
        )
    allowed = correctable_facts(target)
    if not allowed:
        raise RuleBroken(
            "version",
            "not-correctable",
            f"{kind} involves other batches (a transformation, split or merge): it cannot be "
            "corrected on one batch alone",
        )
    steps = [e for e in history if not isinstance(e, Batch.Corrected)]
    later = [e for e in steps if e.originator_version > version]
    corrected = _effective(history)
    resulting: dict[str, Any] = {}
    new_facts: dict[str, Any] = {}
    if reason == DID_NOT_OCCUR:
        if facts:
            raise InvalidInput(
                "facts", "empty", "a correction saying the event did not occur gives no facts"
            )
        if (
            later
            and not all(isinstance(e, _HOLDS) for e in later)
            and not (
                isinstance(target, _ORIGINS)
                and all(isinstance(e, (Batch.BatchMoved, *_HOLDS)) for e in later)
            )
        ):
            raise RuleBroken(
                "version",
                "correction-breaks-history",
                f"later steps of batch {batch.lot_code} depend on this {kind}: correct those first",
            )
        if isinstance(target, _ORIGINS):
            resulting = {"status": Status.VOID.value, "remaining_kg": ZERO}
        elif isinstance(target, Batch.BatchMoved):
            resulting = {"facility_id": target.from_facility_id}
        else:
            raise RuleBroken(
                "version", "not-voidable", f"a {kind} cannot be corrected as not having occurred"
            )
    else:
        if not facts:
            raise InvalidInput("facts", "required", "give the corrected facts")
        for name in facts:
            if name not in allowed:
                raise InvalidInput(
                    f"facts.{name}",
                    "correctable-fact",
                    f"a {kind} may be corrected in: {', '.join(allowed)}",
                )
        previous = {**{n: getattr(target, n, None) for n in allowed}, **corrected.get(version, {})}
        if "occurred_at" in facts:
            at = _when(facts["occurred_at"], "facts.occurred_at", now)
            times = {
                e.originator_version: corrected.get(e.originator_version, {}).get(
                    "occurred_at", e.occurred_at
                )
                for e in steps
            }
            before = [t for v, t in times.items() if v < version]
            after = [t for v, t in times.items() if v > version]
            if (before and at < max(before)) or (after and at > min(after)):
                raise RuleBroken(
                    "facts.occurred_at",
                    "chronology",
                    f"{at.isoformat()} would put this {kind} out of order with the batch's other steps",
                )
            if quota is not None and not quota.valid_from <= at <= quota.valid_until:
                raise RuleBroken(
                    "facts.occurred_at",
                    "licence-validity",
                    f"quota {quota.number} was not valid then",
                )
            new_facts["occurred_at"] = at
            times[version] = at
            resulting["last_occurred_at"] = max(times.values())
            if version == 1:
                resulting["created_at"] = at
        if "reason" in facts:
            text = str(facts["reason"]).strip()
            if not text:
                raise InvalidInput("facts.reason", "required", "say why the batch was held")
            new_facts["reason"] = text
        if "mass_kg" in facts or "composition" in facts:
            _correct_origin(
                principal, batch, later, facts, previous, quota, now, resulting, new_facts
            )
    batch.trigger_event(
        Batch.Corrected,
        number=len(getattr(batch, "corrections", [])) + 1,
        corrects_version=version,
        corrects_type=kind,
        reason=reason,
        note=note.strip(),
        facts=new_facts,
        resulting=resulting,
        by_role=principal.role.value,
        reported_by=principal.id,
        occurred_at=now,
    )
    if reason == DID_NOT_OCCUR and isinstance(target, Batch.OreExtracted) and quota is not None:
        previous = {
            **{n: getattr(target, n) for n in ("mass_kg", "composition")},
            **corrected.get(version, {}),
        }
        given_back = reo_kg(previous["mass_kg"], previous["composition"])
        quota.correct_draw(-given_back, batch.id, principal.id, now, "version")
    return batch


def _correct_origin(
    principal: Principal,
    batch: Batch,
    later: Sequence[Any],
    facts: Mapping[str, object],
    previous: Mapping[str, Any],
    quota: Licence | None,
    now: datetime,
    resulting: dict[str, Any],
    new_facts: dict[str, Any],
) -> None:
    if any(isinstance(e, Batch.ShipmentExported | Batch.ShipmentReceived) for e in later):
        raise RuleBroken(
            "facts",
            "correction-breaks-history",
            f"batch {batch.lot_code} was exported since: its mass cannot change",
        )
    old_kg: Decimal = previous["mass_kg"]
    new_kg = mass(facts["mass_kg"], "facts.mass_kg") if "mass_kg" in facts else old_kg
    shares = previous["composition"]
    if "composition" in facts:
        if any(isinstance(e, Batch.Consumed | Batch.BatchSplit) for e in later):
            raise RuleBroken(
                "facts.composition",
                "correction-breaks-balance",
                f"batch {batch.lot_code} already went into later steps whose element balance used "
                "its composition: correct those steps first",
            )
        given = facts["composition"]
        if not isinstance(given, Mapping):
            raise InvalidInput("facts.composition", "object", "give element -> mass fraction")
        shares = _ore_composition(given, "facts.composition")
        new_facts["composition"] = shares
        resulting["composition"] = shares
    if "mass_kg" in facts:
        taken = EXACT.subtract(batch.initial_kg, batch.remaining_kg)
        if new_kg < taken:
            raise RuleBroken(
                "facts.mass_kg",
                "mass-available",
                f"{taken} kg were already taken from batch {batch.lot_code}: it cannot have been {new_kg} kg",
            )
        remaining = EXACT.subtract(new_kg, taken)
        new_facts["mass_kg"] = new_kg
        resulting["initial_kg"] = new_kg
        resulting["remaining_kg"] = remaining
        if remaining == ZERO and batch.status is Status.ACTIVE:
            resulting["status"] = Status.CONSUMED.value
        elif remaining > ZERO and batch.status is Status.CONSUMED:
            resulting["status"] = Status.ACTIVE.value
    if quota is not None:
        delta = EXACT.subtract(reo_kg(new_kg, shares), reo_kg(old_kg, previous["composition"]))
        if delta != ZERO:
            quota.correct_draw(
                delta,
                batch.id,
                principal.id,
                now,
                "facts.mass_kg" if "mass_kg" in facts else "facts.composition",
            )
