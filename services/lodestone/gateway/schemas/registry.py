"""Registering actors, facilities, licences and credentials."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from lodestone.ledger import commands as c

Code = Annotated[str, Field(min_length=1, max_length=64, examples=["BAOTOU-RE"])]
Country = Annotated[
    str, Field(min_length=2, max_length=2, description="ISO 3166-1 alpha-2", examples=["CN"])
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ActorCreate(Strict):
    code: Code
    name: Annotated[str, Field(min_length=1, max_length=200)]
    country: Country
    roles: list[str] = Field(
        default_factory=list,
        description="miner, separator, magnet_maker, exporter, end_client, ...",
    )

    def to_command(self) -> c.Command:
        return c.RegisterActor(self.code, self.name, self.country, list(self.roles))


class FacilityCreate(Strict):
    code: Code
    name: Annotated[str, Field(min_length=1, max_length=200)]
    kind: str = Field(
        description="mine, separation_plant, metal_plant, alloy_plant, magnet_plant, warehouse, port"
    )
    owner: Code
    country: Country
    location: Annotated[str, Field(max_length=200)] = ""

    def to_command(self) -> c.Command:
        return c.RegisterFacility(
            self.code, self.name, self.kind, self.owner, self.country, self.location
        )


class ExportItem(Strict):
    material: str
    customs_code: Annotated[str, Field(min_length=4, max_length=12)]
    elements: list[str] = Field(
        default_factory=list, description="Controlled elements covered (Sm, Gd, Tb, Dy, Lu, Sc, Y)"
    )


class LicenceCreate(Strict):
    number: Code
    kind: str = Field(description="mining_quota, separation_quota (kg REO) or export_licence (kg)")
    holder: Code
    max_kg: Decimal
    valid_from: AwareDatetime
    valid_until: AwareDatetime
    items: list[ExportItem] = Field(default_factory=list, max_length=100)
    consignee: Code | None = None
    end_user: Annotated[str, Field(max_length=200)] = ""
    end_use: Annotated[str, Field(max_length=500)] = ""
    destination_country: Annotated[str, Field(max_length=2)] = ""
    contract: Annotated[str, Field(max_length=200)] = ""

    def to_command(self) -> c.Command:
        return c.IssueLicence(
            self.number,
            self.kind,
            self.holder,
            self.max_kg,
            self.valid_from,
            self.valid_until,
            [i.model_dump() for i in self.items],
            self.consignee,
            self.end_user,
            self.end_use,
            self.destination_country,
            self.contract,
        )


class CredentialCreate(Strict):
    role: str = Field(description="operator, auditor, analyst, regulator or admin")
    actor: Code | None = Field(None, description="Operators: the actor the key speaks for")
    label: Annotated[str, Field(max_length=200)] = ""


class CredentialRevoke(Strict):
    reason: Annotated[str, Field(max_length=500)] = ""
