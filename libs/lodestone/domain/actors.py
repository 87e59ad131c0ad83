"""Actors (companies) and their facilities."""

from __future__ import annotations

import re
from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate

from lodestone.domain.recording import LedgerAggregate
from lodestone.domain.refusals import InvalidInput
from lodestone.domain.snapshots import TypedSnapshot
from lodestone.domain.values import FacilityKind

COUNTRY = re.compile(r"\A[A-Z]{2}\Z")


def country(value: str, field: str) -> str:
    """ISO 3166-1 alpha-2, upper case."""
    if not COUNTRY.match(value or ""):
        raise InvalidInput(field, "iso-3166", f"{value!r} is not an ISO 3166-1 alpha-2 code")
    return value


class Actor(LedgerAggregate):
    """A company in the chain: mine, refiner, magnet maker, trader, exporter or end client."""

    class Registered(Aggregate.Created):
        code: str
        name: str
        country: str
        roles: list[str]
        reported_by: str
        occurred_at: datetime

        def apply(self, actor: Actor) -> None:
            actor.code = self.code
            actor.name = self.name
            actor.country = self.country
            actor.roles = list(self.roles)

    code: str
    name: str
    country: str
    roles: list[str]

    def __init__(self) -> None:
        pass

    @classmethod
    def register(
        cls,
        id: UUID,
        code: str,
        name: str,
        country_code: str,
        roles: list[str],
        reported_by: str,
        occurred_at: datetime,
    ) -> Actor:
        if not name.strip():
            raise InvalidInput("name", "required", "an actor needs a name")
        return cls._create(
            cls.Registered,
            id=id,
            code=code,
            name=name.strip(),
            country=country(country_code, "country"),
            roles=sorted(set(roles)),
            reported_by=reported_by,
            occurred_at=occurred_at,
        )


class Facility(LedgerAggregate):
    """A place where material is mined, processed, stored or shipped from."""

    Snapshot = TypedSnapshot
    ENUM_FIELDS = {"kind": FacilityKind}

    class Registered(Aggregate.Created):
        code: str
        name: str
        kind: str
        owner_id: UUID
        country: str
        location: str
        reported_by: str
        occurred_at: datetime

        def apply(self, facility: Facility) -> None:
            facility.code = self.code
            facility.name = self.name
            facility.kind = FacilityKind(self.kind)
            facility.owner_id = self.owner_id
            facility.country = self.country
            facility.location = self.location

    code: str
    name: str
    kind: FacilityKind
    owner_id: UUID
    country: str
    location: str

    def __init__(self) -> None:
        pass

    @classmethod
    def register(
        cls,
        id: UUID,
        code: str,
        name: str,
        kind: FacilityKind,
        owner: Actor,
        country_code: str,
        location: str,
        reported_by: str,
        occurred_at: datetime,
    ) -> Facility:
        if not name.strip():
            raise InvalidInput("name", "required", "a facility needs a name")
        return cls._create(
            cls.Registered,
            id=id,
            code=code,
            name=name.strip(),
            kind=kind.value,
            owner_id=owner.id,
            country=country(country_code, "country"),
            location=location,
            reported_by=reported_by,
            occurred_at=occurred_at,
        )
