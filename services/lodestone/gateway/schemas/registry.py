"""Registering actors, facilities, licences and credentials."""

from __future__ import annotations

from typing import Annotated

from pydantic import AwareDatetime, Field

from lodestone.gateway.schemas.base import CommandIn, ExactDecimal, Strict
from lodestone.ledger import commands as c

Code = Annotated[str, Field(min_length=1, max_length=64, examples=["BAOTOU-RE"])]
Country = Annotated[
    str, Field(min_length=2, max_length=2, description="ISO 3166-1 alpha-2", examples=["CN"])
]


class ActorCreate(CommandIn):
    command = c.RegisterActor

    code: Code
    name: Annotated[str, Field(min_length=1, max_length=200)]
    country: Country
    roles: list[Annotated[str, Field(max_length=50)]] = Field(
        default_factory=list,
        max_length=20,  # an actor plays a few of the chain's dozen roles, never thousands
        description="miner, separator, magnet_maker, exporter, end_client, ...",
    )


class FacilityCreate(CommandIn):
    command = c.RegisterFacility

    code: Code
    name: Annotated[str, Field(min_length=1, max_length=200)]
    kind: str = Field(
        max_length=50,
        description="mine, separation_plant, metal_plant, alloy_plant, magnet_plant, warehouse, port",
    )
    owner: Code
    country: Country
    location: Annotated[str, Field(max_length=200)] = ""


class ExportItem(Strict):
    material: Annotated[str, Field(max_length=50)]
    customs_code: Annotated[str, Field(min_length=4, max_length=16)]
    elements: list[Annotated[str, Field(max_length=3)]] = Field(
        default_factory=list,
        max_length=17,
        description="Controlled elements covered (Sm, Gd, Tb, Dy, Lu, Sc, Y)",
    )


class LicenceCreate(CommandIn):
    command = c.IssueLicence

    number: Code
    kind: str = Field(
        max_length=50,
        description="mining_quota, separation_quota (kg REO) or export_licence (kg)",
    )
    holder: Code
    max_kg: ExactDecimal
    valid_from: AwareDatetime
    valid_until: AwareDatetime
    items: list[ExportItem] = Field(default_factory=list, max_length=100)
    consignee: Code | None = None
    end_user: Annotated[str, Field(max_length=200)] = ""
    end_use: Annotated[str, Field(max_length=500)] = ""
    destination_country: Annotated[str, Field(max_length=2)] = ""
    contract: Annotated[str, Field(max_length=200)] = ""

    def converted(self) -> dict[str, object]:
        return {"items": [i.model_dump() for i in self.items]}


class CredentialCreate(Strict):
    # Not a CommandIn: the gateway makes the key and hands the ledger its hash only.
    role: str = Field(description="operator, auditor, analyst, regulator or admin")
    actor: Code | None = Field(None, description="Operators: the actor the key speaks for")
    label: Annotated[str, Field(max_length=200)] = ""
    expires_at: AwareDatetime | None = Field(
        None, description="From then on the key is refused (default: until revoked)"
    )


class CredentialRotate(Strict):
    # Not a CommandIn: the gateway makes the new key and hands the ledger its hash only.
    grace_seconds: int = Field(
        86_400,
        ge=0,
        le=30 * 86_400,
        description="How long the old key stays valid beside the new one",
    )


class CredentialRevoke(Strict):
    # Not a CommandIn: the credential is named in the path.
    reason: Annotated[str, Field(max_length=500)] = ""
