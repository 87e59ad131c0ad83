"""Commands: plain, frozen requests to the ledger, one per step a supply-chain actor
reports. References are natural keys (actor and facility codes, licence numbers,
``ACTOR/LOT`` batch references or batch UUIDs); the ledger resolves them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lodestone.domain.chain import OutputSpec, UntracedInput


@dataclass(frozen=True)
class Command:
    """``actor`` is whom the step is reported for; operators may leave it out (their own)."""


@dataclass(frozen=True)
class RegisterActor(Command):
    code: str
    name: str
    country: str
    roles: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RegisterFacility(Command):
    code: str
    name: str
    kind: str
    owner: str
    country: str
    location: str = ""


@dataclass(frozen=True)
class IssueLicence(Command):
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


@dataclass(frozen=True)
class IssueCredential(Command):
    """The key itself never reaches the ledger: only its SHA-256."""

    key_hash: str
    role: str
    actor: str | None = None
    label: str = ""


@dataclass(frozen=True)
class RevokeCredential(Command):
    credential_id: str
    reason: str


@dataclass(frozen=True)
class Step(Command):
    occurred_at: datetime | None = field(default=None, kw_only=True)
    actor: str | None = field(default=None, kw_only=True)


@dataclass(frozen=True)
class ExtractOre(Step):
    facility: str
    quota: str
    lot_code: str
    mass_kg: object
    composition: dict[str, object]


@dataclass(frozen=True)
class CollectScrap(Step):
    facility: str
    lot_code: str
    mass_kg: object
    composition: dict[str, object]
    source: str


@dataclass(frozen=True)
class Transform(Step):
    facility: str
    process: str
    reference: str
    inputs: list[tuple[str, object]]
    outputs: list[OutputSpec]
    untraced_inputs: list[UntracedInput] = field(default_factory=list)
    tolerance: object | None = None
    quota: str | None = None


@dataclass(frozen=True)
class Split(Step):
    batch: str
    parts: list[tuple[str, object]]


@dataclass(frozen=True)
class Merge(Step):
    lot_code: str
    inputs: list[tuple[str, object]]


@dataclass(frozen=True)
class TransferCustody(Step):
    batch: str
    buyer: str
    contract: str
    to_facility: str | None = None
    price: object | None = None
    currency: str = ""


@dataclass(frozen=True)
class MoveBatch(Step):
    batch: str
    to_facility: str


@dataclass(frozen=True)
class ExportShipment(Step):
    batch: str
    licence: str
    consignee: str
    destination_country: str
    end_user: str
    customs_code: str


@dataclass(frozen=True)
class ReceiveShipment(Step):
    batch: str
    facility: str
    received_kg: object | None = None


@dataclass(frozen=True)
class Quarantine(Step):
    batch: str
    reason: str


@dataclass(frozen=True)
class Release(Step):
    batch: str
    reason: str


@dataclass(frozen=True)
class CorrectEvent(Command):
    """A correction of one earlier event of a batch (its ``version``)."""

    batch: str
    version: int
    reason: str  # incorrect-data | did-not-occur
    facts: dict[str, Any] = field(default_factory=dict)
    note: str = ""
