"""What the commands' handlers share: references resolved to loaded aggregates, the
context of a reported step, and the shape of an answer.

Each command carries its own handler (``Command.handle`` in ``commands``), so the
command class is the one place a new kind of command is added. Handlers only load and
stage aggregates; the ledger saves them.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID

from lodestone.domain import chain, ids, values
from lodestone.domain.access import Credential, Principal
from lodestone.domain.actors import Actor, Facility
from lodestone.domain.batches import Batch
from lodestone.domain.licences import Licence
from lodestone.domain.refusals import InvalidInput
from lodestone.ledger.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    from lodestone.ledger.commands import Command, ReportStep


def handle(cmd: Command, uow: UnitOfWork, principal: Principal, now: datetime) -> dict[str, Any]:
    return cmd.handle(uow, principal, now)


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


def step_context(
    uow: UnitOfWork, principal: Principal, cmd: ReportStep, now: datetime
) -> chain.StepContext:
    """Who reports ``cmd``, for which actor (the caller's own unless it names one), when."""
    principal.require(*cmd.submitters, field="actor")
    if cmd.actor is not None:
        reporter = actor(uow, cmd.actor, "actor")
    elif principal.actor is not None:
        reporter = uow.get(Actor, principal.actor, "actor", "the caller's actor")
    else:
        raise InvalidInput("actor", "required", "name the actor this step is reported for")
    return chain.StepContext(principal, reporter, cmd.occurred_at or now, now)


def hold_time(uow: UnitOfWork, principal: Principal, cmd: ReportStep, now: datetime) -> datetime:
    """When a hold was placed or lifted. Holds are reported by the custodian (for itself)
    or an authority: naming another company is refused as for every other step."""
    if cmd.actor is not None:
        named = actor(uow, cmd.actor, "actor")
        principal.acts_for(named.id, "actor", f"actor {named.code}")
    return values.occurred(cmd.occurred_at or now, now, "occurred_at")


def new_batch(uow: UnitOfWork, s: chain.StepContext, lot: str, field: str) -> None:
    uow.require_new(
        ids.batch_id(s.actor.id, values.lot_code(lot, field)),
        field,
        f"lot {lot} of {s.actor.code}",
    )


def answer(event: str, b: Batch, **extra: Any) -> dict[str, Any]:
    return {
        "event": event,
        "batch_id": str(b.id),
        "lot_code": b.lot_code,
        "batch": b.reference,
        **{k: text(v) for k, v in extra.items()},
    }


def text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return str(value)


def reporting_actor(uow: UnitOfWork, history: list[Any], version: int) -> UUID | None:
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
